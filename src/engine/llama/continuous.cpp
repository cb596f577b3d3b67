#include "engine/llama/continuous.h"

#include "core/clock.h"
#include "core/error.h"
#include "engine/backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace im::engine::llama {

std::string sampling_mode_name(sampling_mode m) {
    switch (m) {
        case sampling_mode::cpu: return "cpu";
        case sampling_mode::backend: return "backend";
        case sampling_mode::none: return "none";
    }
    return "?";
}

std::string sampling_params::describe() const {
    if (mode == sampling_mode::none) return "no sampling (tokens chosen without reading logits)";
    std::string what = temp <= 0 ? "greedy" : fmt::format("temp {:g}", temp);
    if (temp > 0 && top_k > 0) what += fmt::format(", top-k {}", top_k);
    if (temp > 0 && top_p < 1) what += fmt::format(", top-p {:g}", top_p);
    if (temp > 0 && min_p > 0) what += fmt::format(", min-p {:g}", min_p);
    return what + (mode == sampling_mode::cpu ? ", CPU sampling" : ", backend sampling");
}

llama_sampler * make_sampler_chain(const sampling_params & s) {
    llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    if (s.temp <= 0) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    if (s.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(s.top_k));
    if (s.top_p < 1) llama_sampler_chain_add(chain, llama_sampler_init_top_p(s.top_p, 1));
    if (s.min_p > 0) llama_sampler_chain_add(chain, llama_sampler_init_min_p(s.min_p, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(s.temp));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(s.seed));
    return chain;
}

continuous_engine::continuous_engine(const model & m, const engine_params & p, const continuous_config & c)
    : model_(m), params_(p), c_(c) {
    if (c_.n_slots < 1) throw_usage("continuous mode needs at least 1 slot (got {})", c_.n_slots);
    if (c_.step_tokens <= 0) c_.step_tokens = p.n_batch;
    if (c_.step_tokens < c_.n_slots) {
        throw_usage("--step-tokens {} is below the {} slots: every decoding sequence needs one token per step",
                    c_.step_tokens, c_.n_slots);
    }
    if (c_.step_tokens > p.n_batch) {
        throw_usage("--step-tokens {} exceeds -b {} (llama_decode takes at most n_batch tokens)", c_.step_tokens, p.n_batch);
    }
    n_vocab_ = llama_vocab_n_tokens(m.vocab());
    if (c_.sampling.mode != sampling_mode::none) {
        for (int i = 0; i < c_.n_slots; ++i) chains_.push_back(make_sampler_chain(c_.sampling));
    }
    if (c_.sampling.mode == sampling_mode::backend) {
        for (int i = 0; i < c_.n_slots; ++i) backend_cfg_.push_back({i, chains_[static_cast<size_t>(i)]});
    }
    const bool offloaded = p.n_gpu_layers != 0 && !gpu_info().empty();
    context_request req{static_cast<uint32_t>(c_.n_ctx), static_cast<uint32_t>(c_.n_slots), c_.kv_unified, !offloaded,
                        backend_cfg_.empty() ? nullptr : backend_cfg_.data(), backend_cfg_.size()};
    ctx_ = std::make_unique<context>(m, p, req);
    scheduler_config sc;
    sc.n_slots = c_.n_slots;
    sc.n_ctx_seq = c_.kv_unified ? static_cast<int64_t>(ctx_->alloc().n_ctx) / c_.n_slots : ctx_->alloc().n_ctx_seq;
    sc.step_tokens = c_.step_tokens;
    sched_ = std::make_unique<continuous_scheduler>(sc);
    batch_capacity_ = c_.step_tokens;
    batch_ = llama_batch_init(batch_capacity_, 0, 1);
    rng_.seed(c_.sampling.seed);
}

continuous_engine::~continuous_engine() {
    llama_batch_free(batch_);
    ctx_.reset();  // the context references the backend chains: free it first
    for (auto * s : chains_) llama_sampler_free(s);
}

