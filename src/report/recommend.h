#pragma once

#include "workload/lockstep.h"

#include <optional>
#include <string>
#include <vector>

// How many workers to run (DESIGN §3), from measured lockstep rows only.
namespace im::report {

struct recommend_options {
    double knee_min_marginal = 0.25;     // marginal speedup per added worker that still counts
    std::optional<double> slo_ttft_s;    // time to first token per request (lockstep: T_PP)
    std::optional<double> slo_tpot_s;    // time per output token per stream (lockstep: T_TG / n_predict)
};

struct worker_choice {
    bool found = false;
    int workers = 0;
    double overall_tps = 0;
    double gen_tps = 0;
    double per_stream_tps = 0;   // gen_tps / W
    double speedup = 0;
    double efficiency = 0;
    double marginal = 0;         // speedup gained per added worker over the previous measured W
    uint64_t kv_bytes = 0;
    double ttft_s = 0;           // T_PP: all prompts of the step prefilled together
    double tpot_s = 0;           // T_TG / n_predict
    double e2e_s = 0;            // T_PP + T_TG: one request of n_predict tokens
    std::string reason;          // generated from the numbers
};

struct recommendations {
    worker_choice interactive;   // the knee of the scaling curve (within SLOs)
    worker_choice batch;         // highest overall t/s among the requested worker counts
    worker_choice max_throughput;  // highest overall t/s measured, extension included
    std::string max_stop;        // why the sweep stopped growing
    std::vector<std::string> notes;
};

// The choice for one measured row (metrics filled, reason empty).
worker_choice choice_of(const workload::lockstep_row & row, const workload::lockstep_row * previous);

recommendations recommend(const workload::lockstep_result & r, const recommend_options & opts);

}  // namespace im::report
