#include "workload/fast.h"

#include "core/format.h"
#include "core/interrupt.h"
#include "workload/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::workload {

namespace {

std::string ms(double s) { return fmtx::thousands(s * 1e3, 3); }

std::string signed_pct(double rel) { return fmt::format("{:+.1f}%", 100 * rel); }

}  // namespace

void fit_probes(const step_probe_result & probes, predict::step_fit & steps, predict::prefill_fit & prefill, double & tolerance) {
    tolerance = fit_tolerance(probes);
    // The fit the switch search ended with (switch probes included); an interrupt before it: the sweep's W only.
    steps = probes.switches.fit.regimes.empty() ? predict::fit_steps(probes.steps, tolerance) : probes.switches.fit;
    prefill = predict::fit_prefill(probes.prefills);
    steps.probe_bias_rel = prefill.probe_bias_rel = probe_bias_rel;
}

void annotate_prediction(const fast_result & f, lockstep_row & row) {
    const int w = row.workers;
    if (f.steps.regimes.size() > 1) {
        for (const auto & r : f.steps.regimes) {
            if (r.w_min == w && r.w_max == w) {
                row.steps_probed = true;
                row.prediction_note = fmt::format("probed, not predicted: no step fit across W holds at W = {}; T_TG rests "
                                                  "on its own step probes", w);
                return;
            }
        }
    }
    for (const auto & sw : f.probes.switches.switches) {
        if (w == sw.w_before || w == sw.w_after || w == sw.sweep_before || w == sw.sweep_after) {
            row.prediction_note = fmt::format("next to the {} between W = {} and W = {}", sw.located() ? "kernel switch" : "regime change",
                                              sw.w_before, sw.w_after);
            return;
        }
    }
}

fast_result run_fast(const lockstep_config & c, const step_probe_callbacks & cb) {
    fast_result f;
    f.sweep.plan = plan(c);
    check_plan(f.sweep.plan);
    step_probe_config pc;
    pc.model_path = c.model_path;
    pc.params = c.params;
    pc.n_prompt = c.n_prompt;
    pc.n_predict = c.n_predict;
    pc.ctx_min = c.ctx_min;
    pc.kv_unified = c.kv_unified;
    for (const auto & p : f.sweep.plan) {
        if (p.fits) pc.workers.push_back(p.workers);
    }
    if (pc.workers.empty()) throw_runtime("--fast: no worker count fits in memory ({} workers need {} MiB)",
                                          f.sweep.plan.front().workers,
                                          fmtx::thousands(static_cast<double>(f.sweep.plan.front().total_bytes) / fmtx::mib, 0));
    f.probes = run_step_probes(pc, cb);
    f.sweep.interrupted = f.probes.interrupted;
    if (f.probes.steps.empty() || f.probes.prefills.empty()) return f;
    fit_probes(f.probes, f.steps, f.prefill, f.tolerance);
    f.changes = predict::regime_changes(f.steps, c.n_prompt + c.n_predict / 2.0);

    double base_overall = 0;
    const auto predict_one = [&](const memory_plan & p, bool extended) {
        lockstep_row row;
        row.workers = p.workers;
        row.n_prompt = c.n_prompt;
        row.n_predict = c.n_predict;
        row.kv_bytes = p.kv_bytes;
        row.total_kv = static_cast<long>(p.workers) * (c.n_prompt + c.n_predict);
        row.extended = extended;
        if (!p.fits) {
            row.skipped = fmt::format("{} workers need {} MiB but {} has {} MiB free", p.workers,
                                      fmtx::thousands(static_cast<double>(p.total_bytes) / fmtx::mib, 0), p.device,
                                      fmtx::thousands(static_cast<double>(p.free_bytes) / fmtx::mib, 0));
            f.sweep.rows.push_back(row);
            return;
        }
        row.n_ctx = p.n_ctx;
        row.n_ctx_seq = p.n_ctx_seq;
        row.kv_bytes_allocated = p.kv_bytes_reported;
        row.n_threads = f.probes.n_threads;
        row.predicted = true;
        row.prefill_measured = std::find(f.probes.prefill_workers.begin(), f.probes.prefill_workers.end(), p.workers) !=
                               f.probes.prefill_workers.end();
        row.prediction = predict::predict_row(f.steps, f.prefill, p.workers, c.n_prompt, c.n_predict);
        annotate_prediction(f, row);
        // No samples: the summaries carry the predicted values (n = 0, repetitions 0 in every writer).
        row.t_pp_mean_s = row.prediction.t_pp_s.value;
        row.t_tg_mean_s = row.prediction.t_tg_s.value;
        for (auto [sum, rate] : {std::pair{&row.prompt_tps, &row.prediction.prompt_tps}, {&row.gen_tps, &row.prediction.gen_tps},
                                 {&row.overall_tps, &row.prediction.overall_tps}}) {
            sum->mean = sum->median = sum->min = sum->max = rate->value;
        }
        if (f.sweep.base_workers == 0) {
            f.sweep.base_workers = p.workers;
            base_overall = row.overall_tps.mean;
        }
        const auto sc = scaling_of(row.overall_tps.mean, p.workers, base_overall, f.sweep.base_workers);
        row.speedup = sc.speedup;
        row.efficiency = sc.efficiency;
        f.sweep.rows.push_back(row);
    };
    const auto plan_of = [&](int w) {
        return std::find_if(f.sweep.plan.begin(), f.sweep.plan.end(), [&](const memory_plan & p) { return p.workers == w; });
    };
    for (const int w : c.workers) predict_one(*plan_of(w), false);
    // The sweep extension's rule (DESIGN §3) applied to the predicted rows: double W while it gains.
    while (c.extend && f.sweep.rows.size() >= 2) {
        const auto & last = f.sweep.rows.back();
        const auto & before = f.sweep.rows[f.sweep.rows.size() - 2];
        if (!last.skipped.empty()) break;
        const int next = next_extension_workers(c, &before, last, f.sweep.extension_stop, /*predicted=*/true);
        if (next == 0) break;
        const auto p = plan_of(next);
        if (p == f.sweep.plan.end()) break;
        predict_one(*p, true);
        if (!f.sweep.rows.back().skipped.empty()) {
            f.sweep.extension_stop = fmt::format("{} workers do not fit in memory", next);
            break;
        }
    }
    return f;
}

