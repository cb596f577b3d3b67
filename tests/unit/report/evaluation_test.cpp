#include "dataset/analysis.h"
#include "hardware/roofline.h"
#include "hardware/specs.h"
#include "core/format.h"
#include "report/cost.h"
#include "report/evaluation.h"
#include "report/telemetry.h"
#include "support/golden.h"
#include "support/reference.h"
#include "workload/metrics.h"
#include "workload/plan.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace im;

namespace {

// A recorded evaluation: the reference's measurements (M1 Pro, Qwen2-1.5B Q4_K_M, 128/4096) with
// a dataset of known lengths, analyzed against the M1 Pro datasheet.
report::evaluation recorded() {
    report::evaluation e;
    e.ctx.infermeter_version = "0.1.0";
    e.ctx.build_commit = "80fb11a";
    e.ctx.llama_commit = "80fb11ac73e66d89eae2c6a91d8a77428fa733ed";
    e.ctx.backends = "Metal";
    e.ctx.cpu_info = "Apple M1 Pro";
    e.ctx.model_filename = "qwen2-1.5b-q4_k_m.gguf";
    e.ctx.model_type = "qwen2 1.5B Q4_K - Medium";
    e.ctx.model_size = 980092928;
    e.ctx.model_n_params = 1543714304;
    e.ctx.test_time = "2026-11-26T00:00:00Z";
    e.ctx.command_line = "infermeter evaluate --profile comprehensive --ctx-min 8192";
    e.profile = "comprehensive";
    e.dataset_path = "alpaca.jsonl";
    e.scenario = "comprehensive";
    e.n_prompt = 128;
    e.n_predict = 4096;
    e.kv_bytes_per_token = 28672;
    e.config = {"Qwen2-1.5B-Instruct", "Q4_K_M", 980092928, 1543714304, "Apple M1 Pro", "Metal", 8, {}};
    e.config.params.n_batch = 2048;

    // dataset: prompts 40..100, outputs spread so that p90 is about 2,088
    dataset::analysis a;
    a.path = "alpaca.jsonl";
    a.format = "alpaca";
    a.format_description = "alpaca (jsonl)";
    for (int i = 0; i < 1000; ++i) {
        a.prompt_lengths.push_back(40 + (i * 61) % 61);
        a.output_lengths.push_back(static_cast<int32_t>(std::lround(200.0 * std::pow(1.0024, i))));
    }
    a.records = 1000;
    a.prompt_tokens = dataset::compute_length_stats(a.prompt_lengths);
    a.output_tokens = dataset::compute_length_stats(a.output_lengths);
    a.recommendations = dataset::recommend(a.prompt_tokens, a.prompt_lengths, a.output_tokens, a.output_lengths);
    a.rationale = dataset::rationale_for(a);
    a.tokenizer_name = "ggml-vocab-qwen2.gguf";
    a.tokenizer_type = "bpe";
    a.n_vocab = 151936;
    e.analysis = a;

    e.bench.resize(2);
    e.bench[0].test.n_prompt = 128;
    e.bench[0].samples_ts = {1185.0, 1187.0, 1189.03};
    e.bench[1].test.n_gen = 4096;
    e.bench[1].samples_ts = {60.65, 64.08, 67.51};
    for (auto & b : e.bench) {
        b.ts = stats::summarize(b.samples_ts);
        b.n_threads = 8;
        b.test_time = e.ctx.test_time;
        for (double t : b.samples_ts) b.samples_ns.push_back(static_cast<int64_t>(1e9 * (b.test.n_prompt + b.test.n_gen) / t));
        b.n_warmup = 2;
        b.warmup_converged = true;
        b.ci95_rel = workload::ci95_relative(b.samples_ts);
        b.precision_met = b.ci95_rel <= 0.01;
    }

    e.lockstep_cfg.n_prompt = 128;
    e.lockstep_cfg.n_predict = 4096;
    e.lockstep_cfg.ctx_min = 8192;
    e.lockstep_cfg.workers = {1, 2, 4, 8};
    e.lockstep = test::reference_lockstep();
    e.rec = report::recommend(e.lockstep, e.rec_opts);

    model::info m;
    m.arch = "qwen2";
    m.n_layer = 28;
    m.n_embd = 1536;
    m.n_head = 12;
    m.n_head_kv.assign(28, 2);
    m.head_dim_k = m.head_dim_v = 128;
    m.n_vocab = 151936;
    m.size_bytes = 980092928;
    m.n_params = 1543714304;
    m.file_type = 15;
    m.name = "Qwen2-1.5B";
    const auto spec = hardware::parse_device_spec("bw=200GB/s,flops=5.2TF");
    std::vector<hardware::observation> obs;
    for (const auto & r : e.lockstep.rows) {
        obs.push_back({"decode", r.workers, r.gen_tps.mean, 128 + 2048, 128});
        obs.push_back({"prefill", r.workers, r.prompt_tps.mean, 0, 128});
    }
    hardware::system_info sys;
    sys.cpu_model = "Apple M1 Pro";
    e.roofline = hardware::make_report(sys, *spec, hardware::cost_of(m, GGML_TYPE_F16, GGML_TYPE_F16), obs,
                                       {1, 2, 4, 8, 16, 32, 64}, 128 + 2048);
    e.stages_done = {"analyze", "bench", "parallel", "roofline"};
    e.seconds = 1234;
    return e;
}

}  // namespace

