#include "tune/inprocess.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/ranges.h"
#include "engine/backend.h"
#include "model/info.h"
#include "workload/batch.h"
#include "workload/continuous.h"
#include "workload/lockstep.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <thread>

namespace im::tune {

using engine::llama::flash_attn;

workload_kind workload_from_name(const std::string & name) {
    if (name == "lockstep") return workload_kind::lockstep;
    if (name == "continuous") return workload_kind::continuous;
    if (name == "serve") return workload_kind::serve;
    throw_usage("--workload {}: lockstep, continuous or serve", name);
}

const char * workload_name(workload_kind k) {
    switch (k) {
        case workload_kind::lockstep: return "lockstep";
        case workload_kind::continuous: return "continuous";
        case workload_kind::serve: return "serve";
    }
    return "lockstep";
}

std::vector<axis> inprocess_axes(const inprocess_config & c) {
    std::vector<axis> axes;
    // Continuous: where the sampler runs first (on the H200 it moved 64 streams from 0.16 to 0.59 of lockstep).
    if (c.workload == workload_kind::continuous) {
        axes.push_back({"--backend-sampling", values_first(c.backend_sampling ? "1" : "0", {"0", "1"}), true});
    }
    axes.push_back({"-fa", values_first(engine::llama::flash_attn_name(c.base.fa), {"on", "off"})});
    std::vector<std::string> ub;
    for (int u : {128, 256, 512, 1024, 2048}) {
        if (u <= c.base.n_batch) ub.push_back(std::to_string(u));
    }
    axes.push_back({"-ub", values_first(std::to_string(c.base.n_ubatch), ub)});
    axes.push_back({"--kv-unified", values_first(c.kv_unified ? "1" : "0", {"0", "1"}), true});
    if (!c.offloaded) {
        const int logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        const int base_t = c.base.n_threads > 0 ? c.base.n_threads : engine::llama::default_threads();
        std::vector<std::string> ts;
        for (int t : {logical, std::max(1, logical / 2), std::max(1, base_t / 2)}) ts.push_back(std::to_string(t));
        axes.push_back({"-t", values_first(std::to_string(base_t), ts)});
        axes.push_back({"--poll", values_first(std::to_string(c.base.poll), {"0", "50", "100"})});
    }
    if (c.kv_types) {
        axes.push_back({"-ctk", values_first(ggml_type_name(c.base.type_k), {"f16", "q8_0"})});
        axes.push_back({"-ctv", values_first(ggml_type_name(c.base.type_v), {"f16", "q8_0"})});
    }
    return axes;
}

engine::llama::engine_params params_of(const inprocess_config & c, const candidate & cand, bool * kv_unified,
                                       bool * backend_sampling) {
    auto p = c.base;
    bool kvu = c.kv_unified, be = c.backend_sampling;
    for (const auto & [k, v] : cand) {
        if (k == "-fa") p.fa = v == "on" ? flash_attn::on : v == "off" ? flash_attn::off : flash_attn::auto_;
        else if (k == "-ub") p.n_ubatch = std::stoi(v);
        else if (k == "--kv-unified") kvu = v == "1";
        else if (k == "--backend-sampling") be = v == "1";
        else if (k == "-t") p.n_threads = std::stoi(v);
        else if (k == "--poll") p.poll = std::stoi(v);
        else if (k == "-ctk") p.type_k = model::cache_type_from_name(v, "-ctk");
        else if (k == "-ctv") p.type_v = model::cache_type_from_name(v, "-ctv");
        else IM_CHECK(false, fmt::format("tune: unknown axis {}", k));
    }
    if (kv_unified) *kv_unified = kvu;
    if (backend_sampling) *backend_sampling = be;
    return p;
}

greedy_trace greedy_run(const std::filesystem::path & model_path, const engine::llama::engine_params & p, bool kv_unified,
                        int n_seq, int n_prompt, int n_steps, const std::vector<int32_t> * forced) {
    IM_CHECK(!forced || forced->size() == static_cast<size_t>(n_seq) * static_cast<size_t>(n_steps),
             "tune: forced tokens of another shape");
    engine::llama::model model(model_path, p);
    const uint32_t n_ctx = static_cast<uint32_t>(n_seq) * static_cast<uint32_t>(((n_prompt + n_steps) / 256 + 1) * 256);
    engine::llama::context ctx(model, p, {n_ctx, static_cast<uint32_t>(n_seq), kv_unified, true});
    llama_context * lctx = ctx.get();
    const int32_t n_vocab = llama_vocab_n_tokens(model.vocab());
    workload::batch::holder h(n_seq * n_prompt);
    llama_batch & b = h.batch;
    // A fixed prompt per sequence (a linear congruential walk over the vocabulary): the same tokens for
    // every candidate, unlike the sweep's random ones.
    uint64_t x = 12345;
    int idx = 0;
    for (int s = 0; s < n_seq; ++s) {
        for (int i = 0; i < n_prompt; ++i, ++idx) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b.token[idx] = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(n_vocab));
            b.pos[idx] = i;
            b.n_seq_id[idx] = 1;
            b.seq_id[idx][0] = s;
            b.logits[idx] = i == n_prompt - 1;
        }
    }
    b.n_tokens = idx;
    if (!workload::batch::decode_chunks(lctx, b, p.n_batch)) throw_runtime("tune: the greedy check's prompt failed to decode");
    greedy_trace out;
    out.n_vocab = n_vocab;
    out.logits.reserve(static_cast<size_t>(n_seq) * static_cast<size_t>(n_steps) * static_cast<size_t>(n_vocab));
    std::vector<int32_t> next(static_cast<size_t>(n_seq));
    for (int step = 0; step < n_steps; ++step) {
        for (int s = 0; s < n_seq; ++s) {
            // Logit rows in batch order: after the prompt, sequence s's last token; after a step, row s.
            const int row = step == 0 ? (s + 1) * n_prompt - 1 : s;
            const float * logits = llama_get_logits_ith(lctx, row);
            if (!logits) throw_runtime("tune: no logits for the greedy check");
            out.tokens.push_back(static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits));
            out.logits.insert(out.logits.end(), logits, logits + n_vocab);
            next[static_cast<size_t>(s)] = forced ? (*forced)[out.tokens.size() - 1] : out.tokens.back();
        }
        for (int s = 0; s < n_seq; ++s) {
            b.token[s] = next[static_cast<size_t>(s)];
            b.pos[s] = n_prompt + step;
            b.n_seq_id[s] = 1;
            b.seq_id[s][0] = s;
            b.logits[s] = 1;
        }
        b.n_tokens = n_seq;
        if (llama_decode(lctx, b) != 0) throw_runtime("tune: a greedy step failed to decode");
    }
    return out;
}

