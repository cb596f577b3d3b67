#include "workload/continuous_fast.h"

#include "core/error.h"
#include "core/format.h"
#include "workload/fast.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

namespace im::workload {

namespace {

std::string ms(double s) { return fmtx::thousands(s * 1e3, 3); }

}  // namespace

std::string continuous_fast_refusal(const continuous_sweep & s, const std::vector<request_workload> & levels) {
    if (s.sampling.mode == engine::llama::sampling_mode::backend) {
        return "--fast models CPU sampling or --no-sample: backend sampling runs inside the decode graph, which the step "
               "probes do not run (drop --fast or --backend-sampling)";
    }
    for (const auto & w : levels) {
        if (w.arrivals != arrival_kind::closed) {
            return "--fast predicts closed-loop levels (--concurrency); an open loop's latencies depend on queueing the step "
                   "model does not describe (drop --fast or use --concurrency)";
        }
        if (w.think_time_s > 0) return "--fast assumes users send their next request at once (drop --think-time or --fast)";
        if (s.n_slots > 0 && s.n_slots < w.concurrency) {
            return fmt::format("--fast assumes a slot per user: --slots {} is below --concurrency {} (requests would queue)",
                               s.n_slots, w.concurrency);
        }
    }
    return "";
}

std::pair<double, double> mean_lengths(const request_source & src, const std::vector<request_workload> & levels) {
    const auto & l = src.lengths();
    if (l.shape == length_source::kind::fixed) return {l.n_prompt, l.n_predict};
    int n = 0;
    for (const auto & w : levels) n = std::max(n, w.n_requests > 0 ? w.n_requests : 1000);
    double prompt = 0, output = 0;
    for (int i = 0; i < n; ++i) {
        const auto r = src.make(static_cast<uint64_t>(i));
        prompt += r.n_prompt;
        output += r.n_predict;
    }
    return {prompt / n, output / n};
}

continuous_fast_result run_continuous_fast(const continuous_sweep & s, const std::vector<request_workload> & levels,
                                           const step_probe_callbacks & cb) {
    const std::string refusal = continuous_fast_refusal(s, levels);
    IM_CHECK(refusal.empty(), refusal);
    IM_CHECK(!levels.empty(), "no load levels to predict");
    continuous_fast_result f;
    {
        const engine::llama::model vocab_only(s.model_path, s.params, /*no_alloc=*/true);
        const request_source src(s.lengths, vocab_only.vocab(), s.seed);
        std::tie(f.mean_prompt, f.mean_output) = mean_lengths(src, levels);
    }
    f.n_prompt = std::max(1, static_cast<int>(std::lround(f.mean_prompt)));
    f.n_output = std::max(1, static_cast<int>(std::lround(f.mean_output)));

    step_probe_config pc;
    pc.model_path = s.model_path;
    pc.params = s.params;
    for (const auto & w : levels) pc.workers.push_back(w.concurrency);
    // The decode steps of a request run at depths p .. p+n-2 (its first token comes from the prefill step).
    pc.n_prompt = f.n_prompt;
    pc.n_predict = std::max(1, f.n_output - 1);
    pc.ctx_min = s.ctx_min;
    pc.kv_unified = s.kv_unified;
    pc.sampling = s.sampling;
    pc.synced_steps = true;
    f.probes = run_step_probes(pc, cb);
    f.interrupted = f.probes.interrupted;
    if (f.probes.steps.empty() || f.probes.prefills.empty()) return f;
    if (s.sampling.mode == engine::llama::sampling_mode::cpu && f.probes.samplings.empty()) return f;
    fit_probes(f.probes, f.steps, f.prefill, f.tolerance);
    if (!f.probes.synced_steps.empty()) {
        f.synced = predict::fit_steps(f.probes.synced_steps, f.tolerance);
        f.synced->probe_bias_rel = probe_bias_rel;
    }
    if (!f.probes.samplings.empty()) {
        f.sampling = predict::fit_sampling(f.probes.samplings);
        f.sampling->probe_bias_rel = probe_bias_rel;
    }

    const int step_tokens = s.step_tokens > 0 ? s.step_tokens : s.params.n_batch;
    const std::string engine = "llama.cpp in-process continuous batching, predicted by --fast from step probes";
    for (const auto & w : levels) {
        request_run r;
        r.workload = w;
        r.engine = engine;
        r.lengths = s.lengths.describe();
        r.sampling = s.sampling.describe();
        r.n_slots = slots_for(s, w);
        r.n_ctx = f.probes.n_ctx;
        r.n_threads = f.probes.n_threads;
        r.interrupted = f.interrupted;
        const auto p = predict::predict_continuous(f.synced ? *f.synced : f.steps, f.prefill, f.sampling ? &*f.sampling : nullptr, w.concurrency,
                                                   f.n_prompt, f.n_output);
        auto & m = r.metrics;
        m.request_tps = p.request_tps.value;
        m.output_tps = p.output_tps.value;
        m.total_tps = p.request_tps.value * (f.mean_prompt + f.mean_output);
        m.mean_concurrency = w.concurrency;
        m.ttft.mean = p.ttft_s.value * 1e3;
        m.tpot.mean = p.tpot_s.value * 1e3;
        m.e2e.mean = p.e2e_s.value * 1e3;
        m.sample_ms_mean = p.sampling_step_s.value * 1e3;
        if (static_cast<int64_t>(w.concurrency) * f.n_prompt > step_tokens) {
            r.prediction_note = fmt::format("the {} prompts of {} tokens exceed --step-tokens {}: they are chunked over several "
                                            "steps and the users drift apart, which the one-prefill cycle only approximates",
                                            w.concurrency, f.n_prompt, step_tokens);
        } else if (s.lengths.shape != length_source::kind::fixed) {
            r.prediction_note = "lengths vary: the cycle uses the mean lengths, and a prompt shares its step with decodes, "
                                "so the mean TTFT comes out low (docs/fast-mode.md §8)";
        }
        r.prediction = p;
        f.runs.push_back(std::move(r));
    }
    return f;
}

const request_run * predicted_run(const continuous_fast_result & f, int concurrency) {
    for (const auto & r : f.runs) {
        if (r.prediction && r.workload.concurrency == concurrency) return &r;
    }
    return nullptr;
}

std::string continuous_fast_markdown(const continuous_fast_result & f) {
    std::string out = fmt::format(
        "Predicted by `--fast` (docs/fast-mode.md §8) from {} decode-step probes (W = the concurrencies; KV depths {}), {} "
        "prefill probes (W = {}) and {} in {} s, for requests of {} prompt and {} output tokens (the workload's means: {} "
        "and {}). Levels marked ~ are predictions, their 95% prediction interval in parentheses.\n\n",
        f.probes.steps.size(), fmt::join(f.probes.depths, ", "), f.probes.prefills.size(), fmt::join(f.probes.prefill_workers, ","),
        f.sampling ? fmt::format("{} sampling probes", f.probes.samplings.size()) : std::string("no sampling (--no-sample)"),
        fmtx::thousands(f.probes.seconds, 1), f.n_prompt, f.n_output, fmtx::thousands(f.mean_prompt, 1),
        fmtx::thousands(f.mean_output, 1));
    out += step_fit_markdown(f.steps, f.prefill, f.tolerance);
    if (f.synced) {
        // The host's share of a step that pipelining hides and the engine's synchronize per step does not,
        // per W: the mean over the probed depths of synchronized / pipelined - 1.
        std::map<int, std::pair<double, int>> extra;  // W -> (sum of relative differences, count)
        for (const auto & s : f.probes.synced_steps) {
            auto & [sum, count] = extra[s.workers];
            sum += s.seconds / predict::predict_step_s(f.steps, s.workers, s.depth).value - 1;
            ++count;
        }
        std::vector<std::string> points;
        for (const auto & [w, e] : extra) points.push_back(fmt::format("{:+.1f}% at W = {}", 100 * e.first / e.second, w));
        out += fmt::format("\nThe cycle's decode steps use steps timed with a synchronize each, as the continuous engine "
                           "runs them (it reads the logits after every step, so the host's share of a step is not hidden "
                           "behind the previous one as in the pipelined probes): {} against the pipelined step; their "
                           "fit's largest residual {}.\n",
                           fmt::join(points, ", "), fmtx::percent(f.synced->max_rel_residual, 1));
    }
    if (f.sampling) {
        std::vector<std::string> points;
        for (size_t i = 0; i < f.sampling->n.size(); ++i) {
            points.push_back(fmt::format("{} ms at N = {}", ms(f.sampling->seconds[i]), f.sampling->n[i]));
        }
        out += fmt::format("Sampling S(N), one step's CPU sampling of N sequences (the median probe; straight lines "
                           "between): {} (probes within {} of their median).\n",
                           fmt::join(points, ", "), fmtx::percent(f.sampling->max_rel_residual, 1));
    }
    out += "\nOne closed-loop cycle completes C requests: a step prefilling the C prompts, then n - 1 decode steps of C "
           "sequences; every step samples each sequence it produced a token for. E2E = T(C·p) + T_TG(C, p, n-1) + n·S(C), "
           "output t/s = C·n / E2E.\n";
    for (const auto & r : f.runs) {
        if (!r.prediction_note.empty()) out += fmt::format("\n† {}: {}.\n", r.load_label(), r.prediction_note);
    }
    if (std::any_of(f.runs.begin(), f.runs.end(), [](const auto & r) { return r.prediction->extrapolated; })) {
        out += "\nSome levels are extrapolated beyond the probed W, depths, prompt tokens or sampled sequences: read them as "
               "estimates.\n";
    }
    if (f.interrupted) out += "\nInterrupted during the probes: only what was probed is predicted.\n";
    return out;
}

double continuous_error_pct(const request_run & predicted, const request_run & measured) {
    const double m = measured.metrics.output_tps;
    return m > 0 ? 100.0 * (predicted.metrics.output_tps / m - 1.0) : 0.0;
}

std::string continuous_verify_markdown(const request_run & predicted, const request_run & measured) {
    const auto & p = *predicted.prediction;
    std::string out = fmt::format("\n### Verification: {} predicted and measured\n\n", measured.load_label());
    out += "| Figure | Predicted (95% interval) | Measured | Error | Inside the interval |\n|---|---:|---:|---:|---|\n";
    const auto line = [&](const char * name, const predict::interval & i, double scale, double m) {
        const double err = m > 0 ? 100.0 * (i.value * scale / m - 1.0) : 0.0;
        out += fmt::format("| {} | {} | {} | {:+.1f}% | {} |\n", name, interval_text(i, scale), fmtx::thousands(m, 2), err,
                           m >= i.lo * scale && m <= i.hi * scale ? "yes" : "**no**");
    };
    const auto & mm = measured.metrics;
    line("Output t/s", p.output_tps, 1, mm.output_tps);
    line("Requests/s", p.request_tps, 1, mm.request_tps);
    line("TTFT mean (ms)", p.ttft_s, 1e3, mm.ttft.mean);
    if (p.n_output > 1) line("TPOT mean (ms)", p.tpot_s, 1e3, mm.tpot.mean);
    if (p.sampling_step_s.value > 0) line("Sampling per step (ms)", p.sampling_step_s, 1e3, mm.sample_ms_mean);
    return out;
}

}  // namespace im::workload