TEST(evaluation_report, markdown_has_the_reference_sections_in_order) {
    const auto md = report::to_markdown(recorded());
    size_t pos = 0;
    for (const char * section : {"## Recommended Parameters", "### Rationale", "## Parameter Options", "## Benchmark Results",
                                 "### Test Configuration", "### Single Request Performance",
                                 "### Parallel Workload Performance", "### Key Performance Insights",
                                 "### Parallel Scaling Analysis", "Interpretation", "### Performance Recommendations",
                                 "**Real-World Latency:**", "### Request Latencies", "**Trade-off Decision Matrix:**",
                                 "## Reproducibility"}) {
        const size_t at = md.find(section, pos);
        ASSERT_NE(at, std::string::npos) << section << " missing or out of order";
        pos = at;
    }
    EXPECT_NE(md.find("| 1 | 128 | 4096 | 4,224 | 1,211.25 | 85.62 | 88.10 | 1.00x |"), std::string::npos);
    EXPECT_NE(md.find("**For Real-Time/Interactive Use:** 4 parallel workers"), std::string::npos);
    EXPECT_NE(md.find("| Batch Processing | 8 | 186 t/s | 26% | 952 MiB | Dataset generation |"), std::string::npos) << md;
    EXPECT_NE(md.find("overhead-bound"), std::string::npos) << "the roofline verdict on the reference's rows";
    EXPECT_NE(md.find("Single 4096-token generation: ~63.9 s"), std::string::npos) << md;
    im::test::expect_golden("evaluation.md", md);
}

TEST(evaluation_report, json_round_trips_measurements) {
    const auto e = recorded();
    const auto j = nlohmann::json::parse(report::to_json(e).dump());
    EXPECT_EQ(j["schema_version"], 2);
    EXPECT_FALSE(j.contains("bench")) << "the rows are stored once, under tables";
    EXPECT_FALSE(j["parallel"].contains("rows"));
    EXPECT_EQ(j["recommendations"]["interactive"]["workers"], 4);
    EXPECT_EQ(j["tables"]["parallel"].size(), 4u);
    EXPECT_EQ(j["tables"]["bench"][1]["samples_ts"].size(), 3u);
    const auto bench = report::bench_from_json(j);
    ASSERT_EQ(bench.size(), 2u);
    EXPECT_NEAR(bench[0].ts.mean, e.bench[0].ts.mean, 1e-9);
    const auto rows = report::lockstep_rows_from_json(j);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_NEAR(rows[3].overall_tps.mean, 186.46, 0.005);
    EXPECT_EQ(rows[3].n_ctx, 34816);
    im::test::expect_golden("evaluation.json", report::to_json(e).dump(2) + "\n");
}