int64_t continuous_engine::now_ns() const { return clock::now_ns(); }

void continuous_engine::submit(request r) {
    if (auto why = sched_->check(r)) {
        pending_.push_back(make_failure(r.id, now_ns(), failure::rejected, *why + " (raise --ctx-min or lower the lengths)"));
        return;
    }
    sched_->enqueue(std::move(r));
}

void continuous_engine::poll(int64_t deadline_ns, std::vector<event> & out) {
    if (!pending_.empty()) {
        out.insert(out.end(), pending_.begin(), pending_.end());
        pending_.clear();
        return;
    }
    const int64_t now = now_ns();
    if (sched_->active() > 0 || (sched_->next_intended() && *sched_->next_intended() <= now)) {
        run_step(out);
        return;
    }
    int64_t until = deadline_ns;
    if (auto t = sched_->next_intended()) until = std::min(until, *t);
    if (until > now) std::this_thread::sleep_for(std::chrono::nanoseconds(until - now));
}

void continuous_engine::run_step(std::vector<event> & out) {
    const int64_t t0 = now_ns();
    const step_plan p = sched_->plan(t0);
    if (p.items.empty()) return;
    for (uint64_t id : p.admitted) {
        out.push_back(make_event(id, event_kind::sent, t0));
        out.push_back(make_event(id, event_kind::admitted, t0));
    }
    llama_context * lctx = ctx_->get();
    // Reset the per-slot sampler state of newly admitted requests and drop any KV left in the slot.
    std::vector<int> out_index(p.items.size(), -1);
    int idx = 0;
    for (size_t k = 0; k < p.items.size(); ++k) {
        const step_item & it = p.items[k];
        if (it.prompt_offset == 0) {
            llama_memory_seq_rm(llama_get_memory(lctx), it.slot, -1, -1);
            if (!chains_.empty()) llama_sampler_reset(chains_[static_cast<size_t>(it.slot)]);
        }
        for (int j = 0; j < it.n; ++j, ++idx) {
            batch_.token[idx] = it.prompt_offset >= 0 ? sched_->prompt_tokens(it)[j] : it.token;
            batch_.pos[idx] = it.pos + j;
            batch_.n_seq_id[idx] = 1;
            batch_.seq_id[idx][0] = it.slot;
            batch_.logits[idx] = it.wants_output && j == it.n - 1;
        }
        if (it.wants_output) out_index[k] = idx - 1;
    }
    batch_.n_tokens = idx;
    const int rc = llama_decode(lctx, batch_);
    llama_synchronize(lctx);
    const int64_t t1 = now_ns();
    if (rc != 0) {
        const std::string why = last_llama_errors();
        // The whole step failed: every request in it fails with the engine's reason.
        for (const auto & [id, slot] : sched_->cancel_all()) {
            if (slot >= 0) llama_memory_seq_rm(llama_get_memory(lctx), slot, -1, -1);
            out.push_back(make_failure(id, t1, failure::engine_error,
                                       fmt::format("llama_decode returned {}{}", rc, why.empty() ? "" : ": " + why)));
        }
        return;
    }
    // Sample every sequence that produced logits.
    std::vector<int32_t> chosen(p.items.size(), -1);
    std::vector<bool> eog(p.items.size(), false);
    const llama_vocab * vocab = model_.vocab();
    for (size_t k = 0; k < p.items.size(); ++k) {
        if (out_index[k] < 0) continue;
        const int slot = p.items[k].slot;
        int32_t tok;
        switch (c_.sampling.mode) {
            case sampling_mode::none: tok = static_cast<int32_t>(rng_() % static_cast<uint32_t>(n_vocab_)); break;
            case sampling_mode::backend: {
                tok = llama_get_sampled_token_ith(lctx, out_index[k]);
                if (tok == LLAMA_TOKEN_NULL) tok = llama_sampler_sample(chains_[static_cast<size_t>(slot)], lctx, out_index[k]);
                else llama_sampler_accept(chains_[static_cast<size_t>(slot)], tok);
                break;
            }
            case sampling_mode::cpu:
            default: tok = llama_sampler_sample(chains_[static_cast<size_t>(slot)], lctx, out_index[k]); break;
        }
        chosen[k] = tok;
        eog[k] = llama_vocab_is_eog(vocab, tok);
    }
    const int64_t t2 = now_ns();
    for (const auto & o : sched_->complete(p, chosen, c_.sampling.honour_eos, eog)) {
        out.push_back(make_event(o.id, event_kind::tokens, t2, 1));
        if (o.finished) {
            llama_memory_seq_rm(llama_get_memory(lctx), o.slot, -1, -1);
            out.push_back(make_event(o.id, event_kind::finished, t2, o.n_output));
        }
    }
    step_stats s;
    s.t_start_ns = t0;
    s.t_decode_ns = t1 - t0;
    s.t_sample_ns = t2 - t1;
    s.n_tokens = p.n_tokens;
    s.n_decoding = p.n_decoding;
    s.n_prefilling = p.n_prefilling;
    s.kv_cells_used = sched_->kv_cells_used();
    steps_.push_back(s);
}

