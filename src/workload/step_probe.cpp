#include "workload/step_probe.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "engine/backend.h"
#include "workload/batch.h"
#include "workload/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace im::workload {

namespace {

// Per (W, depth): untimed steps (the cache copy and the shape settle; below, they also size the window),
// then `windows` timed windows of k steps each. Inside a window nothing synchronizes: the host builds
// step k+1 while the device runs step k, as in the lockstep sweep, whose time per step is therefore
// what a window measures (a step synchronized on its own adds the host's share on a GPU: -17% at W = 1
// on the H200). A window's one synchronize costs the first step's host time, spread over k steps:
// windows of 2 steps at W = 64 on the H200 still read 6% slow (20 ms windows), hence >= 60 ms.
int steps_per_window(const step_probe_config & c, double step_s) {
    const int k = step_s > 0 ? static_cast<int>(std::ceil(c.window_min_s / step_s)) : c.window_max_steps;
    return std::clamp(k, 2, std::max(2, c.window_max_steps));
}

double seconds_since(int64_t t0_ns) { return static_cast<double>(clock::now_ns() - t0_ns) / 1e9; }

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

double fit_tolerance(const step_probe_result & r) {
    if (r.step_spread_rel.empty()) return 0.05;
    // Four times the typical spread of one point's timed steps: noise alone must not split a regime.
    return std::max(0.05, 4.0 * median_of(r.step_spread_rel) / 2.0);
}

std::vector<int> probe_depths(int n_prompt, int n_predict) {
    // The sweep's first, middle and last decode positions.
    std::vector<int> d{n_prompt, n_prompt + (n_predict - 1) / 2, n_prompt + n_predict - 1};
    d.erase(std::unique(d.begin(), d.end()), d.end());
    return d;
}

step_probe_result run_step_probes(const step_probe_config & c, const step_probe_callbacks & cb) {
    const int64_t t0 = clock::now_ns();
    step_probe_result res;
    if (c.workers.empty()) throw_usage("--fast: no worker counts to probe");
    std::vector<int> ws = c.workers;
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    const int w_max = ws.back();
    IM_CHECK(c.windows >= 1 && c.window_max_steps >= 2, fmt::format("{} windows of at most {} steps", c.windows, c.window_max_steps));
    res.depths = probe_depths(c.n_prompt, c.n_predict);
    // Each point's timed steps are centred on its depth, for a window of 4 steps: the cache is filled
    // to `fill` cells first (the depth recorded is the centre of the steps actually timed).
    const int max_steps = 3 + c.windows * c.window_max_steps;
    const int lead = 3 + (c.windows * 4 - 1) / 2;
    const auto fill_of = [&](int depth) { return std::max(1, depth - lead); };
    const auto say = [&](const std::string & s) {
        if (cb.progress) cb.progress(s);
    };

    engine::llama::model model(c.model_path, c.params);
    const bool offloaded = c.params.n_gpu_layers != 0 && !engine::gpu_info().empty();
    // The context the sweep's largest W runs on (same cells per sequence, same layout, same threads).
    // (plus the few cells the last point's steps reach past the sweep's last position)
    const auto n_ctx = auto_n_ctx(w_max, c.n_prompt, c.n_predict + max_steps, c.ctx_min);
    engine::llama::context_request req{static_cast<uint32_t>(n_ctx), static_cast<uint32_t>(w_max), c.kv_unified, !offloaded};
    engine::llama::context ctx(model, c.params, req);
    res.n_ctx = ctx.alloc().n_ctx;
    res.n_threads = ctx.n_threads();
    llama_context * lctx = ctx.get();
    llama_memory_t mem = llama_get_memory(lctx);
    const int32_t n_vocab = llama_vocab_n_tokens(model.vocab());
    const int max_tokens = std::max({w_max * c.n_prompt, res.depths.back() + 1, w_max, 16});
    batch::holder holder(max_tokens);
    llama_batch & b = holder.batch;
    const auto fail = [&](const std::string & what) {
        const std::string why = engine::last_llama_errors();
        throw_runtime("--fast: llama_decode failed during {}{}", what, why.empty() ? "" : ": " + why);
    };
    const auto prefill = [&](int workers, int n_tokens, int pos0) {
        batch::fill_prompts(b, workers, n_tokens, n_vocab, pos0);
        const int64_t t = clock::now_ns();
        if (!batch::decode_chunks(lctx, b, c.params.n_batch)) fail(fmt::format("a prefill of {} x {} tokens", workers, n_tokens));
        llama_synchronize(lctx);
        return seconds_since(t);
    };
    const auto stop = [&] {
        if (!interrupt::requested()) return false;
        res.interrupted = true;
        res.seconds = seconds_since(t0);
        return true;
    };

    // Warm the prefill shape once, as the sweep warms each W (the first decode of a shape is cold).
    prefill(1, c.n_prompt, 0);
    llama_memory_clear(mem, true);

    // One probe point: W sequences, each holding the cache of `d` cells, decode together (see
    // steps_per_window); every sequence is taken back to depth d afterwards.
    const auto decode_step = [&](int w, int pos) {
        batch::fill_step(b, w, pos, n_vocab);
        if (llama_decode(lctx, b) != 0) fail(fmt::format("a step of {} sequences at depth {}", w, pos));
    };
    const auto probe_point = [&](int w, int d) {
        const auto step = [&](int pos) { decode_step(w, pos); };
        // Untimed: one step (a new shape: graph build, CUDA graph capture), and where that step
        // is shorter than a window, two more pipelined ones whose time per step sizes the window
        // (the first step's time alone, capture included, chose 2-step windows on the H200 and
        // put the host's share back into W = 1: -17.6%).
        int pos = d;
        int64_t t = clock::now_ns();
        step(pos++);
        llama_synchronize(lctx);
        double est_s = seconds_since(t);
        if (est_s < c.window_min_s) {
            t = clock::now_ns();
            step(pos++);
            step(pos++);
            llama_synchronize(lctx);
            est_s = seconds_since(t) / 2;
        }
        const int k = steps_per_window(c, est_s);
        const int first_timed = pos;
        std::vector<double> per_step;  // one per window: its time / k
        for (int win = 0; win < c.windows; ++win) {
            t = clock::now_ns();
            for (int s = 0; s < k; ++s) step(pos++);
            llama_synchronize(lctx);
            per_step.push_back(seconds_since(t) / k);
        }
        llama_memory_seq_rm(mem, -1, d, -1);  // back to depth d for every sequence
        // The depth of a step is the position it decodes; the timed ones are first_timed .. pos-1.
        const double depth = (first_timed + pos - 1) / 2.0;
        const double med = median_of(per_step);
        const double spread = (*std::max_element(per_step.begin(), per_step.end()) -
                               *std::min_element(per_step.begin(), per_step.end())) / med;
        say(fmt::format("step W={} depth {:.0f}: {:.3f} ms ({} windows of {} steps, spread {:.1f}%)", w, depth, med * 1e3,
                        c.windows, k, 100 * spread));
        return predict::probed_step{{w, depth, med}, spread};
    };
    // Synchronized rounds at W = w, depth d, as the continuous engine runs its steps: each round decodes a
    // step, waits for it (llama_synchronize: the engine reads the logits after every step, so the host's
    // share of a step - graph build, launches - is not hidden behind the previous step as in the pipelined
    // windows above) and, with CPU sampling, samples every sequence once (one chain per sequence, as the
    // engine's). The sampling is timed on the fresh logits of the round's own step, not in rounds over the
    // same logits: those stay in the host's caches while a run's arrive new every step (warm rounds read
    // 0.77 ms where the run's sampling took 1.19 ms: synth:tiny, 4 sequences of 151,936 logits, 2-core VM).
    const bool probe_samplings = c.sampling && c.sampling->mode == engine::llama::sampling_mode::cpu;
    const auto probe_synced = [&](int w, int d, double step_s) {
        std::vector<std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)>> chains;
        if (probe_samplings) {
            for (int s = 0; s < w; ++s) chains.emplace_back(engine::llama::make_sampler_chain(*c.sampling), &llama_sampler_free);
        }
        int pos = d;
        const auto round = [&] {  // {decode + synchronize, sampling} seconds
            const int64_t t = clock::now_ns();
            decode_step(w, pos++);
            llama_synchronize(lctx);
            const int64_t t1 = clock::now_ns();
            for (size_t s = 0; s < chains.size(); ++s) llama_sampler_sample(chains[s].get(), lctx, static_cast<int32_t>(s));
            return std::pair{static_cast<double>(t1 - t) * 1e-9, seconds_since(t1)};
        };
        round();  // untimed: the chains' first allocations
        const auto [est_step, est_sample] = round();
        // No more rounds a window than the step probe's window had steps: the synced probe costs at most what
        // the step probe did, where sampling is a sliver of a slow step (a 1.5B model on 2 cores: 0.4 ms of
        // 100), and the context holds that many steps past d.
        const double est_s = probe_samplings ? est_sample : est_step;
        const double min_s = probe_samplings ? c.sampling_window_min_s : c.window_min_s;
        const int k_max = steps_per_window(c, step_s);
        const int k = std::clamp(est_s > 0 ? static_cast<int>(std::ceil(min_s / est_s)) : k_max, 1, k_max);
        const int first_timed = pos;
        std::vector<double> per_step, per_sample;
        for (int win = 0; win < c.windows; ++win) {
            double steps = 0, samples = 0;
            for (int r = 0; r < k; ++r) {
                const auto [st, sa] = round();
                steps += st, samples += sa;
            }
            per_step.push_back(steps / k);
            per_sample.push_back(samples / k);
        }
        llama_memory_seq_rm(mem, -1, d, -1);  // back to depth d for every sequence
        const double step_med = median_of(per_step);
        res.synced_steps.push_back({w, (first_timed + pos - 1) / 2.0, step_med});
        if (!probe_samplings) {
            say(fmt::format("synchronized step W={}: {:.3f} ms ({} windows of {} steps)", w, step_med * 1e3, c.windows, k));
            return;
        }
        const double med = median_of(per_sample);
        say(fmt::format("synchronized step W={}: {:.3f} ms, then sampling: {:.3f} ms ({} windows of {} rounds, fresh "
                        "logits each)",
                        w, step_med * 1e3, med * 1e3, c.windows, k));
        res.samplings.push_back({w, med});
    };