// --resume reads the rows report.json stores once, in "tables": every field it needs survives,
// skipped rows and rows without samples are not reused, and the tables are what the store records.
TEST(evaluation_report, resume_reads_the_stored_tables) {
    auto e = recorded();
    e.lockstep.rows[3].extended = true;
    workload::lockstep_row skipped;
    skipped.workers = 16;
    skipped.n_prompt = 128;
    skipped.n_predict = 4096;
    skipped.skipped = "does not fit in memory";
    e.lockstep.rows.push_back(skipped);
    auto j = nlohmann::json::parse(report::to_json(e).dump());
    const auto tables = report::tables_of(e);
    ASSERT_EQ(j["tables"].size(), tables.size());
    for (const auto & t : tables) EXPECT_EQ(j["tables"][t.name], nlohmann::json::parse(report::to_json(t).dump())) << t.name;

    auto rows = report::lockstep_rows_from_json(j);
    ASSERT_EQ(rows.size(), 4u) << "the skipped W is not reused";
    EXPECT_TRUE(rows[3].extended);
    EXPECT_FALSE(rows[2].extended);
    EXPECT_EQ(rows[3].n_ctx_seq, 4352);
    EXPECT_EQ(rows[3].kv_bytes, e.lockstep.rows[3].kv_bytes);
    EXPECT_EQ(rows[3].t_tg_s, e.lockstep.rows[3].t_tg_s);
    const auto bench = report::bench_from_json(j);
    ASSERT_EQ(bench.size(), 2u);
    EXPECT_EQ(bench[1].test.n_gen, 4096);
    EXPECT_EQ(bench[1].samples_ns, e.bench[1].samples_ns);
    EXPECT_EQ(bench[1].n_threads, 8);

    // A row without samples (nothing measured) is not reused; a file without tables gives nothing.
    j["tables"]["bench"][0].erase("samples_ts");
    j["tables"]["parallel"][0]["samples_t_tg_s"] = nlohmann::json::array();
    EXPECT_EQ(report::bench_from_json(j).size(), 1u);
    EXPECT_EQ(report::lockstep_rows_from_json(j).size(), 3u);
    EXPECT_TRUE(report::bench_from_json(nlohmann::json::object()).empty());
    EXPECT_TRUE(report::lockstep_rows_from_json(nlohmann::json()).empty());
}

TEST(evaluation_report, html_is_self_contained_and_escapes_dataset_strings) {
    auto e = recorded();
    e.dataset_path = "<script>alert('x')</script>.jsonl";
    e.analysis->rationale.push_back("<img src=x onerror=alert(1)>");
    const auto html = report::to_html(e);
    EXPECT_EQ(html.find("<script>alert"), std::string::npos);
    EXPECT_EQ(html.find("<img src=x"), std::string::npos);
    EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)"), std::string::npos);
    EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg")) << "no external resources";
    EXPECT_EQ(html.find("https://"), std::string::npos);
    EXPECT_GE(std::count(html.begin(), html.end(), '\n'), 1);
    size_t svgs = 0;
    for (size_t p = html.find("<svg class=\"chart\""); p != std::string::npos; p = html.find("<svg class=\"chart\"", p + 1)) ++svgs;
    EXPECT_EQ(svgs, 8u) << "histograms ×2, coverage, throughput, efficiency, latency, TPOT, roofline";
}

TEST(evaluation_report, ascii_chart_and_insights_come_from_the_rows) {
    const auto e = recorded();
    const auto chart = report::ascii_efficiency_chart(e.lockstep);
    EXPECT_NE(chart.find("   4 | ###########               46%"), std::string::npos) << chart;
    const auto insights = report::key_insights(e);
    ASSERT_EQ(insights.size(), 4u);
    EXPECT_NE(insights[0].find("1,211 → 1,320 t/s from 1 to 8 workers (+9%)"), std::string::npos) << insights[0];
    EXPECT_NE(insights[1].find("**8 workers:** 181.59 t/s (+112%; +15% over 4)"), std::string::npos) << insights[1];
    EXPECT_NE(insights[3].find("224 → 952 MiB (4.25x)"), std::string::npos) << insights[3];
    // The knee sentence uses the recommendation's own marginals: 1 → 2 dips, 2 → 4 recovers, knee 4.
    EXPECT_NE(insights[1].find("the knee is 4 workers"), std::string::npos) << insights[1];
    EXPECT_NE(insights[1].find("(1 → 2: 0.13x)"), std::string::npos) << insights[1];
    EXPECT_NE(insights[1].find("beyond 4 every step adds less (4 → 8: 0.07x)"), std::string::npos) << insights[1];
    EXPECT_EQ(insights[1].find("from the first step"), std::string::npos) << "the old half-of-ideal rule said the knee was 1";
    EXPECT_NE(insights[1].find("a decode step costs 20.68 ms at W=2 against 11.68 ms at W=1 and 25.38 ms at W=4"),
              std::string::npos) << insights[1];
    EXPECT_NE(insights[2].find("Best efficiency trade-off at 4 parallel workers"), std::string::npos) << insights[2];
}

