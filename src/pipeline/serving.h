#pragma once

#include "engine/llama/session.h"
#include "report/serving.h"
#include "workload/requests.h"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

// evaluate's serving stage: continuous batching in-process with the dataset's own prompts and output
// lengths and real (CPU, greedy) sampling at the sweep's worker counts; lockstep vs continuous
// without sampling vs CPU sampling vs backend sampling at the largest measured W; the capacity
// search (standard and comprehensive profiles). Sized per profile (docs/metrics.md).
namespace im::pipeline {

struct serving_options {
    std::filesystem::path model_path;
    engine::llama::engine_params params;
    std::filesystem::path dataset;
    std::vector<int> workers;          // the measured lockstep W (largest first or any order)
    std::vector<double> lockstep_gen_tps;  // generation t/s of those rows, same order
    int n_prompt = 128, n_predict = 128;   // the sweep's lengths (side-by-side comparison)
    int output_cap = 0;                // dataset outputs longer than this are capped (0: none)
    // Requests per level = max(min_requests, this × C). A closed loop's steady window opens when every
    // user has finished one request, and Little's law settles within 5% only when the window spans many
    // request lifetimes (~12 per user with the reference's lengths; docs/metrics.md).
    int requests_per_user = 2;
    int min_requests = 4;
    int probe_requests_per_user = 2;   // per capacity probe (its verdict is a percentile, not a rate)
    bool every_level = true;            // a level at each W; false: the smallest and the largest only
    bool capacity = false;
    int capacity_max_probes = 8;
    bool backend_sampling = true;       // the comparison's third run; false: recorded as not measured
    int64_t ctx_min = 0;
    bool kv_unified = false;
    workload::slo objectives;
};

struct serving_callbacks {
    std::function<void(const workload::request_workload &, const workload::request_progress &)> progress;
    std::function<void(const report::serving_result &)> saved;  // after each run (to save partial reports)
    std::function<void(const std::string &)> warn;
};

// The concurrency levels the stage measures: the distinct W ascending (every_level false: the first and last).
std::vector<int> serving_levels(const serving_options & o);

// Runs the stage; on SIGINT returns what was measured (the last run marked interrupted).
report::serving_result run_serving(const serving_options & o, const serving_callbacks & cb);

}  // namespace im::pipeline