namespace {

// Continuous batching as `parallel --mode continuous` runs it: W requests of -p/-n started together
// (closed loop, one each), greedy sampling on the CPU or in the graph; the score is the decode-step
// t/s (tokens of pure decode steps per second of those steps), best of two runs after the runner's warmup.
double measure_continuous(const inprocess_config & c, const candidate & cand) {
    workload::continuous_sweep sw;
    sw.model_path = c.model_path;
    bool backend = false;
    sw.params = params_of(c, cand, &sw.kv_unified, &backend);
    sw.sampling.mode = backend ? engine::llama::sampling_mode::backend : engine::llama::sampling_mode::cpu;
    sw.lengths.shape = workload::length_source::kind::fixed;
    sw.lengths.n_prompt = c.n_prompt;
    sw.lengths.n_predict = c.n_predict;
    workload::continuous_runner runner(sw);
    workload::request_workload w;
    w.arrivals = workload::arrival_kind::closed;
    w.concurrency = c.workers;
    w.n_requests = c.workers;
    double best = 0;
    for (int rep = 0; rep < 2; ++rep) {
        const auto run = runner.run(w, {});
        if (run.interrupted) throw im::error(error_kind::interrupted, "interrupted");
        if (run.metrics.n_failed > 0) throw_runtime("{} of {} requests failed", run.metrics.n_failed, run.metrics.n_measured);
        best = std::max(best, run.metrics.decode_tps);
    }
    return best;
}

}  // namespace

evaluator inprocess_evaluator(const inprocess_config & c) {
    IM_CHECK(c.workload != workload_kind::serve, "tune: the serve workload has its own evaluator (tune/serve.h)");
    const int64_t t0 = clock::now_ns();
    auto baseline = std::make_shared<std::optional<greedy_trace>>();
    evaluator ev;
    ev.elapsed_s = [t0] { return static_cast<double>(clock::now_ns() - t0) / 1e9; };
    ev.measure = [c](const candidate & cand) {
        if (c.workload == workload_kind::continuous) return measure_continuous(c, cand);
        workload::lockstep_config lc;
        lc.model_path = c.model_path;
        lc.params = params_of(c, cand, &lc.kv_unified);
        lc.workers = {c.workers};
        lc.n_prompt = c.n_prompt;
        lc.n_predict = c.n_predict;
        lc.repetitions = c.repetitions;
        const auto r = workload::run_lockstep(lc, {});
        if (r.interrupted) throw im::error(error_kind::interrupted, "interrupted");
        if (r.rows.empty() || !r.rows[0].skipped.empty()) {
            throw_runtime("{}", r.rows.empty() ? std::string("no row") : r.rows[0].skipped);
        }
        // The best repetition: on a shared machine the others measure the neighbours too.
        const auto & g = r.rows[0].gen_tps_samples;
        return g.empty() ? r.rows[0].gen_tps.mean : *std::max_element(g.begin(), g.end());
    };
    ev.same_outputs = [c, baseline](const candidate & cand) {
        if (!*baseline) *baseline = greedy_run(c.model_path, c.base, c.kv_unified, 2, 160, c.verify_tokens);
        bool kvu = false;
        const auto p = params_of(c, cand, &kvu);
        return compare_greedy(**baseline, greedy_run(c.model_path, p, kvu, 2, 160, c.verify_tokens, &(*baseline)->tokens));
    };
    return ev;
}

}  // namespace im::tune