namespace {

report::evaluation with_rows(const workload::lockstep_result & r) {
    auto e = recorded();
    e.n_predict = 1024;
    e.lockstep = r;
    e.rec = report::recommend(e.lockstep, e.rec_opts);
    return e;
}

}  // namespace

// Issue 9: "diminishing returns beyond 4" beside a knee of 16, while the steps after 4 gained
// +37%, +66% and +58%.
TEST(evaluation_report, insights_agree_with_the_knee_on_a_dip_and_recovery) {
    const auto e = with_rows(test::dip_and_recovery_lockstep());
    ASSERT_EQ(e.rec.interactive.workers, 16);
    const auto insights = report::key_insights(e);
    ASSERT_EQ(insights.size(), 4u);
    const auto & gen = insights[1];
    EXPECT_EQ(gen.find("diminishing returns beyond 2"), std::string::npos) << gen;
    EXPECT_EQ(gen.find("diminishing returns beyond 4"), std::string::npos) << gen;
    EXPECT_NE(gen.find("One step fell below 0.25x speedup per added worker (4 → 8: 0.22x)"), std::string::npos) << gen;
    EXPECT_NE(gen.find("the knee is 16 workers"), std::string::npos) << gen;
    EXPECT_NE(gen.find("beyond 16 every step adds less (16 → 32: 0.19x)"), std::string::npos) << gen;
    EXPECT_NE(gen.find("+38% over 4"), std::string::npos) << gen;
    EXPECT_NE(gen.find("+66% over 8"), std::string::npos) << gen;
    EXPECT_NE(gen.find("a decode step costs 4.13 ms at W=8 against 2.84 ms at W=4 and 4.99 ms at W=16"), std::string::npos)
        << gen;
    EXPECT_NE(insights[2].find("Best efficiency trade-off at 16 parallel workers"), std::string::npos) << insights[2];
    const auto md = report::to_markdown(e);
    EXPECT_NE(md.find("**For High-Throughput Offline Scenarios (Batch Inference):** 32 workers"), std::string::npos) << md;
}

TEST(evaluation_report, insights_on_a_monotone_curve_name_the_knee_and_no_dip) {
    const auto e = with_rows(test::monotone_lockstep());
    const auto gen = report::key_insights(e)[1];
    EXPECT_NE(gen.find("Every step up to 16 workers adds at least 0.25x speedup per added worker; beyond 16 each step "
                       "adds less (16 → 32: 0.14x): diminishing returns beyond 16 workers"),
              std::string::npos) << gen;
    EXPECT_EQ(gen.find("Non-monotone"), std::string::npos) << gen;
}

TEST(evaluation_report, knee_sentence_without_a_knee_and_with_the_baseline) {
    report::recommendations rec;
    rec.knee_workers = 8;
    rec.steps = {{1, 2, 0.9}, {2, 4, 0.8}, {4, 8, 0.7}};
    EXPECT_EQ(report::knee_sentence(rec, 0.25, 1, 8),
              "Every step up to 8 workers adds at least 0.25x speedup per added worker: no knee within the measured range");
    rec.knee_workers = 1;
    rec.steps = {{1, 2, 0.1}, {2, 4, 0.05}};
    EXPECT_EQ(report::knee_sentence(rec, 0.25, 1, 4),
              "No step adds 0.25x speedup per added worker (1 → 2: 0.10x, 2 → 4: 0.05x): the knee is the baseline, 1 worker");
}

TEST(evaluation_report, markdown_has_exactly_one_h1) {
    const auto md = report::to_markdown(recorded());
    size_t h1 = 0;
    for (size_t p = 0; p != std::string::npos; p = md.find('\n', p + 1)) {
        const size_t start = p == 0 ? 0 : p + 1;
        if (md.compare(start, 2, "# ") == 0) ++h1;
    }
    EXPECT_EQ(h1, 1u) << md.substr(0, 600);
}

