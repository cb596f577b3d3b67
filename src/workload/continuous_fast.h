#pragma once

#include "predict/step_model.h"
#include "workload/continuous.h"
#include "workload/requests.h"
#include "workload/step_probe.h"

#include <optional>
#include <string>
#include <vector>

// `parallel --mode continuous --fast` (issue 10, docs/fast-mode.md §8): closed-loop load levels predicted from
// decode-step, prefill and sampling probes (predict::predict_continuous), every level marked predicted with
// its 95% prediction interval.
namespace im::workload {

struct continuous_fast_result {
    std::vector<request_run> runs;  // one predicted run per level, in order
    step_probe_result probes;
    predict::step_fit steps;   // pipelined steps (the lockstep sweep's)
    // Steps timed with a synchronize each, as the continuous engine runs them: what the cycle's decode steps
    // use (probes.synced_steps); empty when interrupted before any was timed (the pipelined fit stands in).
    std::optional<predict::step_fit> synced;
    predict::prefill_fit prefill;
    std::optional<predict::sampling_curve> sampling;  // S(N) per step of N sequences; none with --no-sample
    double tolerance = 0.05;                       // the regime-split tolerance used
    double mean_prompt = 0, mean_output = 0;       // over the workload's requests
    int n_prompt = 0, n_output = 0;                // those means rounded: what the model uses
    bool interrupted = false;
};

// Why --fast cannot predict these levels with this sweep (empty: it can): open loop, think time, fewer slots
// than users, backend sampling (it changes the decode graph, which the step probes do not run).
std::string continuous_fast_refusal(const continuous_sweep & s, const std::vector<request_workload> & levels);

// The workload's mean prompt and output lengths over the requests of its largest level (at least 1,000 where
// a level is bounded by time): request i as the runner would make it.
std::pair<double, double> mean_lengths(const request_source & src, const std::vector<request_workload> & levels);

// Probes once (a context for the largest concurrency) and predicts every level. Levels must pass
// continuous_fast_refusal (checked). Throws like run_step_probes; on SIGINT returns what was predicted
// from what was probed (interrupted set).
continuous_fast_result run_continuous_fast(const continuous_sweep & s, const std::vector<request_workload> & levels,
                                           const step_probe_callbacks & cb = {});

// The predicted run of concurrency `c`, or nullptr.
const request_run * predicted_run(const continuous_fast_result & f, int concurrency);

// Markdown: how the levels were predicted (probes, the step, prefill and sampling fits).
std::string continuous_fast_markdown(const continuous_fast_result & f);

// --verify C: predicted against measured output t/s, requests/s, mean TTFT and TPOT, with the error and whether
// the measurement lies inside the 95% interval.
std::string continuous_verify_markdown(const request_run & predicted, const request_run & measured);

// (predicted - measured) / measured of the output t/s, in percent.
double continuous_error_pct(const request_run & predicted, const request_run & measured);

}  // namespace im::workload
