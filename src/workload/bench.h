#pragma once

#include "core/stats.h"
#include "engine/llama/session.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

// Single-request tests with llama-bench semantics (DESIGN §2.2): one sequence, fresh KV per
// repetition, random token ids, warmup first.
namespace im::workload {

struct bench_test {
    int n_prompt = 0;  // pp: tokens in n_batch chunks, one synchronize at the end
    int n_gen = 0;     // tg: one token per decode, synchronize each
    int n_depth = 0;   // tokens prefilled, untimed, before each repetition
    engine::llama::engine_params params;

    // "pp128", "tg128", "pp512+tg128", with " @ d4096" when n_depth > 0 (llama-bench's names).
    std::string name() const;
};

struct bench_result {
    bench_test test;
    std::vector<int64_t> samples_ns;
    std::vector<double> samples_ts;  // (n_prompt + n_gen) / t per repetition
    stats::summary ts;               // over samples_ts
    double avg_ns = 0;
    double stddev_ns = 0;
    uint32_t n_ctx_allocated = 0;
    int n_threads = 0;
    std::string test_time;
    bool partial = false;            // interrupted: fewer repetitions than asked (at least one)
};

// Tests for every engine configuration × depth × (pp list, tg list, pg pairs), ordered so that
// configurations sharing a model load are adjacent (`params` is already in that order).
std::vector<bench_test> expand_tests(const std::vector<engine::llama::engine_params> & params,
                                     const std::vector<int> & n_prompt, const std::vector<int> & n_gen,
                                     const std::vector<std::pair<int, int>> & pg, const std::vector<int> & n_depth);

struct bench_callbacks {
    // Before each repetition (rep -1: warmup).
    std::function<void(size_t test_index, size_t n_tests, const bench_test & t, int rep)> progress;
    // After each test, with the model it ran on (results are streamed, so a late failure loses nothing).
    std::function<void(const bench_result & r, const engine::llama::model & m)> result;
};

// Runs the tests; reloads the model only when model-level settings change. Stops early (returns
// false) when SIGINT was received, after passing the interrupted test's finished repetitions (if any)
// to cb.result marked partial; throws im::error on load or decode failures.
bool run_bench(const std::filesystem::path & model_path, const std::vector<bench_test> & tests, int repetitions,
               bool warmup, const bench_callbacks & cb);

// The two timed loops, exposed for the parity benchmark and tests. Return false on decode failure.
bool decode_prompt(llama_context * ctx, int n_prompt, int n_batch);
bool decode_gen(llama_context * ctx, int n_gen);

}  // namespace im::workload
