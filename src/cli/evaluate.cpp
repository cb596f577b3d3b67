#include "cli/commands.h"

#include "cli/engine_flags.h"
#include "cli/output.h"
#include "cli/request_flags.h"
#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/ranges.h"
#include "pipeline/evaluate.h"
#include "report/measurements.h"
#include "store/store.h"

#include <fmt/format.h>

#include <cmath>

namespace im::cli {

namespace {

struct evaluate_args {
    std::string model = "synth:qwen2-1.5b-q4_k_m";
    std::string dataset;
    std::string format = "auto";
    std::string prompt_field, output_field;
    std::string round = "pow2";
    std::string profile = "standard";
    std::string workers;
    int max_workers = 0;
    int n_prompt = 0, n_predict = 0;
    double slo_ttft_ms = 0, slo_tpot_ms = 0;
    std::string slo = "ttft=500ms,tpot=30ms";
    bool no_serving = false;
    double knee = 0.25;
    int64_t ctx_min = 0;
    bool kv_unified = false;
    std::string device_spec;
    bool reprobe = false;
    std::string out = "infermeter-report";
    bool resume = false;
    bool fast = false;
    int verify = 0;
    double price_per_hour = 0;
    bool tune = false;
    std::string tune_budget = "5m";
    double price_per_kwh = 0;
    store::store_flags db;
    engine_flags engine;
};

void run(const evaluate_args & a) {
    init_engine();
    pipeline::evaluate_options o;
    o.model_ref = a.model;
    o.dataset = a.dataset;
    o.dataset_format = a.format;
    o.prompt_field = a.prompt_field;
    o.output_field = a.output_field;
    o.round = dataset::parse_rounding(a.round);
    o.prof = pipeline::profile_from_name(a.profile);
    if (!a.workers.empty()) o.workers = parse_int_list(a.workers, "--workers", 1);
    const int max_seq = static_cast<int>(llama_max_parallel_sequences());
    if (a.max_workers < 0 || a.max_workers > max_seq) {
        throw_usage("--max-workers: {} is out of range (1..{}, llama.cpp's limit of parallel sequences)", a.max_workers,
                    max_seq);
    }
    if (a.max_workers > 0) o.max_workers = a.max_workers;
    if (a.n_prompt < 0 || a.n_predict < 0) throw_usage("-p/-n: token counts must be > 0");
    if (a.n_prompt > 0) o.n_prompt = a.n_prompt;
    if (a.n_predict > 0) o.n_predict = a.n_predict;
    if (a.slo_ttft_ms < 0 || a.slo_tpot_ms < 0) throw_usage("--slo-ttft/--slo-tpot: milliseconds must be > 0");
    o.slo = workload::parse_slo(a.slo);
    o.serving = !a.no_serving;
    if (a.slo_ttft_ms > 0) o.slo_ttft_s = a.slo_ttft_ms / 1e3;
    if (a.slo_tpot_ms > 0) o.slo_tpot_s = a.slo_tpot_ms / 1e3;
    if (a.knee <= 0 || a.knee > 1) throw_usage("--knee: {} is out of range (0 < knee <= 1)", a.knee);
    o.knee_min_marginal = a.knee;
    o.params = single(a.engine, "evaluate");
    o.ctx_min = a.ctx_min;
    o.kv_unified = a.kv_unified;
    o.device_spec = a.device_spec;
    o.reprobe = a.reprobe;
    o.out_dir = a.out;
    o.resume = a.resume;
    if (a.verify > 0 && !a.fast) throw_usage("--verify {} compares a --fast prediction with a measurement: add --fast", a.verify);
    o.fast = a.fast;
    o.verify = a.verify;
    if (!std::isfinite(a.price_per_hour) || a.price_per_hour < 0 || a.price_per_hour > 1e6) {
        throw_usage("--price-per-hour {}: give the machine's price in USD per hour, 0..1,000,000", a.price_per_hour);
    }
    o.price_per_hour = a.price_per_hour;
    o.tune = a.tune;
    o.tune_budget_s = duration_seconds(a.tune_budget, "--tune-budget");
    o.price_per_kwh = a.price_per_kwh;
    o.command_line = globals().command_line;

    progress_line progress;
    pipeline::evaluate_callbacks cb;
    cb.stage = [&](const pipeline::stage_event & s) {
        progress.done(fmt::format("[{}/{}] {}: {}{}", s.index, s.total, s.name, s.detail,
                                  s.eta_s >= 0 ? fmt::format(" (ETA ~{})", fmtx::duration(s.eta_s)) : std::string()));
    };
    cb.bench_progress = [&](size_t i, size_t n, const workload::bench_test & t, int rep) {
        progress.update(fmt::format("  bench {}/{}: {} {}", i + 1, n, t.name(), rep < 0 ? fmt::format("warmup {}", -rep) : fmt::format("rep {}", rep + 1)));
    };
    cb.probe_progress = [&](const std::string & line) { progress.update("  probe " + line); };
    cb.lockstep_progress = [&](const workload::lockstep_progress & p) {
        progress.update("  " + lockstep_progress_text(p));
    };
    cb.request_progress = [&](const workload::request_workload & w, const workload::request_progress & p) {
        progress.update("  " + request_progress_text(w, p));
    };
    cb.warn = [&](const std::string & m) {
        progress.clear();
        log::warn("{}", m);
    };
    const auto e = pipeline::run_evaluate(o, cb);
    progress.clear();
    print_stdout(report::terminal_summary(e));
    const auto paths = pipeline::paths_in(o.out_dir);
    const auto abs = [](const std::filesystem::path & p) { return std::filesystem::absolute(p).lexically_normal().string(); };
    print_stdout(fmt::format("\nreport.md:   {}\nreport.html: {}\nreport.json: {}\n", abs(paths.md), abs(paths.html),
                             abs(paths.json)));
    store::record_run(a.db, "evaluate", e.ctx, report::tables_of(e), e.interrupted, abs(paths.json), {abs(paths.json)});
    interrupt::clear_last_words("evaluate-reports");
    if (e.interrupted) {
        throw error(error_kind::interrupted, "interrupted: the reports hold what was measured; rerun with --resume to finish");
    }
}

}  // namespace

void add_evaluate(CLI::App & root) {
    auto a = std::make_shared<evaluate_args>();
    auto * cmd = root.add_subcommand("evaluate", "The main job: dataset → parameters → bench → parallel sweep → roofline → recommendations → report");
    cmd->add_option("-m,--model", a->model, "A .gguf file or synth:PRESET[-QUANT]")->capture_default_str();
    cmd->add_option("--dataset", a->dataset, "Dataset (Alpaca/ShareGPT/OpenAI/JSONL/CSV, .gz); default: a synthetic one with the reference's distribution");
    cmd->add_option("--format", a->format, "Dataset format: auto, alpaca, sharegpt, openai, jsonl, json, csv")->capture_default_str();
    cmd->add_option("--prompt-field", a->prompt_field, "Generic datasets: the prompt field");
    cmd->add_option("--output-field", a->output_field, "Generic datasets: the output field");
    cmd->add_option("--round", a->round, "n-predict granularity: pow2 (smallest power of two covering the "
                                         "scenario's target), 128 or exact")->capture_default_str();
    cmd->add_option("--profile", a->profile, "quick (conservative n-predict capped at 128, W 1,2,4, r=3), standard "
                                             "(recommended, W 1,2,4,8), comprehensive (99% coverage, W up to 64)")->capture_default_str();
    cmd->add_option("-w,--workers", a->workers, "Worker counts to sweep (default: the profile's); the sweep then doubles W while it gains >= 5%");
    cmd->add_option("--max-workers", a->max_workers, "Upper bound of the sweep extension, at most llama.cpp's " +
                                                         std::to_string(llama_max_parallel_sequences()) +
                                                         " parallel sequences (default: 4 quick, 32 standard, 64 comprehensive)");
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Override the recommended prompt length");
    cmd->add_option("-n,--n-predict", a->n_predict, "Override the recommended output length");
    cmd->add_option("--slo-ttft", a->slo_ttft_ms, "Interactive SLO: time to first token, ms");
    cmd->add_option("--slo-tpot", a->slo_tpot_ms, "Interactive SLO: time per output token per stream, ms");
    cmd->add_option("--slo", a->slo, "Serving objectives for the Interactive recommendation and capacity "
                                     "(p99 unless prefixed pNN:)")->capture_default_str();
    cmd->add_flag("--no-serving", a->no_serving, "Skip the continuous-batching stage (latency percentiles, capacity)");
    cmd->add_option("--knee", a->knee, "Marginal speedup per added worker that still counts toward the knee")->capture_default_str();
    cmd->add_option("--ctx-min", a->ctx_min, "Smallest auto context (the reference used 8192)")->capture_default_str();
    cmd->add_flag("--kv-unified", a->kv_unified, "One KV buffer shared by all sequences");
    cmd->add_option("--device-spec", a->device_spec, "Roofline against a datasheet name or bw=...,flops=... instead of measuring");
    cmd->add_flag("--reprobe", a->reprobe, "Measure the hardware ceilings again instead of using the cache");
    cmd->add_option("--out", a->out, "Output folder for report.md, report.html, report.json")->capture_default_str();
    cmd->add_flag("--resume", a->resume, "Continue an interrupted run in --out: measured stages are not repeated; "
                                         "refused unless model file, engine flags, lengths, workers, KV layout and "
                                         "--ctx-min all match");
    cmd->add_flag("--fast", a->fast, "Predict the lockstep sweep from decode-step and prefill probes instead of running it "
                                     "(rows marked ~ with 95% intervals; a kernel switch between the swept W is located by a few bisection "
                                     "probes; docs/fast-mode.md)");
    cmd->add_option("--price-per-hour", a->price_per_hour,
                    "The machine's price in USD per hour: adds dollars per million output tokens to the decision matrix");
    cmd->add_flag("--tune", a->tune, "Run `infermeter tune` at the sweep's largest W first and use the settings it finds "
                                     "for every stage (the search is a section of the report)");
    cmd->add_option("--tune-budget", a->tune_budget, "Time for --tune's search: seconds, or 90s, 10m, 1h")->capture_default_str();
    cmd->add_option("--price-per-kwh", a->price_per_kwh,
                    "Electricity price in USD per kWh: adds the energy cost of a million output tokens, from the "
                    "energy measured by NVML/RAPL (J per output token x 1e6 / 3.6e6 x price); rows without an "
                    "energy counter say so, nothing is estimated");
    cmd->add_option("--verify", a->verify, "With --fast: also measure this W fully and report predicted against measured");
    add_engine_flags(cmd, a->engine);
    add_store_flags(cmd, a->db);
    cmd->callback([a, cmd] {
        // 0 is not "default" here: a flag given must hold a usable value (DESIGN §5).
        if (cmd->count("--max-workers")) check_range(a->max_workers, "--max-workers", 1, 256, "llama.cpp's parallel sequence limit");
        if (cmd->count("--n-prompt")) check_range(a->n_prompt, "-p", 1, 1 << 24);
        if (cmd->count("--n-predict")) check_range(a->n_predict, "-n", 1, 1 << 24);
        check_range(a->ctx_min, "--ctx-min", 0, INT32_MAX, "checked against the trained context and free memory too");
        if (cmd->count("--price-per-kwh") &&
            (!std::isfinite(a->price_per_kwh) || a->price_per_kwh <= 0 || a->price_per_kwh > 1000)) {
            throw_usage("--price-per-kwh {}: give the electricity price in USD per kWh, a number > 0 and at most 1,000 "
                        "(e.g. --price-per-kwh 0.15)", a->price_per_kwh);
        }
        run(*a);
    });
}

}  // namespace im::cli