const lockstep_row * predicted_row(const fast_result & f, int workers) {
    for (const auto & r : f.sweep.rows) {
        if (r.predicted && r.workers == workers) return &r;
    }
    return nullptr;
}

std::optional<lockstep_row> verify_one(const lockstep_config & c, fast_result & f, int workers, lockstep_callbacks cb) {
    auto vc = c;
    vc.workers = {workers};
    vc.extend = false;
    vc.done.clear();
    vc.repetitions = 1;
    cb.row = nullptr;
    const auto r = run_lockstep(vc, cb);
    f.sweep.interrupted = f.sweep.interrupted || r.interrupted;
    if (r.interrupted || r.rows.empty() || !r.rows.front().skipped.empty()) return std::nullopt;
    lockstep_row measured = r.rows.front();
    if (const auto * base = predicted_row(f, f.sweep.base_workers)) {  // as the predicted rows' speedup
        const auto sc = scaling_of(measured.overall_tps.mean, workers, base->overall_tps.mean, f.sweep.base_workers);
        measured.speedup = sc.speedup;
        measured.efficiency = sc.efficiency;
    }
    return measured;
}

std::string interval_text(const predict::interval & i, double scale, int decimals) {
    return fmt::format("~{} ({}-{})", fmtx::thousands(i.value * scale, decimals), fmtx::thousands(i.lo * scale, decimals),
                       std::isfinite(i.hi) ? fmtx::thousands(i.hi * scale, decimals) : std::string("inf"));
}

std::string step_fit_markdown(const predict::step_fit & steps, const predict::prefill_fit & prefill, double tolerance) {
    std::string out;
    out += "| Regime (W) | a: per step (ms) | b: per sequence (ms) | c: per sequence per KV cell (ns) | residual sd | max residual | samples |\n";
    out += "|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto & r : steps.regimes) {
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n",
                           r.w_min == r.w_max ? std::to_string(r.w_min) : fmt::format("{}-{}", r.w_min, r.w_max), ms(r.a),
                           ms(r.b), fmtx::thousands(r.c * 1e9, 3), fmtx::percent(r.resid_sd_rel, 1),
                           fmtx::percent(r.max_rel_residual, 1), r.n_samples);
    }
    out += fmt::format("\nStep time t(W, d) = a + b·W + c·W·d per regime (weighted least squares; regimes split where one "
                       "fit leaves a residual above {}). Prefill T(N) = {} ms + {} ms per token{} over N = W·p tokens.\n",
                       fmtx::percent(tolerance, 0), ms(prefill.e), fmtx::thousands(prefill.f * 1e3, 4),
                       prefill.quadratic ? fmt::format(" + {} ns per token²", fmtx::thousands(prefill.g * 1e9, 4)) : "");
    return out;
}

std::string fast_markdown(const fast_result & f) {
    std::string out = fmt::format(
        "Predicted by `--fast` (docs/fast-mode.md) from {} decode-step probes (W = {}; KV depths {}) and {} prefill "
        "probes (W = {}) in {} s; rows marked ~ are predictions, their 95% prediction interval in parentheses.\n\n",
        f.probes.steps.size(), fmt::join([&] {
            std::vector<int> w;
            for (const auto & s : f.probes.steps) w.push_back(s.workers);
            std::sort(w.begin(), w.end());
            w.erase(std::unique(w.begin(), w.end()), w.end());
            return w;
        }(), ","), fmt::join(f.probes.depths, ", "), f.probes.prefills.size(), fmt::join(f.probes.prefill_workers, ","),
        fmtx::thousands(f.probes.seconds, 1));
    if (f.probes.switches.n_probes > 0) {
        out += fmt::format("{} of the step probes (W = {}) located kernel switches between the sweep's W, in {} s.\n\n",
                           f.probes.switches.n_probes, fmt::join([&] {
                               std::vector<int> w;
                               for (const auto & sw : f.probes.switches.switches) {
                                   for (const auto & p : sw.probes) w.push_back(p.probe.sample.workers);
                               }
                               return w;
                           }(), ","), fmtx::thousands(f.probes.switch_probe_s, 1));
    }
    out += step_fit_markdown(f.steps, f.prefill, f.tolerance);
    for (const auto & line : switch_sentences(f)) out += "\n" + line + "\n";
    const bool extrapolated = std::any_of(f.sweep.rows.begin(), f.sweep.rows.end(),
                                          [](const auto & r) { return r.predicted && r.prediction.extrapolated; });
    if (extrapolated) out += "\nSome rows are extrapolated beyond the probed W, depths or prompt tokens: read them as estimates.\n";
    if (f.sweep.interrupted) out += "\nInterrupted during the probes: only what was probed is predicted.\n";
    return out;
}

