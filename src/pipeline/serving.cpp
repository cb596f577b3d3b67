#include "pipeline/serving.h"

#include "core/error.h"
#include "core/format.h"
#include "core/interrupt.h"
#include "dataset/vocab.h"
#include "workload/continuous.h"

#include <fmt/format.h>

#include <algorithm>

namespace im::pipeline {

std::vector<int> serving_levels(const serving_options & o) {
    std::vector<int> ws = o.workers;
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    if (!o.every_level && ws.size() > 2) ws = {ws.front(), ws.back()};
    return ws;
}

report::serving_result run_serving(const serving_options & o, const serving_callbacks & cb) {
    report::serving_result s;
    s.objectives = o.objectives;
    if (o.workers.empty()) return s;

    // 1. The dataset's own lengths, real sampling, closed loop at each measured W.
    workload::continuous_sweep sw;
    sw.model_path = o.model_path;
    sw.params = o.params;
    sw.ctx_min = o.ctx_min;
    sw.kv_unified = o.kv_unified;
    sw.sampling.mode = engine::llama::sampling_mode::cpu;
    sw.lengths.shape = workload::length_source::kind::dataset;
    sw.lengths.dataset_name = o.dataset.filename().string();
    workload::continuous_callbacks ccb;
    ccb.progress = cb.progress;
    ccb.info = cb.warn;
    const std::vector<int> ws = serving_levels(o);
    {
        // Request i uses sample i (modulo their count), and no run here sends more requests than this:
        // tokenizing the rest of the dataset (seconds on a CPU) would change nothing but the context size.
        const int most = std::max({o.min_requests, o.requests_per_user * ws.back(),
                                   o.capacity ? 2 * std::max(o.min_requests, o.probe_requests_per_user * ws.back()) : 0});
        dataset::vocabulary vocab(o.model_path);  // the model's own vocabulary (a vocab-only load)
        size_t bad = 0;
        sw.lengths.samples = workload::load_samples(o.dataset, vocab.get(), static_cast<size_t>(most), bad);
    }
    if (o.output_cap > 0) {
        for (auto & smp : sw.lengths.samples) smp.n_output = std::min(smp.n_output, o.output_cap);
        s.note = fmt::format("Continuous batching in-process, closed loop (each user sends its next request when the last "
                             "ends), the dataset's own prompts and output lengths (outputs capped at {} tokens by the "
                             "profile), greedy sampling on the CPU, EOS ignored.", o.output_cap);
    } else {
        s.note = "Continuous batching in-process, closed loop (each user sends its next request when the last ends), the "
                 "dataset's own prompts and output lengths, greedy sampling on the CPU, EOS ignored.";
    }
    {
        workload::continuous_runner runner(sw);
        for (int c : ws) {
            if (interrupt::requested()) return s;
            workload::request_workload w;
            w.arrivals = workload::arrival_kind::closed;
            w.concurrency = c;
            w.n_requests = std::max(o.min_requests, o.requests_per_user * c);
            w.objectives = o.objectives;
            s.levels.push_back(runner.run(w, ccb));
            if (cb.saved) cb.saved(s);
            if (s.levels.back().interrupted) return s;
        }
        // 2. Capacity: concurrency, then open-loop rate, within the SLO.
        if (o.capacity && !interrupt::requested()) {
            workload::capacity_options co;
            co.max_concurrency = ws.back();
            co.max_probes = o.capacity_max_probes;
            workload::request_workload base;
            base.objectives = o.objectives;
            s.capacity = workload::find_capacity(
                [&](const workload::request_workload & w) {
                    // A concurrency the levels measured (with more requests per user) is that level: a
                    // second, shorter measurement of it could only contradict the table beside it.
                    if (w.arrivals == workload::arrival_kind::closed && w.think_time_s == 0) {
                        for (const auto & l : s.levels) {
                            if (l.workload.arrivals == workload::arrival_kind::closed && l.workload.concurrency == w.concurrency) {
                                auto reused = l;
                                reused.workload.objectives = w.objectives;
                                reused.metrics = workload::compute_metrics(reused.records, reused.steps, reused.workload);
                                return reused;
                            }
                        }
                    }
                    auto lw = w;
                    lw.n_requests = lw.arrivals == workload::arrival_kind::closed
                                        ? std::max(o.min_requests, o.probe_requests_per_user * lw.concurrency)
                                        : std::max(o.min_requests * 2, o.probe_requests_per_user * 2 * std::max(1, lw.max_concurrency));
                    return runner.run(lw, ccb);
                },
                base, co);
            if (cb.saved) cb.saved(s);
            if (s.capacity->interrupted) return s;
        }
    }

    // 3. What sampling costs: the largest measured W, fixed lengths, all requests at t = 0.
    const auto it = std::max_element(o.workers.begin(), o.workers.end());
    const int w_cmp = *it;
    s.compare_workers = w_cmp;
    s.compare_n_prompt = o.n_prompt;
    s.compare_n_predict = o.n_predict;
    s.lockstep_gen_tps = o.lockstep_gen_tps[static_cast<size_t>(it - o.workers.begin())];
    workload::continuous_sweep fx = sw;
    fx.lengths = {};
    fx.lengths.shape = workload::length_source::kind::fixed;
    fx.lengths.n_prompt = o.n_prompt;
    fx.lengths.n_predict = o.n_predict;
    workload::request_workload w;
    w.arrivals = workload::arrival_kind::closed;
    w.concurrency = w_cmp;
    w.n_requests = w_cmp;
    w.objectives = o.objectives;
    // One model load for the three runs: the runner reads fx.sampling when each run starts.
    workload::continuous_runner runner(fx);
    const auto run_mode = [&](engine::llama::sampling_mode m) -> std::optional<workload::request_run> {
        if (interrupt::requested()) return std::nullopt;
        fx.sampling.mode = m;
        return runner.run(w, ccb);
    };
    s.no_sample = run_mode(engine::llama::sampling_mode::none);
    if (cb.saved) cb.saved(s);
    s.cpu_sampling = run_mode(engine::llama::sampling_mode::cpu);
    if (cb.saved) cb.saved(s);
    if (!o.backend_sampling) {
        s.backend_sampling_error = "not measured by this profile (--profile standard measures it)";
    } else {
        try {
            s.backend_sampling = run_mode(engine::llama::sampling_mode::backend);
        } catch (const im::error & e) {
            s.backend_sampling_error = e.what();
            if (cb.warn) cb.warn("backend sampling: " + s.backend_sampling_error);
        }
    }
    if (cb.saved) cb.saved(s);
    return s;
}

}  // namespace im::pipeline
