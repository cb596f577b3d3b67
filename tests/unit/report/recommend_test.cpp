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

TEST(recommend, extension_rows_count_for_maximum_only) {
    auto r = reference_rows();
    auto extra = r.rows.back();
    extra.workers = 16;
    extra.extended = true;
    extra.overall_tps.mean = 200;
    extra.speedup = 200 / r.rows.front().overall_tps.mean;
    r.rows.push_back(extra);
    r.extension_stop = "8 to 16 workers added 7.3% overall throughput (< 5%)";
    const auto rec = report::recommend(r, {});
    EXPECT_EQ(rec.batch.workers, 8);
    EXPECT_EQ(rec.max_throughput.workers, 16);
    EXPECT_EQ(rec.max_stop, r.extension_stop);
}

TEST(recommend, skipped_rows_are_ignored) {
    auto r = reference_rows();
    r.rows[3].skipped = "does not fit";
    const auto rec = report::recommend(r, {});
    EXPECT_EQ(rec.batch.workers, 4);
}
