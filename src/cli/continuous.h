#pragma once

#include "cli/engine_flags.h"
#include "cli/request_flags.h"
#include "store/store.h"

#include <CLI/CLI.hpp>

#include <string>

// `parallel --mode continuous`: continuous batching in-process with real sampling (DESIGN §2.3).
namespace im::cli {

struct continuous_flags {
    int slots = 0;                 // 0: the concurrency (closed loop) / --max-concurrency / 16
    int step_tokens = 0;           // 0: -b
    float temp = 0;
    int top_k = 0;
    float top_p = 1;
    float min_p = 0;
    bool honour_eos = false;
    bool no_sample = false;
    bool backend_sampling = false;
    request_flags requests;
};

void add_continuous_flags(CLI::App * cmd, continuous_flags & f);

struct continuous_command {
    std::string model;
    int n_prompt = 128, n_predict = 128;
    int64_t ctx_min = 0;
    bool kv_unified = false;
    bool no_warmup = false;
    std::string output = "md", export_path;
    store::store_flags db;
    engine_flags engine;
    continuous_flags flags;
    bool fast = false;  // predict every closed-loop level from probes (docs/fast-mode.md §8)
    int verify = 0;     // with fast: also measure this concurrency and compare
};

void run_continuous_command(const continuous_command & c);

}  // namespace im::cli
