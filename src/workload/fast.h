#pragma once

#include "predict/step_model.h"
#include "workload/lockstep.h"
#include "workload/step_probe.h"

#include <optional>
#include <string>
#include <vector>

// `--fast` (issue 10, docs/fast-mode.md): the lockstep sweep predicted from step probes, every row
// marked predicted with its 95% prediction interval, in a fraction of the sweep's time.
namespace im::workload {

// The probes' systematic difference from the run they stand for, a relative sd (docs/fast-mode.md §2): probes
// and sweep differ by more than the probes' noise: on the H200 (2026-12-03, 128/1024, W = 1..64) the probed rows
// came out -6.3% .. +2.6% of the measured ones with probe spreads of 0.2-1%, and 5 of 7 measurements fell outside
// intervals built from the noise alone. 3%: 95% intervals of about ±6%.
constexpr double probe_bias_rel = 0.03;

struct fast_result {
    lockstep_result sweep;   // one predicted row per requested W (skipped when it does not fit), in order, then the extension
    step_probe_result probes;
    predict::step_fit steps;
    predict::prefill_fit prefill;
    double tolerance = 0.05;  // the regime-split tolerance used
    std::vector<predict::regime_change> changes;  // at the sweep's middle depth
};

// The fits behind every prediction: the regime-split tolerance (fit_tolerance), the step fit the switch search
// ended with (fit_steps over the probes when interrupted before it) and the prefill fit, both with probe_bias_rel.
// Needs step and prefill samples (fit_steps / fit_prefill throw otherwise).
void fit_probes(const step_probe_result & probes, predict::step_fit & steps, predict::prefill_fit & prefill, double & tolerance);

// Probes and predicts every W of c.workers and, with c.extend, the doubling chain up to c.max_workers
// (probed too), keeping the extension rows the gain rule admits (marked extended).
// Throws like run_lockstep; on SIGINT returns the rows predicted from what was probed (interrupted set).
fast_result run_fast(const lockstep_config & c, const step_probe_callbacks & cb = {});

// --verify: measures `workers` as the sweep would (c's lengths, warmup, one repetition) and returns its
// row, speedup and efficiency against the predicted baseline of `f`; empty when it did not fit or was
// interrupted before finishing (f.sweep.interrupted is then set). `cb.row` is not called.
std::optional<lockstep_row> verify_one(const lockstep_config & c, fast_result & f, int workers, lockstep_callbacks cb);

// The predicted row of `workers`, or nullptr.
const lockstep_row * predicted_row(const fast_result & f, int workers);

// "~24.1 (22.0-26.5)": a predicted value and its 95% interval, each times `scale`; "inf" for an unbounded end.
std::string interval_text(const predict::interval & i, double scale = 1, int decimals = 2);

// The regime table (a, b, c, residuals per regime) and the fitted step and prefill formulas, for report.md.
std::string step_fit_markdown(const predict::step_fit & steps, const predict::prefill_fit & prefill, double tolerance);

// Markdown: how the prediction was made (probes, wall time, regimes and their residuals, regime changes).
std::string fast_markdown(const fast_result & f);

// Sets row.steps_probed and row.prediction_note from f's fit and switches (docs/fast-mode.md §2): a W whose
// regime holds it alone (when there are several) is probed, not predicted; a W next to a regime change says so.
void annotate_prediction(const fast_result & f, lockstep_row & row);

// One sentence per regime change (located kernel switches: "Kernel switch between W = 8 and W = 9 (...): the
// per-sequence step cost jumps +23.0% against the W <= 8 trend (...)"), per switch probe that fits neither side,
// and per row that is probed rather than predicted. For report.md, report.html and the terminal.
std::vector<std::string> switch_sentences(const fast_result & f);

// --verify: predicted against measured for one W; "W=4: overall predicted 24.1 t/s (22.0-26.5), measured
// 24.8 t/s: error -2.8%, inside the interval" and the same for prompt and generation t/s.
std::string verify_markdown(const lockstep_row & predicted, const lockstep_row & measured);

// (predicted - measured) / measured of the overall t/s, in percent.
double prediction_error_pct(const lockstep_row & predicted, const lockstep_row & measured);

}  // namespace im::workload
