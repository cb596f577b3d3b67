#include "report/measurements.h"
#include "report/table.h"
#include "support/golden.h"
#include "support/reference.h"
#include "workload/metrics.h"

#include <gtest/gtest.h>

using namespace im;

namespace {

report::run_context fixed_context() {
    report::run_context c;
    c.infermeter_version = "0.1.0";
    c.build_commit = "80fb11a";
    c.backends = "CPU";
    c.cpu_info = "Test CPU";
    c.model_filename = "qwen2-1.5b-q4_k_m.gguf";
    c.model_type = "qwen2 1.5B Q4_K - Medium";
    c.model_size = 980092928;
    c.model_n_params = 1543714304;
    c.test_time = "2026-11-26T00:00:00Z";
    return c;
}

workload::bench_result bench_row(int np, int ng, std::vector<double> ts) {
    workload::bench_result r;
    r.test.n_prompt = np;
    r.test.n_gen = ng;
    r.samples_ts = ts;
    for (double t : ts) r.samples_ns.push_back(static_cast<int64_t>(1e9 * (np + ng) / t));
    r.ts = stats::summarize(r.samples_ts);
    r.n_warmup = 2;
    r.warmup_converged = true;
    r.ci95_rel = workload::ci95_relative(r.samples_ts);
    r.precision_met = r.samples_ts.size() >= 2 && r.ci95_rel <= 0.01;
    r.avg_ns = 1e9 * (np + ng) / r.ts.mean;
    r.stddev_ns = 0;
    r.n_ctx_allocated = static_cast<uint32_t>(np + ng);
    r.n_threads = 8;
    r.test_time = "2026-11-26T00:00:00Z";
    return r;
}

workload::lockstep_result reference_parallel(workload::lockstep_config & cfg) {
    cfg.n_prompt = 128;
    cfg.n_predict = 4096;
    cfg.ctx_min = 8192;
    return test::reference_lockstep();
}

}  // namespace

TEST(writers, bench_markdown_matches_reference_style) {
    const std::vector<workload::bench_result> results = {bench_row(128, 0, {1185.0, 1187.0, 1189.03}),
                                                         bench_row(0, 4096, {64.08})};
    const std::string md = report::bench_markdown(results);
    EXPECT_NE(md.find("| Prompt Processing (pp) | 128 | - | 1,187.01 ± 2.02 |"), std::string::npos) << md;
    EXPECT_NE(md.find("| Token Generation (tg) | - | 4096 | 64.08 ± n/a |"), std::string::npos) << md;
    test::expect_golden("bench.md", md);
    EXPECT_EQ(report::bench_repetitions_note(results),
              "\n**Repetitions:** pp128: 2 warmups, 3 repetitions, 95% interval ±0.42% of the median (target ±1% met); "
              "tg4096: 2 warmups, 1 repetition, 95% interval ±0.00% of the median (target ±1% not met)\n");
    const auto t = report::bench_table(results, fixed_context());
    test::expect_golden("bench.csv", report::to_csv(t));
    test::expect_golden("bench.json", report::to_json(t).dump(2) + "\n");
    test::expect_golden("bench.sql", report::to_sql(t));
}

TEST(writers, bench_fields_follow_llama_bench) {
    const auto t = report::bench_table({}, fixed_context());
    for (const char * f : {"build_commit", "cpu_info", "gpu_info", "backends", "model_type", "model_size", "model_n_params",
                           "n_batch", "n_ubatch", "n_threads", "type_k", "type_v", "n_gpu_layers", "flash_attn",
                           "n_prompt", "n_gen", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns",
                           "samples_ts", "schema_version", "infermeter_version", "n_ctx_allocated", "n_warmup",
                           "warmup_converged", "repetitions", "ci95_rel", "precision_met"}) {
        bool found = false;
        for (const auto & fld : t.fields) found = found || fld.name == f;
        EXPECT_TRUE(found) << f;
    }
}

TEST(writers, parallel_reference_table) {
    workload::lockstep_config cfg;
    const auto r = reference_parallel(cfg);
    const std::string md = report::parallel_markdown(r, cfg, 28672);
    EXPECT_NE(md.find("**Context Size:** 34,816 tokens (auto-calculated for 8 workers)"), std::string::npos) << md;
    EXPECT_NE(md.find("**KV Cache:** 952 MiB (8 parallel sequences, 4352 cells per sequence"), std::string::npos) << md;
    EXPECT_NE(md.find("| 1 | 128 | 4096 | 4,224 | 1,211.25 | 85.62 | 88.10 | 1.00x |"), std::string::npos) << md;
    EXPECT_NE(md.find("| 8 | 128 | 4096 | 33,792 | 1,319.90 | 181.59 | 186.46 | 2.12x |"), std::string::npos) << md;
    EXPECT_NE(md.find("4 workers:  46% efficiency (1.84x / 4)"), std::string::npos) << md;
    test::expect_golden("parallel.md", md);
    const auto t = report::parallel_table(r, cfg, fixed_context());
    test::expect_golden("parallel.csv", report::to_csv(t));
    test::expect_golden("parallel.json", report::to_json(t).dump(2) + "\n");
}

TEST(writers, csv_and_sql_escape_text) {
    report::table t;
    t.name = "x";
    t.fields = {{"a", report::field_type::text}, {"b", report::field_type::integer}};
    auto & row = t.add_row();
    t.set(row, "a", std::string("it's, \"quoted\""));
    EXPECT_EQ(report::to_csv(t), "a,b\n\"it's, \"\"quoted\"\"\",\n");
    EXPECT_NE(report::to_sql(t).find("'it''s, \"quoted\"', NULL"), std::string::npos) << report::to_sql(t);
}