std::vector<std::string> switch_sentences(const fast_result & f) {
    std::vector<std::string> out;
    const auto & switches = f.probes.switches.switches;
    for (const auto & ch : f.changes) {
        const auto sw = std::find_if(switches.begin(), switches.end(), [&](const auto & s) { return s.w_after == ch.workers; });
        const bool located = ch.workers == ch.workers_before + 1;
        std::string how;
        if (sw != switches.end() && !sw->probes.empty()) {
            std::vector<int> probed;
            for (const auto & p : sw->probes) probed.push_back(p.probe.sample.workers);
            how = fmt::format("{} by {} of at most {} probes between W = {} and {} at depth {:.0f}: W = {}",
                              located ? "located" : "narrowed", sw->probes.size(), sw->probe_bound, sw->sweep_before,
                              sw->sweep_after, sw->probes.front().probe.sample.depth, fmt::join(probed, ", "));
        } else if (located) {
            how = "adjacent W in the sweep";
        }
        if (sw != switches.end() && !sw->stopped.empty()) how += (how.empty() ? "" : "; ") + fmt::format("not narrowed further: {}", sw->stopped);
        const std::string against = ch.trend_is_one_w ? fmt::format("its cost at W = {}", ch.workers_before)
                                                      : fmt::format("the W <= {} trend", ch.workers_before);
        out.push_back(fmt::format("{} between W = {} and W = {}{}: the per-sequence step cost {} {} against {} "
                                  "({} ms per sequence at W = {}, against {} ms).",
                                  located ? "Kernel switch" : "Regime change", ch.workers_before, ch.workers,
                                  how.empty() ? "" : " (" + how + ")", ch.jump_rel >= 0 ? "jumps" : "falls",
                                  signed_pct(ch.jump_rel), against, ms(ch.per_seq_s), ch.workers, ms(ch.per_seq_trend_s)));
    }
    for (const auto & sw : switches) {
        for (const auto & p : sw.probes) {
            if (p.test.side != predict::switch_side::neither) continue;
            out.push_back(fmt::format("W = {} (probed at depth {:.0f}: {} ms per step) fits neither side: {} against the W <= {} "
                                      "trend, {} against the W >= {} fit: a transition the step model does not describe.",
                                      p.probe.sample.workers, p.probe.sample.depth, ms(p.probe.sample.seconds),
                                      signed_pct(p.test.resid_before_rel), sw.sweep_before, signed_pct(p.test.resid_after_rel),
                                      sw.sweep_after));
        }
    }
    for (const auto & r : f.sweep.rows) {
        if (r.predicted && r.steps_probed) {
            out.push_back(fmt::format("W = {} is probed, not predicted: no step fit across W holds there, so its row rests on its "
                                      "own step probes (a + c·W·d through its probed depths).", r.workers));
        }
    }
    return out;
}

double prediction_error_pct(const lockstep_row & predicted, const lockstep_row & measured) {
    return measured.overall_tps.mean > 0 ? 100.0 * (predicted.overall_tps.mean / measured.overall_tps.mean - 1.0) : 0.0;
}

std::string verify_markdown(const lockstep_row & predicted, const lockstep_row & measured) {
    std::string out = fmt::format("\n### Verification: W = {} predicted and measured\n\n", measured.workers);
    out += "| Rate | Predicted (95% interval) | Measured | Error | Inside the interval |\n|---|---:|---:|---:|---|\n";
    const auto line = [&](const char * name, const predict::interval & p, double m) {
        const double err = m > 0 ? 100.0 * (p.value / m - 1.0) : 0.0;
        out += fmt::format("| {} | {} ({}-{}) | {} | {:+.1f}% | {} |\n", name, fmtx::thousands(p.value, 2),
                           fmtx::thousands(p.lo, 2), std::isfinite(p.hi) ? fmtx::thousands(p.hi, 2) : std::string("inf"),
                           fmtx::thousands(m, 2), err, m >= p.lo && m <= p.hi ? "yes" : "**no**");
    };
    line("Prompt t/s", predicted.prediction.prompt_tps, measured.prompt_tps.mean);
    line("Generation t/s", predicted.prediction.gen_tps, measured.gen_tps.mean);
    line("Overall t/s", predicted.prediction.overall_tps, measured.overall_tps.mean);
    return out;
}

}  // namespace im::workload
