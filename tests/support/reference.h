#pragma once

#include "workload/lockstep.h"
#include "workload/metrics.h"
#include "workload/plan.h"

// The reference evaluation's parallel table (Qwen2-1.5B Q4_K_M on an M1 Pro, 128/4096, ctx-min
// 8192), rebuilt from its prompt and generation rates: the fixture of the report and
// recommendation tests.
namespace im::test {

inline workload::lockstep_result reference_lockstep() {
    const std::pair<int, std::pair<double, double>> rates[] = {
        {1, {1211.25, 85.62}}, {2, {1277.32, 96.72}}, {4, {1312.08, 157.62}}, {8, {1319.90, 181.59}}};
    workload::lockstep_result r;
    r.base_workers = 1;
    double base = 0;
    for (const auto & [w, pp_tg] : rates) {
        workload::lockstep_row row;
        row.workers = w;
        row.n_prompt = 128;
        row.n_predict = 4096;
        row.n_ctx = workload::auto_n_ctx(w, 128, 4096, 8192);
        row.n_ctx_seq = workload::n_ctx_seq(row.n_ctx, w, false);
        row.kv_bytes = row.kv_bytes_allocated = workload::kv_bytes(row.n_ctx, 28672);
        row.total_kv = static_cast<long>(w) * 4224;
        row.add_repetition(w * 128 / pp_tg.first, w * 4096 / pp_tg.second);
        row.summarize();
        if (w == 1) base = row.overall_tps.mean;
        const auto sc = workload::scaling_of(row.overall_tps.mean, w, base, 1);
        row.speedup = sc.speedup;
        row.efficiency = sc.efficiency;
        row.n_threads = 8;
        row.test_time = "2026-11-26T00:00:00Z";
        r.rows.push_back(row);
    }
    return r;
}

}  // namespace im::test
