#pragma once

#include "engine/request.h"
#include "engine/scheduler.h"

#include <cstdint>
#include <string>
#include <vector>

// A deterministic engine for tests of everything above the engine interface (DESIGN: a fake only where
// determinism is the point). It runs the real continuous scheduler on a virtual clock whose step
// time is scripted: base + per decoding sequence + per prompt token, plus injected stalls.
namespace im::engine {

struct fake_config {
    scheduler_config slots;
    int64_t step_base_ns = 10'000'000;      // fixed cost of every step
    int64_t per_decode_ns = 1'000'000;      // per decoding sequence in the step
    int64_t per_prompt_token_ns = 10'000;   // per prompt token in the step
    int64_t sample_ns = 0;                  // per sampled sequence (reported as sampling time)
    // Stalls: the first step starting at or after `at_ns` (virtual clock, from 0) takes `extra_ns` more.
    struct stall {
        int64_t at_ns = 0;
        int64_t extra_ns = 0;
    };
    std::vector<stall> stalls;
};

class fake_engine : public request_engine {
  public:
    explicit fake_engine(fake_config c);
    int64_t now_ns() const override { return now_; }
    void submit(request r) override;
    void poll(int64_t deadline_ns, std::vector<event> & out) override;
    size_t in_flight() const override { return sched_.in_flight() + rejected_.size(); }
    void cancel_all() override;
    std::vector<step_stats> take_steps() override;
    std::string describe() const override;

    // Most KV cells ever in use at once (the invariant tests compare it with slots × n_ctx_seq).
    int64_t max_kv_cells_used() const { return max_kv_; }

  private:
    fake_config c_;
    continuous_scheduler sched_;
    int64_t now_ = 0;
    std::vector<event> rejected_;  // reported at the next poll
    std::vector<step_stats> steps_;
    std::vector<bool> stall_used_;
    int64_t max_kv_ = 0;
};

}  // namespace im::engine