// issue 11: --price-per-hour. The reference's 1-worker row: 4,096 output tokens in 47.945 s (T_PP 0.10568
// + T_TG 47.839) = 85.43 output t/s; at $2.50/hour a million output tokens cost 2.5 / (85.43 · 3600) · 1e6
// = $8.13.
TEST(evaluation_cost, dollars_per_million_output_tokens) {
    const double out = report::output_tokens_per_s(1, 4096, 0.10568 + 47.839);
    EXPECT_NEAR(out, 85.43, 0.01);
    EXPECT_NEAR(report::usd_per_million_output(2.5, out), 8.129, 0.001);
    EXPECT_EQ(report::usd_per_million_output(0, out), 0);
    EXPECT_EQ(report::usd_per_million_output(2.5, 0), 0);
    EXPECT_EQ(report::output_tokens_per_s(4, 4096, 0), 0);

    auto e = recorded();
    const auto plain = report::to_markdown(e);
    EXPECT_EQ(plain.find("$ / M output tokens"), std::string::npos);
    e.price_per_hour = 2.5;
    const auto md = report::to_markdown(e);
    EXPECT_NE(md.find("| Scenario | Workers | Throughput | Efficiency | Memory | $ / M output tokens | Best For |"), std::string::npos) << md;
    const auto & c = e.rec.max_throughput;
    ASSERT_TRUE(c.found);
    const double usd = report::usd_per_million_output(2.5, report::output_tokens_per_s(c.workers, e.n_predict, c.e2e_s));
    EXPECT_NE(md.find(fmt::format("| {} |", im::fmtx::thousands(usd, 2))), std::string::npos) << md;
    EXPECT_NE(md.find("Cost at $2.50/hour"), std::string::npos);
    const auto j = report::to_json(e);
    EXPECT_NEAR(j["recommendations"]["max_throughput"]["usd_per_million_output"].get<double>(), usd, 1e-9);
    EXPECT_EQ(j["recommendations"]["price_per_hour"].get<double>(), 2.5);
}

// issue 11: --price-per-kwh. Known numbers: 3.6 J per output token is 1 kWh per million tokens, so the
// price itself; 0.5 J at $0.12/kWh: 0.5 · 1e6 / 3.6e6 · 0.12 = $0.016667.
TEST(evaluation_cost, energy_dollars_per_million_output_tokens) {
    EXPECT_NEAR(report::usd_per_million_output_energy(3.6, 0.25), 0.25, 1e-12);
    EXPECT_NEAR(report::usd_per_million_output_energy(0.5, 0.12), 0.5 * 1e6 / 3.6e6 * 0.12, 1e-12);
    EXPECT_NEAR(report::usd_per_million_output_energy(0.5, 0.12), 0.0166667, 1e-7);
    EXPECT_EQ(report::usd_per_million_output_energy(0, 0.12), 0);
    EXPECT_EQ(report::usd_per_million_output_energy(0.5, 0), 0);

    // No row has an energy counter: the cell says so and nothing is estimated.
    auto e = recorded();
    e.price_per_hour = 2.5;
    e.price_per_kwh = 0.12;
    auto md = report::to_markdown(e);
    EXPECT_NE(md.find("| Memory | $ / M output tokens | Energy $ / M output tokens | Best For |"), std::string::npos) << md;
    EXPECT_NE(md.find("| no energy counter | Dataset generation |"), std::string::npos) << md;
    EXPECT_NE(md.find("Energy cost at $0.12/kWh"), std::string::npos);
    auto j = report::to_json(e);
    EXPECT_TRUE(j["recommendations"]["batch"]["usd_per_million_output_energy"].is_null());
    EXPECT_EQ(j["recommendations"]["batch"]["usd_per_million_output_energy_note"], "no energy counter");
    EXPECT_EQ(j["recommendations"]["price_per_kwh"].get<double>(), 0.12);

    // The 8-worker row measured 1,966.08 J over its one repetition: 8 · 4096 tokens → 0.06 J per token.
    for (auto & r : e.lockstep.rows) {
        if (r.workers == 8) r.energy_j = 0.06 * 8 * 4096;
    }
    e.rec = report::recommend(e.lockstep, e.rec_opts);
    ASSERT_EQ(e.rec.batch.workers, 8);
    ASSERT_TRUE(e.rec.batch.joules_per_output_token.has_value());
    EXPECT_NEAR(*e.rec.batch.joules_per_output_token, 0.06, 1e-12);
    md = report::to_markdown(e);
    const double usd = 0.06 * 1e6 / 3.6e6 * 0.12;  // $0.002 per million output tokens
    EXPECT_NE(md.find(fmt::format("| {} | Dataset generation |", im::fmtx::thousands(usd, 4))), std::string::npos) << md;
    j = report::to_json(e);
    EXPECT_NEAR(j["recommendations"]["batch"]["usd_per_million_output_energy"].get<double>(), usd, 1e-12);
    EXPECT_NEAR(j["recommendations"]["batch"]["joules_per_output_token"].get<double>(), 0.06, 1e-12);
    EXPECT_FALSE(j["recommendations"]["batch"].contains("usd_per_million_output_energy_note"));
    EXPECT_TRUE(j["recommendations"]["interactive"]["usd_per_million_output_energy"].is_null()) << "W = 4 has no counter";
}

