#pragma once

#include "workload/lockstep.h"

#include <optional>
#include <string>
#include <vector>

// How many workers to run (DESIGN §3), from measured lockstep rows only.
namespace im::report {

struct recommend_options {
    double knee_min_marginal = 0.25;     // marginal speedup per added worker that still counts
    double batch_within = 0.05;          // Batch: the smallest W within this fraction of the peak overall t/s
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
    std::optional<double> joules_per_output_token;  // the row's measured energy per output token; absent without a counter
    std::string reason;          // generated from the numbers
};

// One step of the measured curve, from the next smaller measured W to this one.
struct scaling_step {
    int from_workers = 0;
    int to_workers = 0;
    double marginal = 0;         // (speedup(to) - speedup(from)) / (to - from): the knee's measure
    double gen_gain = 0;         // gen t/s (to) / gen t/s (from) - 1
    double overall_gain = 0;     // overall t/s (to) / overall t/s (from) - 1
    double step_ms_from = 0;     // one decode step (T_TG / n_predict) at from_workers, ms
    double step_ms_to = 0;
};

struct recommendations {
    worker_choice interactive;   // the knee of the scaling curve (within SLOs)
    worker_choice batch;         // smallest W within batch_within of the peak overall t/s, never below interactive
    worker_choice max_throughput;  // highest overall t/s measured, extension included
    int knee_workers = 0;        // the efficiency knee, SLOs ignored (0: nothing measured)
    std::vector<scaling_step> steps;       // measured rows in ascending W, one per consecutive pair
    std::string max_stop;        // why the sweep stopped growing
    std::vector<std::string> irregular;    // non-monotone steps, one sentence each, from `steps`
    std::vector<std::string> notes;        // SLO misses
};

// The choice for one measured row (metrics filled, reason empty).
worker_choice choice_of(const workload::lockstep_row & row, const workload::lockstep_row * previous);

// The measured rows (not skipped), ascending in W, the first of equal W only.
std::vector<const workload::lockstep_row *> ascending_rows(const workload::lockstep_result & r);

// The steps between consecutive measured rows (ascending W).
std::vector<scaling_step> scaling_steps(const workload::lockstep_result & r);

// Sentences naming every non-monotone step: a step whose speedup per added worker is clearly lower
// than the next step's (the curve dips at its W and recovers), or whose overall t/s falls.
std::vector<std::string> irregular_steps(const std::vector<scaling_step> & steps);

recommendations recommend(const workload::lockstep_result & r, const recommend_options & opts);

}  // namespace im::report