void continuous_engine::cancel_all() {
    for (const auto & [id, slot] : sched_->cancel_all()) {
        if (slot >= 0) llama_memory_seq_rm(llama_get_memory(ctx_->get()), slot, -1, -1);
        pending_.push_back(make_failure(id, now_ns(), failure::cancelled, "interrupted"));
    }
}

std::vector<step_stats> continuous_engine::take_steps() {
    std::vector<step_stats> s;
    s.swap(steps_);
    return s;
}

std::string continuous_engine::describe() const {
    return fmt::format("llama.cpp in-process continuous batching; slots: {} of {} cells; step budget: {} tokens; {}", c_.n_slots,
                       sched_->config().n_ctx_seq, c_.step_tokens, c_.sampling.describe());
}

void continuous_engine::warmup(int n_tokens) {
    // One prompt chunk per slot (as much as the step budget allows) and two decode steps of all slots:
    // the shapes of the measured steps, so the first measured step is not a cold one.
    llama_context * lctx = ctx_->get();
    const int per_slot = std::max(1, std::min(n_tokens, c_.step_tokens / c_.n_slots));
    int idx = 0;
    for (int s = 0; s < c_.n_slots; ++s) {
        for (int j = 0; j < per_slot; ++j, ++idx) {
            batch_.token[idx] = static_cast<int32_t>(rng_() % static_cast<uint32_t>(n_vocab_));
            batch_.pos[idx] = j;
            batch_.n_seq_id[idx] = 1;
            batch_.seq_id[idx][0] = s;
            batch_.logits[idx] = j == per_slot - 1;
        }
    }
    batch_.n_tokens = idx;
    if (llama_decode(lctx, batch_) != 0) throw_runtime("continuous warmup: llama_decode failed: {}", last_llama_errors());
    for (int step = 0; step < 2; ++step) {
        for (int s = 0; s < c_.n_slots; ++s) {
            batch_.token[s] = static_cast<int32_t>(rng_() % static_cast<uint32_t>(n_vocab_));
            batch_.pos[s] = per_slot + step;
            batch_.n_seq_id[s] = 1;
            batch_.seq_id[s][0] = s;
            batch_.logits[s] = 1;
        }
        batch_.n_tokens = c_.n_slots;
        if (llama_decode(lctx, batch_) != 0) throw_runtime("continuous warmup: llama_decode failed: {}", last_llama_errors());
        if (c_.sampling.mode == sampling_mode::cpu) {
            for (int s = 0; s < c_.n_slots; ++s) llama_sampler_sample(chains_[static_cast<size_t>(s)], lctx, s);
        }
    }
    llama_synchronize(lctx);
    ctx_->clear();
    for (auto * ch : chains_) llama_sampler_reset(ch);
}

}  // namespace im::engine::llama
