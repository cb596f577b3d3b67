#pragma once

#include "workload/capacity.h"
#include "workload/request_source.h"
#include "workload/requests.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

// The workload flags of request-level commands (`parallel --mode continuous`, `serve`): arrivals,
// request counts, lengths, SLO and the capacity search. One definition so both commands agree.
namespace im::cli {

struct request_flags {
    std::string concurrency;           // closed loop: list of user counts
    std::string rate;                  // open loop: list of req/s
    std::string arrival = "poisson";   // open loop: poisson | constant | gamma
    double burstiness = 1;
    int max_concurrency = 0;
    double think_time_s = 0;
    int requests = 0;                  // 0: default per level (see --help)
    double duration_s = 0;
    int warmup_requests = 0;
    std::string dataset;
    size_t max_samples = 10000;
    std::string prompt_tokens;         // distribution spec
    std::string output_tokens;
    std::string slo = "ttft=500ms,tpot=30ms";
    bool find_capacity = false;
    int capacity_max_concurrency = 64;
    std::string trace;
    uint64_t seed = 1;
};

void add_request_flags(CLI::App * cmd, request_flags & f);

// The load levels the flags ask for (one per --concurrency / --rate value), validated.
std::vector<workload::request_workload> load_levels(const request_flags & f);
// The SLO and base workload (for --find-capacity).
workload::request_workload base_workload(const request_flags & f);
// Lengths from --dataset, --prompt-tokens/--output-tokens or -p/-n; `vocab` tokenizes dataset prompts.
workload::length_source lengths_of(const request_flags & f, int n_prompt, int n_predict, const llama_vocab * vocab);

// One load level measured by the caller (in-process engine or HTTP client).
using level_runner = std::function<workload::request_run(const workload::request_workload &)>;
struct levels_outcome {
    bool interrupted = false;
    std::string capacity_summary;  // with --find-capacity
};
// Runs `levels` in order (stopping at an interrupted one), or with --find-capacity the capacity search,
// each probe with default_requests() unless --requests/--duration was given.
levels_outcome run_levels(const request_flags & f, const std::vector<workload::request_workload> & levels,
                          const level_runner & run_level);

// --trace FILE: per level a "level" row, its per-step rows, then its per-request rows, JSON Lines
// (report/trace.h; `merge` reads them back).
void write_trace(const std::string & path, const std::vector<workload::request_run> & runs);

// "C=8  [#####.....] 40/80 req  1,234.5 t/s": one progress line.
std::string request_progress_text(const workload::request_workload & w, const workload::request_progress & p);

}  // namespace im::cli
