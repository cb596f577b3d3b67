#include "report/recommend.h"
#include "support/reference.h"
#include "workload/metrics.h"
#include "workload/plan.h"

#include <gtest/gtest.h>

using namespace im;

using im::test::reference_lockstep;
namespace {
workload::lockstep_result reference_rows() { return reference_lockstep(); }
}  // namespace

TEST(recommend, reference_knee_is_4_workers_and_batch_is_8) {
    const auto rec = report::recommend(reference_rows(), {});
    ASSERT_TRUE(rec.interactive.found);
    EXPECT_EQ(rec.interactive.workers, 4);  // 2→4 adds 0.355 per worker; 4→8 only 0.07
    EXPECT_NEAR(rec.interactive.marginal, (1.84 - 1.13) / 2, 0.01);
    EXPECT_NEAR(rec.interactive.efficiency, 0.46, 0.005);
    EXPECT_EQ(rec.batch.workers, 8);
    EXPECT_NEAR(rec.batch.overall_tps, 186.46, 0.01);
    EXPECT_EQ(rec.max_throughput.workers, 8);
}

TEST(recommend, knee_threshold_is_configurable) {
    report::recommend_options o;
    o.knee_min_marginal = 0.05;  // 4→8 adds 0.07 per worker: now 8 is still on the curve
    EXPECT_EQ(report::recommend(reference_rows(), o).interactive.workers, 8);
    o.knee_min_marginal = 0.5;
    EXPECT_EQ(report::recommend(reference_rows(), o).interactive.workers, 1);
}

TEST(recommend, slo_excludes_worker_counts) {
    report::recommend_options o;
    // TPOT at 4 workers: T_TG / 4096 = (4·4096/157.62)/4096 = 25.4 ms; at 2 workers 20.7 ms
    o.slo_tpot_s = 0.022;
    const auto rec = report::recommend(reference_rows(), o);
    EXPECT_EQ(rec.interactive.workers, 1);
    EXPECT_FALSE(rec.notes.empty());
    EXPECT_EQ(rec.batch.workers, 8) << "SLOs bound the interactive choice only";
}

TEST(recommend, extension_rows_count_for_batch_and_maximum) {
    auto r = reference_rows();
    auto extra = r.rows.back();
    extra.workers = 16;
    extra.extended = true;
    extra.overall_tps.mean = 200;
    extra.speedup = 200 / r.rows.front().overall_tps.mean;
    r.rows.push_back(extra);
    r.extension_stop = "8 to 16 workers added 7.3% overall throughput (< 5%)";
    const auto rec = report::recommend(r, {});
    EXPECT_EQ(rec.batch.workers, 16) << "186.46 at 8 is 6.8% below the 200 t/s measured at 16";
    EXPECT_EQ(rec.max_throughput.workers, 16);
    EXPECT_EQ(rec.max_stop, r.extension_stop);
}

TEST(recommend, batch_is_the_smallest_w_within_5_percent_of_the_peak) {
    auto r = reference_rows();
    auto extra = r.rows.back();
    extra.workers = 16;
    extra.extended = true;
    extra.overall_tps.mean = 190;  // 186.46 at 8 is within 5% of it
    extra.speedup = 190 / r.rows.front().overall_tps.mean;
    r.rows.push_back(extra);
    const auto rec = report::recommend(r, {});
    EXPECT_EQ(rec.max_throughput.workers, 16);
    EXPECT_EQ(rec.batch.workers, 8);
    EXPECT_NE(rec.batch.reason.find("within 5%"), std::string::npos) << rec.batch.reason;
    EXPECT_NE(rec.batch.reason.find("190 t/s at 16 workers"), std::string::npos) << rec.batch.reason;
}

