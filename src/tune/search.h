#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

// `infermeter tune` (issue 11): which settings that change speed but not results are best here.
// A budgeted coordinate descent from the defaults over named axes, each candidate first checked to
// produce the baseline's greedy tokens (a setting that changes them is rejected and reported), then
// the best candidate and the baseline confirmed by alternating repeated measurements. The search knows
// nothing of llama.cpp: an evaluator measures a candidate (tune/inprocess.h for the in-process engine,
// a scripted one in the tests).
namespace im::tune {

// One setting: its name as a flag ("-fa", "-ub", ...) and the values tried, the default first.
struct axis {
    std::string name;
    std::vector<std::string> values;
    bool is_switch = false;  // a flag without a value ("--kv-unified"): values "0" / "1"
};

// An axis's values: `base` first, then `others` without repeats.
std::vector<std::string> values_first(const std::string & base, const std::vector<std::string> & others);

// A full assignment: axis name -> value.
using candidate = std::map<std::string, std::string>;

// Greedy decoding of a fixed prompt: every logit row and its argmax. A candidate's trace is decoded
// with the baseline's tokens fed back (teacher forcing), so a difference at one step cannot compound.
struct greedy_trace {
    int n_vocab = 0;
    std::vector<int32_t> tokens;  // argmax of each row
    std::vector<float> logits;    // rows × n_vocab
};

// Whether a candidate gives the baseline's results. Settings that reorder float arithmetic (flash
// attention, ubatch size, KV layout) move logits by rounding noise; on a model with near ties (random
// weights have flat logits) that can flip an argmax without changing anything a user would call a
// result. A row's noise is 1.4826 × the median |Δlogit| between the two runs (robust to the few logits
// a real change moves most); a flip is a near tie when the baseline's margin between its token and the
// candidate's is within 4× that noise; a candidate is accepted when every flip is a near tie and no
// row's noise exceeds `max_rel_noise` of the baseline row's spread (sd).
struct output_check {
    bool same = false;
    int n_rows = 0, n_flips = 0, n_near_ties = 0;
    double max_rel_noise = 0;  // max over rows of noise(Δlogit) / sd(baseline row)
    std::string detail;        // "identical tokens; logits within 0.02% ..." / why rejected
};
output_check compare_greedy(const greedy_trace & baseline, const greedy_trace & cand, double max_rel_noise = 0.10);

// One measurement of a candidate: its score and, where the workload has requests (serve), their
// median latencies (-1: not measured; the Pareto front then uses 1000 · W / score per stream).
struct measurement {
    double score = 0;           // higher is better (aggregate generation / output t/s)
    double ttft_p50_ms = -1;    // median time to first token (DESIGN §2.5)
    double tpot_p50_ms = -1;    // median time per output token after the first
    measurement() = default;
    measurement(double s) : score(s) {}  // NOLINT: a bare score is a measurement without latencies
};

struct evaluator {
    // Throws im::error when the candidate cannot run.
    std::function<measurement(const candidate &)> measure;
    // The candidate's greedy results against the baseline's.
    std::function<output_check(const candidate &)> same_outputs;
    // Seconds since the search started (the budget is checked before each measurement).
    std::function<double()> elapsed_s;
    // Also run same_outputs on the baseline (before measuring it) and keep its detail: for workloads
    // whose results vary from run to run (HTTP under concurrency), the baseline against its own reference.
    // The baseline is never rejected.
    bool check_baseline = false;
};

struct trial {
    candidate settings;
    std::string changed;   // "axis=value" against the candidate it was derived from; empty for the baseline
    double score = 0;      // 0 when rejected or failed
    bool rejected = false; // changed the greedy tokens
    std::string check;     // the output check's detail (empty for the baseline)
    std::string failed;    // why it could not run (empty when it ran)
    double ttft_p50_ms = -1, tpot_p50_ms = -1;  // the measurement's latencies (-1: not measured)
};

struct search_options {
    double budget_s = 600;
    double min_gain = 0.01;  // a move must beat the current best by this fraction (noise is not a gain)
    int max_passes = 3;      // sweeps over all axes; stops early when one changes nothing
    int confirm_runs = 3;    // alternating baseline / best measurements at the end (each side)
};

struct search_result {
    candidate baseline, best;
    double baseline_score = 0, best_score = 0;        // from the search's single measurements
    std::vector<double> confirm_baseline, confirm_best;  // the confirmation runs
    double confirmed_gain = 0;  // median(best) / median(baseline) - 1; 0 when best is the baseline
    bool confirmed = false;     // best kept after confirmation: its median >= min_gain above the baseline's
    std::vector<trial> trials;  // in the order run
    bool budget_exhausted = false;
    int passes = 0;
    // The measured candidate with the lowest score against the best: "what a wrong setting costs".
    const trial * costliest() const;
};

// Coordinate descent: starting from the baseline (every axis at its first value), for each axis in
// order try every other value with the rest fixed at the current best; a candidate with other greedy
// tokens is rejected; the current best moves when a candidate beats it by min_gain. Repeats until a
// pass changes nothing, max_passes, or the budget. Then confirm_runs alternating measurements of the
// baseline and the best; the best is kept only if its median beats the baseline's median by min_gain.
search_result coordinate_descent(const std::vector<axis> & axes, const evaluator & ev, const search_options & o);

// Across worker counts: the measured (W, settings) points no other point beats on both aggregate
// generation t/s (higher) and per-stream time per token (lower; the trial's measured p50 TPOT where it
// has one, else 1000 · W / aggregate t/s). Sorted by W, then by throughput. Rejected and failed trials
// are not points.
struct pareto_point {
    int workers = 0;
    candidate settings;
    double aggregate_tps = 0;
    double ms_per_token = 0;  // per stream: the measured p50 TPOT, else 1000 · W / aggregate_tps
    double ttft_p50_ms = -1;  // measured p50 TTFT (-1: not measured)
};
std::vector<pareto_point> pareto_front(const std::vector<std::pair<int, const search_result *>> & levels);

// "-fa on -ub 256" (axes in `axes` order, only those that differ from the baseline when `only_changed`).
std::string command_flags(const std::vector<axis> & axes, const candidate & c, const candidate & baseline,
                          bool only_changed);

}  // namespace im::tune