    // Sequences 1 .. w-1 hold copies of sequence 0's cache (`state`, at depth d); `have` of them do now.
    std::vector<uint8_t> state;
    int have = 1;
    const auto read_state = [&](int d) {
        state.resize(llama_state_seq_get_size(lctx, 0));
        if (llama_state_seq_get_data(lctx, state.data(), state.size(), 0) != state.size()) {
            throw_runtime("--fast: cannot read the KV cache of sequence 0 at depth {}", d);
        }
    };
    const auto hold = [&](int w, int d) {
        for (; have > w; --have) llama_memory_seq_rm(mem, have - 1, -1, -1);
        for (; have < w; ++have) {
            if (llama_state_seq_set_data(lctx, state.data(), state.size(), have) == 0) {
                throw_runtime("--fast: cannot copy the KV cache to sequence {} at depth {} (context of {} cells)", have, d,
                              res.n_ctx);
            }
        }
    };

    // 1. Decode steps: for each depth, sequence 0 is filled to it and copied to the others as W grows.
    int depth_now = 0;
    for (const int target : res.depths) {
        if (stop()) return res;
        const int d = fill_of(target);
        if (d <= depth_now) continue;  // a short sweep: two targets share a fill
        hold(1, d);
        const double t_fill = prefill(1, d - depth_now, depth_now);
        if (depth_now == 0) res.prefills.push_back({d, t_fill});  // a W=1 prefill from an empty cache
        depth_now = d;
        read_state(d);
        for (const int w : ws) {
            if (stop()) return res;
            hold(w, d);
            const auto p = probe_point(w, d);
            res.steps.push_back(p.sample);
            res.step_spread_rel.push_back(p.spread_rel);
            if (probe_samplings || c.synced_steps) probe_synced(w, d, p.sample.seconds);
        }
    }