// Issue 9: Interactive 16 (3,381 t/s), Batch 8 (2,048 t/s), Maximum 32 — Batch delivered less than
// Interactive because it ignored the extension rows.
TEST(recommend, batch_never_delivers_less_than_interactive_on_a_dip_and_recovery) {
    const auto rec = report::recommend(im::test::dip_and_recovery_lockstep(), {});
    EXPECT_EQ(rec.interactive.workers, 16) << "8 → 16 adds >= 0.25 per worker again";
    EXPECT_EQ(rec.knee_workers, 16);
    EXPECT_EQ(rec.max_throughput.workers, 32);
    EXPECT_EQ(rec.batch.workers, 32);
    EXPECT_GE(rec.batch.overall_tps, rec.interactive.overall_tps);
}

TEST(recommend, batch_falls_back_to_interactive_when_the_smallest_near_peak_w_delivers_less) {
    // Speedups 1, 2, ..., 16 → 90 at W=16 → 94.2 at 32: the 16 → 32 step still adds 0.26 per worker
    // (the knee is 32), yet 16 is within 5% of 32.
    workload::lockstep_result r = reference_rows();
    r.rows.resize(2);
    r.rows[1].workers = 16;
    r.rows[1].speedup = 90;
    r.rows[1].overall_tps.mean = 90 * r.rows[0].overall_tps.mean;
    auto big = r.rows[1];
    big.workers = 32;
    big.speedup = 94.2;
    big.overall_tps.mean = 94.2 * r.rows[0].overall_tps.mean;
    r.rows.push_back(big);
    const auto rec = report::recommend(r, {});
    ASSERT_EQ(rec.interactive.workers, 32);
    EXPECT_EQ(rec.batch.workers, 32);
    EXPECT_NE(rec.batch.reason.find("less than the interactive"), std::string::npos) << rec.batch.reason;
}

TEST(recommend, steps_and_irregular_steps_on_three_tables) {
    // The reference: 1 → 2 adds 0.13 per worker, 2 → 4 adds 0.36: W=2 is a dip.
    const auto ref = report::recommend(reference_rows(), {});
    ASSERT_EQ(ref.steps.size(), 3u);
    EXPECT_NEAR(ref.steps[0].marginal, 0.13, 0.005);
    EXPECT_NEAR(ref.steps[1].step_ms_to, 25.38, 0.01);
    ASSERT_EQ(ref.irregular.size(), 1u);
    EXPECT_NE(ref.irregular[0].find("a decode step costs 20.68 ms at W=2 against 11.68 ms at W=1 and 25.38 ms at W=4"),
              std::string::npos) << ref.irregular[0];

    const auto dip = report::recommend(im::test::dip_and_recovery_lockstep(), {});
    ASSERT_EQ(dip.irregular.size(), 1u);
    EXPECT_NE(dip.irregular[0].find("a decode step costs 4.13 ms at W=8 against 2.84 ms at W=4 and 4.99 ms at W=16"),
              std::string::npos) << dip.irregular[0];
    EXPECT_NE(dip.irregular[0].find("generation +38%, then +66%"), std::string::npos) << dip.irregular[0];

    const auto mono = report::recommend(im::test::monotone_lockstep(), {});
    EXPECT_TRUE(mono.irregular.empty()) << mono.irregular.front();
    EXPECT_EQ(mono.interactive.workers, 16);
    EXPECT_EQ(mono.batch.workers, 32);
}

TEST(recommend, a_fall_in_throughput_is_named) {
    auto r = im::test::lockstep_from({{1, 1000, 10}, {2, 1000, 11}, {4, 1000, 30}});
    const auto rec = report::recommend(r, {});
    ASSERT_EQ(rec.irregular.size(), 1u);
    EXPECT_NE(rec.irregular[0].find("overall throughput falls"), std::string::npos) << rec.irregular[0];
    EXPECT_NE(rec.irregular[0].find("30.00 ms at W=4 against 11.00 ms at W=2"), std::string::npos) << rec.irregular[0];
}

TEST(recommend, skipped_rows_are_ignored) {
    auto r = reference_rows();
    r.rows[3].skipped = "does not fit";
    const auto rec = report::recommend(r, {});
    EXPECT_EQ(rec.batch.workers, 4);
}
