#pragma once

#include "engine/llama/session.h"
#include "report/evaluation.h"
#include "workload/requests.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// The main job (`infermeter evaluate`): analyze → parameters → bench → parallel sweep → roofline →
// recommendations → reports. Every stage's results are written to <out>/report.json as they
// arrive, so an interrupted run keeps what it measured and --resume skips it.
namespace im::pipeline {

enum class profile { quick, standard, comprehensive };
profile profile_from_name(const std::string & name);
const char * profile_name(profile p);

struct evaluate_options {
    std::string model_ref = "synth:qwen2-1.5b-q4_k_m";
    std::string dataset;                 // empty: the embedded synthetic dataset (the reference's distribution)
    std::string dataset_format = "auto";
    std::string prompt_field, output_field;
    dataset::rounding round = dataset::rounding::pow2;  // n-predict granularity (--round)
    profile prof = profile::standard;
    std::optional<std::vector<int>> workers;   // default: the profile's
    std::optional<int> max_workers;            // default: the profile's
    std::optional<int> n_prompt, n_predict;    // override the dataset's recommendation
    std::optional<double> slo_ttft_s, slo_tpot_s;
    double knee_min_marginal = 0.25;
    workload::slo slo;                   // --slo: the serving stage's objectives (DESIGN §3 default 500 ms / 30 ms)
    bool serving = true;                 // --no-serving skips the continuous-batching stage
    engine::llama::engine_params params;
    int64_t ctx_min = 0;
    bool kv_unified = false;
    std::string device_spec;             // roofline against a datasheet/user spec instead of probing
    bool reprobe = false;
    std::filesystem::path out_dir;
    bool resume = false;
    bool fast = false;                   // --fast: the parallel stage predicted from step probes (docs/fast-mode.md)
    int verify = 0;                      // --verify W: with --fast, also measure W fully and compare
    double price_per_hour = 0;           // --price-per-hour USD: cost per million output tokens in the report
    bool tune = false;                   // --tune: `infermeter tune` first, its best settings for every stage
    double tune_budget_s = 300;          // --tune-budget
    double price_per_kwh = 0;            // --price-per-kwh USD: energy cost per million output tokens (measured energy only)
    int64_t telemetry_interval_ns = 250'000'000;  // the telemetry sampler's period
    std::string command_line;
};

struct stage_event {
    int index = 0;        // 1-based
    int total = 0;
    std::string name;     // "analyze", "bench", ...
    std::string detail;
    double eta_s = -1;    // remaining time estimate for the whole run; < 0 unknown
};

struct evaluate_callbacks {
    std::function<void(const stage_event &)> stage;
    std::function<void(const workload::lockstep_progress &)> lockstep_progress;
    std::function<void(const std::string &)> probe_progress;  // --fast: one line per step or prefill probe
    std::function<void(size_t, size_t, const workload::bench_test &, int)> bench_progress;
    std::function<void(const std::string &)> warn;
    std::function<void(const workload::request_workload &, const workload::request_progress &)> request_progress;
};

// Paths of the report files in the output folder.
struct report_paths {
    std::filesystem::path md, json, html;
};
report_paths paths_in(const std::filesystem::path & out_dir);

// Runs the pipeline; writes the reports (also when interrupted, marked so) and returns the result.
report::evaluation run_evaluate(const evaluate_options & opts, const evaluate_callbacks & cb);

// Writes report.md, report.json and report.html atomically.
void write_reports(const report::evaluation & e, const std::filesystem::path & out_dir);

// Identity of a model file: its size and an FNV-1a 64 hash of its first MiB (the GGUF header:
// metadata and tensor table), as 16 hex digits. Throws a runtime error naming the path.
nlohmann::ordered_json model_identity(const std::filesystem::path & path);

// What --resume compares (report.json "configuration"): model identity, engine flags, lengths,
// worker counts, max workers, KV layout, ctx-min, bench repetitions.
nlohmann::ordered_json run_configuration(const evaluate_options & opts, const nlohmann::ordered_json & model_id,
                                         int n_prompt, int n_predict, const std::vector<int> & workers,
                                         int max_workers, int bench_repetitions);

// The differences between a saved configuration and this run's, one "key: saved → now" each
// (dotted keys; a key present on one side only counts).
std::vector<std::string> configuration_differences(const nlohmann::json & saved, const nlohmann::json & now);

}  // namespace im::pipeline
