#pragma once

#include "core/stats.h"
#include "report/run_context.h"
#include "report/table.h"
#include "store/store.h"

#include <filesystem>
#include <string>
#include <vector>

// Result rows with chosen samples, for store and compare tests (no model runs).
namespace im::test::store_fixtures {

inline report::run_context context(const std::string & model = "qwen2 1.5B Q4_K - Medium", const std::string & cpu = "Test CPU",
                                   const std::string & time = "2026-11-26T10:00:00Z") {
    report::run_context c;
    c.infermeter_version = "0.1.0";
    c.build_commit = "80fb11a";
    c.backends = "CPU";
    c.cpu_info = cpu;
    c.model_filename = "/models/qwen2-1.5b-q4_k_m.gguf";
    c.model_type = model;
    c.test_time = time;
    c.command_line = "infermeter bench";
    return c;
}

inline double mean_of(const std::vector<double> & v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Adds a bench row: pp when n_gen is 0, tg when n_prompt is 0.
inline void add_bench_row(report::table & t, const report::run_context & c, int n_prompt, int n_gen,
                          const std::vector<double> & samples_ts, int n_threads = 2) {
    auto & row = t.add_row();
    report::fill_context(t, row, c);
    t.set(row, "n_prompt", int64_t{n_prompt});
    t.set(row, "n_gen", int64_t{n_gen});
    t.set(row, "n_depth", int64_t{0});
    t.set(row, "n_threads", int64_t{n_threads});
    t.set(row, "n_gpu_layers", int64_t{0});
    t.set(row, "flash_attn", std::string("auto"));
    t.set(row, "type_k", std::string("f16"));
    t.set(row, "type_v", std::string("f16"));
    t.set(row, "n_batch", int64_t{2048});
    t.set(row, "n_ubatch", int64_t{512});
    t.set(row, "avg_ts", mean_of(samples_ts));
    t.set(row, "samples_ts", samples_ts);
}

inline report::table bench(const report::run_context & c, const std::vector<double> & pp_ts,
                           const std::vector<double> & tg_ts) {
    report::table t = store::result_shape("bench");
    add_bench_row(t, c, 512, 0, pp_ts);
    add_bench_row(t, c, 0, 128, tg_ts);
    return t;
}

// Adds a parallel row with raw times; the means are filled from them as the lockstep runner does.
inline void add_parallel_row(report::table & t, const report::run_context & c, int workers, int n_prompt, int n_predict,
                             const std::vector<double> & t_pp_s, const std::vector<double> & t_tg_s) {
    auto & row = t.add_row();
    report::fill_context(t, row, c);
    t.set(row, "mode", std::string("lockstep"));
    t.set(row, "workers", int64_t{workers});
    t.set(row, "n_prompt", int64_t{n_prompt});
    t.set(row, "n_predict", int64_t{n_predict});
    std::vector<double> overall;
    for (size_t i = 0; i < t_pp_s.size(); ++i) {
        overall.push_back(workers * (n_prompt + n_predict) / (t_pp_s[i] + t_tg_s[i]));
    }
    t.set(row, "overall_tps", mean_of(overall));
    t.set(row, "samples_t_pp_s", t_pp_s);
    t.set(row, "samples_t_tg_s", t_tg_s);
}

// Adds a request-level row ("continuous" or "serve" table): a closed loop of `concurrency` users
// with these per-request TTFTs (ms); TPOT and E2E follow from them, percentiles from the samples.
inline void add_request_row(report::table & t, const report::run_context & c, int concurrency, double output_tps,
                            const std::vector<double> & ttft_ms) {
    auto & row = t.add_row();
    report::fill_context(t, row, c);
    t.set(row, "mode", t.name);
    t.set(row, "arrival", std::string("closed"));
    t.set(row, "concurrency", int64_t{concurrency});
    t.set(row, "lengths", std::string("fixed 128/256"));
    t.set(row, "sampling", std::string("greedy, CPU sampling"));
    t.set(row, "output_tps", output_tps);
    t.set(row, "request_tps", output_tps / 256);
    t.set(row, "goodput_rps", output_tps / 256);
    std::vector<double> tpot, e2e;
    for (double x : ttft_ms) {
        tpot.push_back(20 + x / 100);
        e2e.push_back(x + 255 * (20 + x / 100));
    }
    const auto pct = [](std::vector<double> v, double p) { return im::stats::percentile(std::move(v), p); };
    t.set(row, "ttft_p50_ms", pct(ttft_ms, 50));
    t.set(row, "ttft_p99_ms", pct(ttft_ms, 99));
    t.set(row, "tpot_p99_ms", pct(tpot, 99));
    t.set(row, "e2e_p99_ms", pct(e2e, 99));
    t.set(row, "samples_ttft_ms", ttft_ms);
    t.set(row, "samples_tpot_ms", tpot);
    t.set(row, "samples_e2e_ms", e2e);
}

}  // namespace im::test::store_fixtures
