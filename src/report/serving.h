#pragma once

#include "engine/llama/session.h"
#include "report/run_context.h"
#include "report/table.h"
#include "workload/capacity.h"
#include "workload/requests.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

// `evaluate`'s "Serving under load" stage (DESIGN §3, issue 14): continuous batching in-process with
// the dataset's own lengths and real sampling at the sweep's worker counts, what sampling costs
// against lockstep at one W, and the capacity within the SLO.
namespace im::report {

struct serving_result {
    workload::slo objectives;
    std::vector<workload::request_run> levels;   // closed loop at each concurrency, dataset lengths, CPU sampling
    // Side by side at one W, fixed lengths, every request at t = 0.
    int compare_workers = 0;
    int compare_n_prompt = 0, compare_n_predict = 0;
    double lockstep_gen_tps = 0;                 // the sweep's row at compare_workers
    std::optional<workload::request_run> no_sample, cpu_sampling, backend_sampling;
    std::string backend_sampling_error;          // why backend sampling could not run, if it could not
    std::optional<workload::capacity_result> capacity;
    std::string note;                            // how the stage was sized (profile caps)
};

// The SLO-driven Interactive choice: the highest measured concurrency whose percentile TTFT and
// TPOT meet the objectives (levels and capacity probes together); empty when none did.
struct serving_choice {
    bool found = false;
    int concurrency = 0;
    std::optional<double> rate;                  // from the capacity search, when it ran
    double request_tps = 0, output_tps = 0, goodput_rps = 0;
    double ttft_p99_ms = 0, tpot_p99_ms = 0;
    std::string sentence;                        // generated from the numbers
};
serving_choice interactive_choice(const serving_result & s);

std::string serving_markdown(const serving_result & s);
// The HTML section: latency-vs-load and throughput-vs-latency charts, the per-load table, the sampling cost.
std::string serving_html(const serving_result & s);
nlohmann::ordered_json serving_json(const serving_result & s);
// The request-level rows of every run of the stage, as the "continuous" table (store, compare).
table serving_table(const serving_result & s, const run_context & c, const engine::llama::engine_params * params);

}  // namespace im::report