namespace {

// A recorded series: bench then parallel at W = 1 and 2, GPU power and memory from NVML, RSS from /proc.
telemetry::series recorded_series(bool with_power) {
    telemetry::series s;
    s.interval_s = 0.25;
    s.sources = with_power ? std::vector<std::string>{"nvml", "proc"} : std::vector<std::string>{"proc"};
    if (with_power) s.gpu_name = "NVIDIA H200";
    else s.nvml_why_not = "no NVML (libnvidia-ml.so.1 could not be loaded: no NVIDIA driver here)";
    s.rapl_why_not = "no /sys/class/powercap (not Linux, or no RAPL driver: common in VMs)";
    for (int i = 0; i < 40; ++i) {
        telemetry::sample x;
        x.t_s = 0.25 * i;
        x.stage = i < 10 ? "bench" : "parallel";
        x.level = i < 10 ? 1 : i < 25 ? 1 : 2;
        if (with_power) {
            x.gpu_power_w = 100.0 + i;
            x.gpu_memory_used_mib = 1000.0 + 10 * i;
        }
        x.process_rss_mib = 500.0 + i;
        if (i > 0) x.process_cpu_cores = 2.0;
        s.samples.push_back(x);
    }
    s.samples_recorded = s.samples.size();
    s.stages = {{"bench", 0.0, 2.25}, {"parallel", 2.5, 9.75}};
    return s;
}

}  // namespace

TEST(evaluation_telemetry, json_shape_and_decimation) {
    const auto s = recorded_series(true);
    auto j = report::telemetry_json(s);
    EXPECT_EQ(j["interval_s"], 0.25);
    EXPECT_EQ(j["sources"], nlohmann::json({"nvml", "proc"}));
    EXPECT_EQ(j["gpu"], "NVIDIA H200");
    EXPECT_TRUE(j["power_note"].is_null());
    EXPECT_EQ(j["unavailable"]["rapl"], s.rapl_why_not);
    EXPECT_FALSE(j["unavailable"].contains("nvml"));
    EXPECT_EQ(j["samples_recorded"], 40);
    EXPECT_EQ(j["samples_kept"], 40);
    EXPECT_FALSE(j["decimated"].get<bool>());
    ASSERT_EQ(j["stages"].size(), 2u);
    EXPECT_EQ(j["stages"][1]["stage"], "parallel");
    EXPECT_EQ(j["stages"][1]["start_s"], 2.5);
    ASSERT_EQ(j["series"].size(), 40u);
    const auto & first = j["series"][0];
    EXPECT_EQ(first["t_s"], 0.0);
    EXPECT_EQ(first["stage"], "bench");
    EXPECT_EQ(first["level"], 1);
    EXPECT_EQ(first["gpu_power_w"], 100.0);
    EXPECT_EQ(first["gpu_memory_used_mib"], 1000.0);
    EXPECT_EQ(first["process_rss_mib"], 500.0);
    for (const char * absent : {"cpu_package_power_w", "gpu_util_pct", "gpu_sm_clock_mhz", "process_cpu_cores", "process_cpu_s"}) {
        EXPECT_FALSE(first.contains(absent)) << absent << ": not read, so not written";
    }
    EXPECT_EQ(j["series"][39]["level"], 2);

    j = report::telemetry_json(s, 16);  // bounded: evenly decimated, first and last kept
    EXPECT_EQ(j["samples_kept"], 16);
    EXPECT_TRUE(j["decimated"].get<bool>());
    EXPECT_EQ(j["series"].size(), 16u);
    EXPECT_EQ(j["series"][15]["t_s"], 9.75);

    const auto none = report::telemetry_json(recorded_series(false));
    EXPECT_EQ(none["power_note"].get<std::string>().rfind("no power counter on this machine: NVML absent", 0), 0u);

    auto e = recorded();
    EXPECT_TRUE(report::to_json(e)["telemetry"].is_null());
    e.telemetry = s;
    EXPECT_EQ(report::to_json(e)["telemetry"]["series"].size(), 40u);
}