    // 2. Kernel switches between the sweep's W, located by bisection at the middle depth (docs/fast-mode.md
    // §2): the cache goes back to that depth (every sequence's cells past it removed), and each probe
    // runs only while its predicted cost keeps the switch probes within their share of the predicted sweep.
    const double tolerance = fit_tolerance(res);
    const auto sweep_fit = predict::fit_steps(res.steps, tolerance);
    double full_s = 0;
    for (const int w : ws) full_s += predict::predict_tg_s(sweep_fit, w, c.n_prompt, c.n_predict).value;
    const int mid_target = res.depths[res.depths.size() / 2];
    const int d_mid = std::min(fill_of(mid_target), depth_now);
    bool mid_ready = false;
    const int64_t t_switch = clock::now_ns();
    const auto switch_probe = [&](int w) -> std::optional<predict::probed_step> {
        if (stop()) return std::nullopt;
        const double step_s = predict::predict_step_s(sweep_fit, w, mid_target).value;
        const double cost_s = step_s * (3 + c.windows * steps_per_window(c, step_s));
        if (seconds_since(t_switch) + cost_s > c.switch_budget_share * full_s) return std::nullopt;
        if (!mid_ready) {
            hold(1, d_mid);
            llama_memory_seq_rm(mem, 0, d_mid, -1);
            read_state(d_mid);
            mid_ready = true;
        }
        hold(w, d_mid);
        return probe_point(w, d_mid);
    };
    const size_t n_sweep = res.steps.size();
    res.switches = predict::locate_switches(res.steps, res.step_spread_rel, tolerance, mid_target, switch_probe);
    res.switch_probe_s = mid_ready ? seconds_since(t_switch) : 0.0;
    for (const auto & sw : res.switches.switches) {
        for (const auto & p : sw.probes) {
            res.steps.push_back(p.probe.sample);
            res.step_spread_rel.push_back(p.probe.spread_rel);
        }
    }
    if (res.interrupted) return res;
    IM_CHECK(res.steps.size() == n_sweep + static_cast<size_t>(res.switches.n_probes), "switch probes lost");

