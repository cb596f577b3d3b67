#include "core/stats.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace im::stats;

TEST(stats, percentile_type7_matches_numpy) {
    // numpy.percentile([1, 2, 3, 4, 10], [0, 25, 50, 90, 99, 100]) (linear, numpy's default)
    std::vector<double> v{10, 1, 3, 2, 4};
    EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
    EXPECT_DOUBLE_EQ(percentile(v, 25), 2.0);
    EXPECT_DOUBLE_EQ(percentile(v, 50), 3.0);
    EXPECT_NEAR(percentile(v, 90), 7.6, 1e-12);
    EXPECT_NEAR(percentile(v, 99), 9.76, 1e-12);
    EXPECT_DOUBLE_EQ(percentile(v, 100), 10.0);
    EXPECT_DOUBLE_EQ(percentile({5.0}, 90), 5.0);
}

TEST(stats, welford_sample_stddev) {
    welford w;
    for (double x : {2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0}) w.add(x);
    EXPECT_DOUBLE_EQ(w.mean(), 5.0);
    ASSERT_TRUE(w.stddev().has_value());
    EXPECT_NEAR(*w.stddev(), 2.138089935299395, 1e-12);  // sqrt(32/7)
}

TEST(stats, no_stddev_from_one_sample) {
    welford w;
    w.add(3.0);
    EXPECT_FALSE(w.stddev().has_value());
    const auto s = summarize(std::vector<double>{3.0});
    EXPECT_FALSE(s.stddev.has_value());
    EXPECT_FALSE(s.ci95_low.has_value());
    EXPECT_EQ(s.n, 1u);
}

TEST(stats, welford_is_stable_with_large_offsets) {
    welford w;
    for (double x : {1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16}) w.add(x);
    EXPECT_NEAR(*w.stddev(), 5.477225575051661, 1e-6);  // sqrt(30)
}

TEST(stats, summary_interval_and_outliers) {
    std::vector<double> v{100, 101, 99, 100, 102, 98, 100, 160};
    const auto s = summarize(v);
    EXPECT_EQ(s.n_outliers, 1u);
    EXPECT_DOUBLE_EQ(s.median, 100.0);
    ASSERT_TRUE(s.ci95_low && s.ci95_high);
    EXPECT_LT(*s.ci95_low, s.mean);
    EXPECT_GT(*s.ci95_high, s.mean);
    // t(7) = 2.365
    EXPECT_NEAR(*s.ci95_high - s.mean, 2.365 * *s.stddev / std::sqrt(8.0), 1e-9);
}
