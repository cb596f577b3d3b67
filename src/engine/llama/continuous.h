#pragma once

#include "engine/llama/session.h"
#include "engine/request.h"
#include "engine/scheduler.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

// Continuous batching in-process (DESIGN §2.3 `continuous`): one llama.cpp context with W sequence
// slots; each step packs one token per decoding sequence plus prompt chunks of newly admitted
// requests (engine/scheduler.h), calls llama_decode once, samples every sequence that produced
// logits through llama.cpp's sampler chain, frees finished sequences' KV and admits waiting ones.
namespace im::engine::llama {

enum class sampling_mode {
    cpu,      // llama_sampler_sample on the host, per sequence (what llama-server does by default)
    backend,  // llama.cpp's backend sampling: the sampler chain runs inside the graph
    none,     // --no-sample: the next token is chosen without reading the logits (lockstep's way)
};
std::string sampling_mode_name(sampling_mode m);

struct sampling_params {
    sampling_mode mode = sampling_mode::cpu;
    float temp = 0;        // 0: greedy
    int top_k = 0;         // 0: off
    float top_p = 1;       // 1: off
    float min_p = 0;       // 0: off
    uint32_t seed = 1;
    bool honour_eos = false;  // ignore-EOS by default so lengths are honoured
    std::string describe() const;  // "greedy, CPU sampling"
};

// The sampler chain of `s` (greedy, or top-k / top-p / min-p, temperature, dist); the caller frees it
// with llama_sampler_free. The continuous engine makes one per slot; --fast probes its cost.
llama_sampler * make_sampler_chain(const sampling_params & s);

struct continuous_config {
    int n_slots = 1;
    int64_t n_ctx = 0;         // total cells (all slots)
    bool kv_unified = false;
    int step_tokens = 0;       // 0: n_batch
    sampling_params sampling;
};

class continuous_engine : public request_engine {
  public:
    // Creates the context on `m` (which must outlive the engine).
    continuous_engine(const model & m, const engine_params & p, const continuous_config & c);
    ~continuous_engine() override;

    int64_t now_ns() const override;
    void submit(request r) override;
    void poll(int64_t deadline_ns, std::vector<event> & out) override;
    size_t in_flight() const override { return sched_->in_flight() + pending_.size(); }
    void cancel_all() override;
    std::vector<step_stats> take_steps() override;
    std::string describe() const override;

    const allocation & alloc() const { return ctx_->alloc(); }
    int n_threads() const { return ctx_->n_threads(); }
    int64_t n_ctx_seq() const { return sched_->config().n_ctx_seq; }
    // Runs one prefill of `n_tokens` and a few decode steps on every slot, then clears the KV cache
    // (so the first measured step is not a cold one).
    void warmup(int n_tokens);

  private:
    void run_step(std::vector<event> & out);

    const model & model_;
    engine_params params_;
    continuous_config c_;
    std::vector<llama_sampler *> chains_;   // one per slot
    std::vector<llama_sampler_seq_config> backend_cfg_;
    std::unique_ptr<context> ctx_;
    std::unique_ptr<continuous_scheduler> sched_;
    llama_batch batch_{};
    int batch_capacity_ = 0;
    std::vector<event> pending_;             // rejections and cancellations, reported at the next poll
    std::vector<step_stats> steps_;
    std::mt19937 rng_{1234};
    int32_t n_vocab_ = 0;
};

}  // namespace im::engine::llama
