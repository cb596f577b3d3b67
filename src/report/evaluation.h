#pragma once

#include "dataset/analysis.h"
#include "hardware/roofline.h"
#include "report/measurements.h"
#include "report/recommend.h"
#include "report/run_context.h"
#include "report/serving.h"
#include "report/tune.h"
#include "telemetry/sampler.h"
#include "workload/bench.h"
#include "workload/fast.h"
#include "workload/lockstep.h"
#include "workload/split.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

// The one result model of `evaluate`: every writer (report.md, report.json, report.html, the
// terminal summary, the results store) renders this struct and nothing else.
namespace im::report {

struct evaluation {
    run_context ctx;
    std::string profile;                  // quick | standard | comprehensive
    // dataset and the parameters it gave
    std::string dataset_path;
    bool dataset_synthetic = false;
    std::string dataset_note;             // how the synthetic dataset was made
    std::optional<dataset::analysis> analysis;
    std::string scenario;                 // which recommendation the measurements use
    int n_prompt = 0;
    int n_predict = 0;
    // measurements
    nlohmann::ordered_json configuration;  // what --resume must match (pipeline::run_configuration)
    config_summary config;
    uint64_t kv_bytes_per_token = 0;
    std::optional<tune_section> tune;     // --tune: the search that chose the engine settings below
    std::vector<workload::bench_result> bench;
    workload::lockstep_config lockstep_cfg;
    workload::lockstep_result lockstep;
    // --fast: how the lockstep rows were predicted; --verify: the one W measured beside its prediction.
    std::optional<workload::fast_result> fast;
    std::optional<workload::lockstep_row> verified;
    std::optional<hardware::roofline_report> roofline;
    std::string roofline_note;            // why there is no roofline (empty when there is one, or it was not reached)
    // With layers off the host (--rpc, several GPUs): what crosses between devices, the probed links and
    // each measured step's transfer share (docs/scale-out.md "Split analysis"); absent on one device.
    std::optional<workload::split_analysis> split;
    // Continuous batching with real sampling (the serving stage); absent with --no-serving.
    std::optional<serving_result> serving;
    recommend_options rec_opts;
    recommendations rec;
    double price_per_hour = 0;            // --price-per-hour (USD): adds $ per million output tokens; 0: none
    double price_per_kwh = 0;             // --price-per-kwh (USD): $ per million output tokens from measured energy; 0: none
    // Power, memory and CPU over the run, labelled by stage (telemetry/sampler.h); absent when not sampled.
    std::optional<telemetry::series> telemetry;
    // bookkeeping
    std::vector<std::string> stages_done;  // analyze, bench, parallel, roofline
    bool interrupted = false;
    double seconds = 0;
};

// report.json's own schema version (docs/report-schema.md); its tables' rows carry schema_version.
// 2: the measured rows are stored once, under "tables".
constexpr int report_schema_version = 2;

// The result tables of an evaluation (report::result_kinds() shapes): what report.json's "tables"
// and the results store hold.
std::vector<table> tables_of(const evaluation & e);
// report.json (schema in docs/report-schema.md): the whole evaluation, its measured rows (raw
// samples included) once, as the tables the store, `compare` and --resume read ("tables").
nlohmann::ordered_json to_json(const evaluation & e);
// Measured rows back from a report.json's "tables" (for --resume); rows that were skipped or hold
// no samples are left out.
std::vector<workload::bench_result> bench_from_json(const nlohmann::json & j);
std::vector<workload::lockstep_row> lockstep_rows_from_json(const nlohmann::json & j);

// report.md: the reference's sections in its order, every number from `e`.
std::string to_markdown(const evaluation & e);
// The terminal summary: tables and an ASCII efficiency chart.
std::string terminal_summary(const evaluation & e);
// report.html: one self-contained page with SVG charts; every dataset-derived string escaped.
std::string to_html(const evaluation & e);

// The rows that ran (not skipped for memory), in sweep order.
std::vector<const workload::lockstep_row *> measured_rows(const workload::lockstep_result & r);
// Where the efficiency knee lies and why, from rec.steps and rec.knee_workers: the same marginals
// the Interactive recommendation uses.
std::string knee_sentence(const recommendations & rec, double knee_min_marginal, int first_workers, int last_workers);
// Sentences of "Key Performance Insights", generated from the rows and e.rec.
std::vector<std::string> key_insights(const evaluation & e);
// One decode step of a lockstep row split into weight matmuls, attention/KV, sampling and the rest
// (predict::decompose; needs the --fast fit and the roofline's model-shape matmul rates), and the
// limiter those parts name.
struct step_breakdown {
    int workers = 0;
    bool measured = false;      // the --verify row; the others are predicted
    double matmul_rate = 0;     // FLOP/s at the model's shapes with N = W (0: not probed)
    double bandwidth_share = 0; // bytes of the step per second over the bandwidth ceiling
    predict::step_parts parts;
    std::string limiter;
};
std::vector<step_breakdown> step_breakdowns(const evaluation & e);
std::string step_breakdown_markdown(const evaluation & e);
// An ASCII bar chart of efficiency per W.
std::string ascii_efficiency_chart(const workload::lockstep_result & r);

}  // namespace im::report