    // 3. Prefills of W x n_prompt tokens, W ascending, while they cost a small share of the full sweep.
    // (the first fill was a W=1 prefill of about n_prompt tokens: it counts, but W=1 is timed exactly too)
    double spent_s = res.prefills.empty() ? 0 : res.prefills.front().seconds;
    int64_t spent_tokens = res.prefills.empty() ? 0 : res.prefills.front().tokens;
    for (const int w : ws) {
        // The next prefill costs about its tokens at the rate seen so far; the first two W always run.
        const double next_s = spent_tokens > 0 ? spent_s / static_cast<double>(spent_tokens) * w * c.n_prompt : 0.0;
        if (res.prefill_workers.size() >= 2 && spent_s + next_s > c.prefill_budget_share * full_s) break;
        if (stop()) return res;
        llama_memory_clear(mem, true);
        const double t = prefill(w, c.n_prompt, 0);
        res.prefills.push_back({static_cast<int64_t>(w) * c.n_prompt, t});
        res.prefill_workers.push_back(w);
        spent_s += t;
        spent_tokens += static_cast<int64_t>(w) * c.n_prompt;
        say(fmt::format("prefill W={} ({} tokens): {:.3f} s", w, w * c.n_prompt, t));
    }
    res.seconds = seconds_since(t0);
    return res;
}

}  // namespace im::workload
