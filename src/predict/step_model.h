#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

// The fitted cost model behind `--fast` (docs/fast-mode.md): every lockstep row predicted, with a 95%
// interval, from short probes of one decode step at a few batch sizes and KV depths and of a few prefills.
// All fits are weighted least squares with weights 1/t² (they minimise relative residuals: timing noise
// grows with the time, and one step time spans 1 ms to 1 s over a sweep), solved by the normal equations
// on at most three parameters with scaled columns and a rank check. Pure functions; thread-safe.
namespace im::predict {

// Parameter covariance of three coefficients, row-major; a coefficient the fit fixed has a zero row and column.
using cov3 = std::array<std::array<double, 3>, 3>;

// One probed decode step: `workers` sequences decoded together, each at KV depth `depth` (cells already
// in its cache); `seconds` the median of a few timed steps, > 0.
struct step_sample {
    int workers = 0;
    double depth = 0;
    double seconds = 0;
};

// t(W, d) = a + b·W + c·W·d on W in [w_min, w_max]. a: fixed per-step cost (launch, sync, weights
// streamed once per step on a bandwidth-bound device), b: per-sequence cost, c: per-sequence per-KV-cell
// cost. A regime with a single W fits t = a' + c·W·d (b = 0, a' includes b·W); one where no W was probed
// at two depths fixes c = 0; a fixed coefficient is 0 with zero covariance.
struct regime {
    int w_min = 0, w_max = 0;
    double depth_min = 0, depth_max = 0;  // probed KV depths; outside them a prediction is flagged
    double a = 0, b = 0, c = 0;           // s, s per sequence, s per sequence per KV cell
    double resid_sd_s = 0;                // residual sd in seconds (dof-corrected; 0 when dof = 0), for the report
    double resid_sd_rel = 0;              // residual sd of (t - fit) / t (dof-corrected); what the intervals use
    double max_rel_residual = 0;          // max |t - fit| / t over the regime's samples
    int n_samples = 0;
    int n_params = 0;  // free coefficients, 1..3
    int dof = 0;       // n_samples - n_params; 0: no spread estimate, intervals collapse to the value
    cov3 cov{};        // of (a, b, c): resid_sd_rel² (XᵀVX)⁻¹, V = diag(1/t²)
};

struct step_fit {
    std::vector<regime> regimes;     // ascending and disjoint in W
    std::vector<int> regime_starts;  // w_min of every regime after the first: where a kernel switch starts one
    double max_rel_residual = 0;     // over all regimes
    // Relative sd of a systematic difference between the probes and the sweep they stand for (a probe
    // runs a few steps of a shape, the sweep thousands): widens every interval by 1.96·this·value,
    // added in quadrature to the fit's half-width. 0 here; --fast sets it (docs/fast-mode.md §4).
    double probe_bias_rel = 0;
};

// Splits the distinct W (ascending) into contiguous regimes: a regime grows while one a+bW+cWd fit keeps
// every sample's relative residual |t - fit| / t within `tolerance` (> 0); a W that breaks it starts a new
// regime (a single W's own fit is kept whatever its residual). Degenerate designs (one W, one depth, as
// many samples as coefficients) fix coefficients instead of producing NaN. Throws a runtime error when
// `samples` is empty or holds W < 1, depth < 0 or a time that is not finite and > 0.
step_fit fit_steps(std::span<const step_sample> samples, double tolerance = 0.05);

// A predicted quantity with its 95% prediction interval. `lo` of a time is clamped at 0; a rate whose
// time interval reaches 0 has hi = +infinity.
struct interval {
    double value = 0, lo = 0, hi = 0;
    int dof = 0;                // residual degrees of freedom behind the interval (the smaller of two fits)
    bool extrapolated = false;  // W outside every regime, or depth / tokens outside the probed range
};

// Predicted time of one step of `workers` (>= 1) sequences at KV depth `depth`: value ± t95(dof)·sqrt(xᵀCx
// + (resid_sd_rel·value)²), x = (1, W, W·d) (Student t: stats::t_critical_95). W outside every regime: the
// nearest regime in log W (the lower one on a tie), flagged.
interval predict_step_s(const step_fit & f, int workers, double depth);

// Predicted T_TG of `n_predict` lockstep steps from depth `n_prompt` (step i at depth n_prompt + i):
// n·(a+bW) + cW·(n·p + n(n-1)/2); variance xᵀCx for x = (n, nW, W(np + n(n-1)/2)) plus the step noise
// resid_sd_rel²·Σᵢ tᵢ² (n·σ² with σ relative to each step's time). 0 when n_predict = 0.
interval predict_tg_s(const step_fit & f, int workers, int n_prompt, int n_predict);

// c·W·d of the regime predict_step_s uses for `workers`: the attention/KV part of one step, in seconds.
double attention_s(const step_fit & f, int workers, double depth);

// One prefill call of `tokens` = W·p tokens (all sequences' prompts together) and its time, > 0.
struct prefill_sample {
    int64_t tokens = 0;
    double seconds = 0;
};

// T(N) = e + f·N (+ g·N² when the data demand it: attention over the prompt). With a single distinct N,
// T = f·N (e = 0: constant prompt t/s). g is kept only when >= 4 samples at >= 3 distinct N give g > 0,
// significant at 95% (t-test) and > 1e-6 of T(tokens_max).
struct prefill_fit {
    double e = 0, f = 0, g = 0;  // s, s per token, s per token²
    bool quadratic = false;
    int64_t tokens_min = 0, tokens_max = 0;
    double resid_sd_s = 0, resid_sd_rel = 0, max_rel_residual = 0;  // as in `regime`
    int n_samples = 0, n_params = 0, dof = 0;
    cov3 cov{};  // of (e, f, g)
    double probe_bias_rel = 0;  // as step_fit's
};

// Throws a runtime error when `samples` is empty or holds tokens < 1 or a time that is not finite and > 0.
prefill_fit fit_prefill(std::span<const prefill_sample> samples);

// Predicted T(tokens) with its 95% prediction interval (as predict_step_s); 0 when tokens = 0.
interval predict_pp_s(const prefill_fit & f, int64_t tokens);

// S(N), the CPU sampling time of one step that samples N sequences (docs/fast-mode.md §8): the probes' median
// at each probed N joined by straight lines, the end segments extended beyond (never below the end's own time;
// below the smallest N, and with a single probed N, proportional to N). Not one line or parabola over all N:
// the per-sequence cost rises once N rows of logits outgrow the caches (H200 box, 151,936 logits a row:
// 0.35 ms a sequence up to N = 8, 0.55 ms at N = 32), and a global fit bent by that misses both ends.
struct sampling_curve {
    std::vector<int64_t> n;        // the probed N, ascending, distinct
    std::vector<double> seconds;   // the median probe at each N
    std::vector<int> probes;       // how many probes at each N
    double resid_sd_rel = 0;       // pooled relative sd of the probes around their N's median (0: one probe per N)
    double max_rel_residual = 0;   // the largest |probe / its median - 1|
    int n_samples = 0, dof = 0;    // dof = probes - distinct N
    double probe_bias_rel = 0;     // as step_fit's
};

// Throws a runtime error when `samples` is empty or holds N < 1 or a time that is not finite and > 0.
sampling_curve fit_sampling(std::span<const prefill_sample> samples);

// Predicted S(n) with its 95% prediction interval: a probed N's median has variance (s_rel·S)²/k (k probes),
// an interpolated value the two ends' weighted by (1-t)² and t²; `extrapolated` outside the probed N.
interval predict_sampling_s(const sampling_curve & c, int64_t n);

// One lockstep row: t_pp_s = T(W·p), t_tg_s = predict_tg_s; prompt t/s = W·p / T_PP, generation t/s =
// W·n / T_TG, overall t/s = W·(p+n) / (T_PP + T_TG) (docs/metrics.md). A rate's bounds are the tokens over
// the time's bounds; the overall time's half-width is sqrt(h_pp² + h_tg²) (independent fits). A rate with
// no tokens is 0. `extrapolated` when either time is.
struct row_prediction {
    int workers = 0;
    int n_prompt = 0, n_predict = 0;
    interval t_pp_s, t_tg_s, prompt_tps, gen_tps, overall_tps;
    bool extrapolated = false;
};

row_prediction predict_row(const step_fit & s, const prefill_fit & p, int workers, int n_prompt, int n_predict);

// Continuous batching, closed loop (docs/fast-mode.md §8): C users on C slots, no think time, every request
// p prompt tokens and n >= 1 output tokens (the workload's means). One cycle completes C requests: a step that
// prefills the C prompts together and samples their first tokens, then n - 1 steps that decode C sequences at
// depths p .. p+n-2 and sample each:
//   TTFT  = T(C·p) + S(C)
//   E2E   = T(C·p) + T_TG(C, p, n-1) + n·S(C)           (T_TG as predict_tg_s)
//   TPOT  = (E2E - TTFT) / (n - 1) = T_TG(C, p, n-1) / (n-1) + S(C)   (0 when n = 1)
//   output t/s = C·n / E2E,  requests/s = C / E2E
// S(C) is one step's sampling time for C sequences from the `sampling` curve (null: no sampling, S = 0). The
// three are independent: half-widths add in quadrature; the sampling curve's error at C is shared by all n
// steps (scaled by n), the probes' noise is independent per step (by sqrt(n)).
struct continuous_prediction {
    int concurrency = 0;
    int n_prompt = 0, n_output = 0;
    interval sampling_step_s;          // S(C)
    interval ttft_s, e2e_s, tpot_s;    // means over requests
    interval output_tps, request_tps;
    bool extrapolated = false;         // any of the three fits used outside what was probed
};

continuous_prediction predict_continuous(const step_fit & s, const prefill_fit & p, const sampling_curve * sampling,
                                         int concurrency, int n_prompt, int n_output);

// A step time split for the report: matmul_s = weight_flops / matmul_rate_flops_per_s (the matmul rate
// probed at the model's shapes with N = W columns), attention_s (c·W·d of the step's regime), sampling_s
// (given; 0 in lockstep) and remainder_s = step_s minus the three (launch, synchronization, scheduling).
// When the parts exceed the step, remainder_s = 0 and `overcommitted`. Inputs >= 0, rate > 0 (checked).
struct step_parts {
    double step_s = 0, matmul_s = 0, attention_s = 0, sampling_s = 0, remainder_s = 0;
    bool overcommitted = false;
};

step_parts decompose(double step_s, double weight_flops, double matmul_rate_flops_per_s, double attention_s,
                     double sampling_s);

// Where a new regime starts, at KV depth `depth`: the per-sequence step cost t/W the previous regime's fit
// extrapolates to (the trend) against the one the new regime fits. jump_rel = per_seq_s / per_seq_trend_s - 1;
// > 0 is a jump against the trend (the new kernel costs more per sequence than the old one would have).
struct regime_change {
    int workers = 0;         // the new regime's smallest W
    int workers_before = 0;  // the previous regime's largest W: the change lies between the two
    double per_seq_trend_s = 0;  // the previous regime's fit extrapolated to `workers`, per sequence
    bool trend_is_one_w = false;  // the previous regime holds one W: per_seq_trend_s is its cost per sequence there
    double per_seq_s = 0;
    double jump_rel = 0;
};

// One entry per regime_starts element, in order.
std::vector<regime_change> regime_changes(const step_fit & f, double depth);

// ---- Locating a kernel switch between probed W (docs/fast-mode.md §2, "Locating a switch") ----

// One regime per segment of the distinct W: the first from the smallest W, then one from each element of
// `starts` (ascending, distinct, each a sampled W above the smallest: checked). Same input checks as fit_steps.
step_fit fit_steps_at(std::span<const step_sample> samples, std::span<const int> starts);

enum class switch_side { before, after, neither };
const char * switch_side_name(switch_side s);  // "before", "after", "neither"

// Which side of a regime change one step sample lies on: its relative residual |t - fit| / t against the
// previous regime's fit (extrapolated up) and the new regime's (extrapolated down), each used only when that
// regime spans two W or more (a single W's fit has no trend in W; its residual is NaN). before: within
// `tolerance` of the previous fit and no farther from it than from the new one; after: within tolerance of
// the new fit, or off the previous one when only that one is known; neither: off both (a transition the
// model does not describe). With neither fit known the side is `neither`.
struct side_test {
    switch_side side = switch_side::neither;
    double resid_before_rel = 0, resid_after_rel = 0;  // signed (t - fit) / t; NaN when that fit is not used
};
side_test classify_step(const regime & before, const regime & after, const step_sample & s, double tolerance);

// Probes bisection may spend between two probed W: ceil(log2(w_after - w_before)), 0 when adjacent. Bisection
// at the midpoint needs exactly this many to reach adjacent W.
int switch_probe_bound(int w_before, int w_after);

// One extra step probe: the sample and the spread of its timed windows, (max - min) / median.
struct probed_step {
    step_sample sample;
    double spread_rel = 0;
};

// Times one step of `workers` sequences at the search's depth; nullopt when no probe may run any more (the
// time budget is spent, or an interrupt): the search then stops narrowing.
using step_prober = std::function<std::optional<probed_step>(int workers)>;

struct switch_probe {
    probed_step probe;
    side_test test;
    double tolerance = 0;  // the one the test used: max(search tolerance, 2 x the probe's spread)
};

// A regime change fit_steps found between the probed W sweep_before < sweep_after, narrowed by bisection
// at one depth to w_before < w_after (adjacent when located).
struct kernel_switch {
    int sweep_before = 0, sweep_after = 0;
    int w_before = 0, w_after = 0;
    int probe_bound = 0;               // switch_probe_bound(sweep_before, sweep_after)
    std::vector<switch_probe> probes;  // in the order probed
    std::string stopped;               // why it was not narrowed to adjacent W; empty when located
    bool located() const { return w_after == w_before + 1; }
};

struct switch_search {
    // Over the samples and every probe, regimes starting at each switch's w_after, then split further at any
    // sampled W of the input whose own samples miss its regime's fit by more than the tolerance: such a W
    // gets a regime of its own (its row rests on its own probes, not on a fit across W).
    step_fit fit;
    std::vector<kernel_switch> switches;  // one per regime start of fit_steps(samples, tolerance), ascending
    std::vector<int> isolated;            // the W given a regime of their own by that last rule
    int n_probes = 0;
};

// fit_steps(samples, tolerance), then for each regime start s (previous sampled W p): the sample of W = s
// nearest `depth` is tested first (classify_step, tolerance max(tolerance, 2 x its spread)); when it lies
// on the new side, W strictly between p and s are bisected (midpoint p + (s-p)/2, `probe` at `depth`,
// each probe classified with max(tolerance, 2 x its own spread); `neither` narrows like `after`: the old
// trend no longer holds there) until the change lies between adjacent W, at most switch_probe_bound(p, s)
// probes. `spread_rel` is per sample (empty: 0). Probes join the fit of the side they landed on.
switch_search locate_switches(std::span<const step_sample> samples, std::span<const double> spread_rel,
                              double tolerance, double depth, const step_prober & probe);

}  // namespace im::predict