TEST(evaluation_telemetry, markdown_summarizes_each_stage) {
    const auto md = report::telemetry_markdown(recorded_series(true));
    EXPECT_NE(md.find("Sampled every 250 ms from nvml, proc (40 samples)"), std::string::npos) << md;
    // bench: samples 0..9, GPU power 100..109 W (mean 104.5), RSS peak 509 MiB.
    EXPECT_NE(md.find(fmt::format("| bench | {} | 10 | 104.5 / 109.0 W | - | 1,090 MiB | 509 MiB | 2.00 |", im::fmtx::duration(2.25))),
              std::string::npos) << md;
    const auto quiet = report::telemetry_markdown(recorded_series(false));
    EXPECT_NE(quiet.find("no power counter on this machine: NVML absent"), std::string::npos) << quiet;
}

// The HTML charts power and memory over time with the stage boundaries; without power it says why.
TEST(evaluation_telemetry, html_charts_the_series_or_says_why_not) {
    auto e = recorded();
    e.telemetry = recorded_series(true);
    e.telemetry->stages[0].stage = "<b>bench</b>";  // labels are escaped like every other string
    auto h = report::to_html(e);
    EXPECT_NE(h.find("<h2>Telemetry during the run</h2>"), std::string::npos);
    EXPECT_NE(h.find("aria-label=\"Power over time\""), std::string::npos);
    EXPECT_NE(h.find("aria-label=\"Memory over time\""), std::string::npos);
    EXPECT_NE(h.find("&lt;b&gt;bench&lt;/b&gt;"), std::string::npos);
    EXPECT_EQ(h.find("<b>bench</b>"), std::string::npos);
    EXPECT_NE(h.find("stroke-dasharray=\"3 3\""), std::string::npos) << "stage boundaries are marked";

    e.telemetry = recorded_series(false);
    h = report::to_html(e);
    EXPECT_EQ(h.find("aria-label=\"Power over time\""), std::string::npos);
    EXPECT_NE(h.find("No power chart: no power counter on this machine: NVML absent"), std::string::npos);
    EXPECT_NE(h.find("aria-label=\"Memory over time\""), std::string::npos) << "RSS is still charted";

    e.telemetry.reset();
    EXPECT_NE(report::to_html(e).find("No telemetry series"), std::string::npos);
}

// Each lockstep row's peak memory flows into every writer and back through --resume.
TEST(evaluation_telemetry, row_peaks_in_tables_markdown_and_resume) {
    auto e = recorded();
    e.lockstep.rows[1].peak_rss_mib = 812.4;
    e.lockstep.rows[1].peak_gpu_memory_mib = 3072.0;
    const auto t = report::parallel_table(e.lockstep, e.lockstep_cfg, e.ctx);
    EXPECT_EQ(std::get<double>(t.get(1, "peak_rss_mib")), 812.4);
    EXPECT_EQ(std::get<double>(t.get(1, "peak_gpu_memory_mib")), 3072.0);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(t.get(0, "peak_rss_mib")));
    const auto md = report::parallel_markdown(e.lockstep, e.lockstep_cfg, e.kv_bytes_per_token);
    EXPECT_NE(md.find("| 2 | 3,072 MiB | 812 MiB |"), std::string::npos) << md;
    EXPECT_NE(report::to_html(e).find("<th>Peak RSS / GPU memory</th>"), std::string::npos);
    const auto rows = report::lockstep_rows_from_json(nlohmann::json::parse(report::to_json(e).dump()));
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[1].peak_rss_mib, 812.4);
    EXPECT_EQ(rows[1].peak_gpu_memory_mib, 3072.0);
    EXPECT_FALSE(rows[0].peak_rss_mib.has_value());
}
