#include "core/mann_whitney.h"

#include <gtest/gtest.h>

#include <vector>

using namespace im::stats;

// Known answers: the exact p-values equal a brute-force count over all C(m+n, m) orderings
// (p = 2·#{U <= min(U_x, U_y)} / C(m+n, m)), which is how tables of the exact distribution (and
// scipy.stats.mannwhitneyu(method="exact")) define them; the normal ones follow the formula with
// tie correction computed by hand.

TEST(mann_whitney, separated_three_and_three_exact) {
    const std::vector<double> x{1, 2, 3}, y{4, 5, 6};
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->method, mwu_method::exact);
    EXPECT_DOUBLE_EQ(r->u_x, 0.0);
    EXPECT_DOUBLE_EQ(r->u_y, 9.0);
    EXPECT_NEAR(r->p_two_sided, 0.1, 1e-12);  // 2 / C(6,3) = 2/20
}

TEST(mann_whitney, separated_five_and_five_exact) {
    const std::vector<double> x{1, 2, 3, 4, 5}, y{6, 7, 8, 9, 10};
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_NEAR(r->p_two_sided, 0.007936507936507936, 1e-15);  // 2 / 252
    // Symmetric in the order of the samples.
    const auto s = mann_whitney_u(y, x);
    ASSERT_TRUE(s.has_value());
    EXPECT_DOUBLE_EQ(s->u_x, 25.0);
    EXPECT_NEAR(s->p_two_sided, r->p_two_sided, 1e-15);
}

TEST(mann_whitney, interleaved_exact) {
    const std::vector<double> x{1.1, 3.3, 5.5, 7.7}, y{2.2, 4.4, 6.6, 8.8, 9.9};
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->method, mwu_method::exact);
    EXPECT_DOUBLE_EQ(r->u_x, 6.0);
    EXPECT_NEAR(r->p_two_sided, 0.4126984126984127, 1e-12);  // 2·26/126
}

TEST(mann_whitney, unequal_sizes_exact) {
    const std::vector<double> x{10.2, 11.5, 9.8, 12.1, 10.9, 11.0}, y{9.1, 9.5, 8.7, 10.0, 9.9, 9.3, 8.9};
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_DOUBLE_EQ(r->u_x, 40.0);
    EXPECT_NEAR(r->p_two_sided, 0.004662004662004662, 1e-12);  // 2·4/1716
}

TEST(mann_whitney, identical_samples_give_p_one) {
    const std::vector<double> x{5, 5, 5}, y{5, 5, 5};
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_DOUBLE_EQ(r->p_two_sided, 1.0);
    const std::vector<double> a{1, 2, 3, 4}, b{1, 2, 3, 4};
    EXPECT_DOUBLE_EQ(mann_whitney_u(a, b)->p_two_sided, 1.0);
}

TEST(mann_whitney, ties_use_normal_with_tie_correction) {
    // Tie groups: 3×2, 3×4, 4×3, 5×2 → Σ(t³−t) = 6+60+24+6 = 96; var = 56/12·(16 − 96/240) = 72.8;
    // U_x = 3.5, z = (52.5 − 28 − 0.5)/√72.8, p = erfc(z/√2).
    const std::vector<double> x{1, 2, 2, 3, 3, 3, 4}, y{3, 4, 4, 5, 5, 6, 7, 8};
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->method, mwu_method::normal);
    EXPECT_DOUBLE_EQ(r->u_x, 3.5);
    EXPECT_NEAR(r->p_two_sided, 0.004832240868896155, 1e-12);
}

TEST(mann_whitney, large_samples_use_normal) {
    std::vector<double> x, y;
    for (int i = 0; i < 25; ++i) {
        x.push_back(i);
        y.push_back(i + 10.5);
    }
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->method, mwu_method::normal);
    EXPECT_DOUBLE_EQ(r->u_x, 105.0);
    EXPECT_NEAR(r->p_two_sided, 5.909644085596031e-05, 1e-12);
}

TEST(mann_whitney, exact_at_the_size_limit_stays_finite) {
    std::vector<double> x, y;
    for (int i = 0; i < 20; ++i) {
        x.push_back(2 * i);
        y.push_back(2 * i + 1);
    }
    const auto r = mann_whitney_u(x, y);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->method, mwu_method::exact);
    EXPECT_GT(r->p_two_sided, 0.5);
    EXPECT_LE(r->p_two_sided, 1.0);
}

TEST(mann_whitney, empty_sample_has_no_test) {
    const std::vector<double> x{1, 2}, none;
    EXPECT_FALSE(mann_whitney_u(x, none).has_value());
    EXPECT_FALSE(mann_whitney_u(none, x).has_value());
}

TEST(mann_whitney, min_attainable_p) {
    EXPECT_NEAR(mwu_min_p_two_sided(3, 3), 0.1, 1e-12);
    EXPECT_NEAR(mwu_min_p_two_sided(3, 4), 2.0 / 35, 1e-12);
    EXPECT_NEAR(mwu_min_p_two_sided(4, 4), 2.0 / 70, 1e-12);
    EXPECT_DOUBLE_EQ(mwu_min_p_two_sided(1, 1), 1.0);
    EXPECT_DOUBLE_EQ(mwu_min_p_two_sided(0, 5), 1.0);
}
