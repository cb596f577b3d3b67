#pragma once

#include "engine/llama/continuous.h"
#include "engine/llama/session.h"
#include "workload/request_source.h"
#include "workload/requests.h"

#include <filesystem>
#include <functional>
#include <vector>

// `parallel --mode continuous` and evaluate's serving stage: one load level after another on the in-process continuous engine
// (engine/llama/continuous.h), each on a fresh context sized for its slots (DESIGN §2.3).
namespace im::workload {

struct continuous_sweep {
    std::filesystem::path model_path;
    engine::llama::engine_params params;
    int n_slots = 0;               // 0: the level's concurrency (closed loop) or --max-concurrency, else 16
    int64_t ctx_min = 0;
    bool kv_unified = false;
    int step_tokens = 0;           // 0: n_batch
    engine::llama::sampling_params sampling;
    length_source lengths;
    bool warmup = true;
    uint64_t seed = 1;
};

// Slots a level runs with.
int slots_for(const continuous_sweep & s, const request_workload & w);

struct continuous_callbacks {
    std::function<void(const request_workload &, const request_progress &)> progress;
    std::function<void(const std::string &)> info;
};

// Loads the model once and runs load levels on it, each on a fresh context.
class continuous_runner {
  public:
    explicit continuous_runner(const continuous_sweep & s);
    // One level; throws usage/runtime errors when its slots exceed llama.cpp's limit or memory.
    request_run run(const request_workload & w, const continuous_callbacks & cb);
    const engine::llama::model & model() const { return model_; }
    const request_source & source() const { return source_; }

  private:
    const continuous_sweep & s_;
    engine::llama::model model_;
    request_source source_;
    int64_t per_request_ = 0;
    uint64_t kvpt_ = 0;
};

}  // namespace im::workload
