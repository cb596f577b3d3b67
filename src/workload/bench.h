#pragma once

#include "core/stats.h"
#include "engine/llama/session.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
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
    int n_warmup = 0;                // warmup runs done before the first timed repetition
    bool warmup_converged = false;   // the last two warmup runs agreed (false: bound hit, or no warmup)
    double ci95_rel = 0;             // 95% interval half-width of the mean / median; 0 when n < 2
    bool precision_met = false;      // ci95_rel <= the policy's target (bench_policy::precision)
};

// How many warmup runs and timed repetitions a test gets (DESIGN §2.2, docs/metrics.md).
struct bench_policy {
    bool warmup = true;
    int max_warmup = 10;           // warmup runs at most; stopping there is recorded (warmup_converged false)
    double warmup_agreement = 0.02;  // two consecutive warmup rates within 2% of each other
    int min_reps = 5;              // -r: always at least this many repetitions
    int max_reps = 5;              // --max-reps: never more (>= min_reps)
    double min_time_s = 0;         // --min-time: timed seconds at least, before stopping for precision
    double precision = 0.01;       // 95% interval of the mean within ±1% of the median
    // True when repetitions beyond min_reps may run (--min-time or --max-reps given).
    bool adaptive() const { return max_reps > min_reps; }
};

// The stopping rules, pure, for tests. warmup_done: after warmup runs with these rates (t/s), is
// the machine warm (the last two within warmup_agreement of the larger)? Never true for < 2 runs.
bool warmup_done(const bench_policy & p, std::span<const double> warmup_ts);
// The 95% Student-t half-width of the mean over samples, relative to their median; 0 for n < 2.
double ci95_relative(std::span<const double> samples_ts);
// After these repetitions (rates, and their summed time in seconds): stop? True at max_reps; false
// below min_reps; otherwise true once elapsed_s >= min_time_s and the interval meets the precision
// (for a fixed count, max_reps == min_reps, it stops at min_reps whatever the precision).
bool repetitions_done(const bench_policy & p, std::span<const double> samples_ts, double elapsed_s);

// The two loops run_bench drives, with the work passed in (tests give synthetic sequences). Both check
// for a stop request (SIGINT, core/interrupt.h) before each run.
struct warmup_outcome {
    int n = 0;                 // runs done
    bool converged = false;    // warmup_done on the runs; false when max_warmup was reached first
    bool interrupted = false;
};
// Calls one_run() (a warmup run's t/s) until warmup_done or max_warmup runs; nothing when !p.warmup.
warmup_outcome warm_up(const bench_policy & p, const std::function<double()> & one_run);
struct timed_run {
    int64_t ns = 0;   // > 0
    double ts = 0;    // tokens / second
};
// Calls one_run() and appends to the samples until repetitions_done; false when interrupted first
// (the samples taken so far stay).
bool repeat(const bench_policy & p, const std::function<timed_run()> & one_run, std::vector<int64_t> & samples_ns,
            std::vector<double> & samples_ts);

// Tests for every engine configuration × depth × (pp list, tg list, pg pairs), ordered so that
// configurations sharing a model load are adjacent (`params` is already in that order).
std::vector<bench_test> expand_tests(const std::vector<engine::llama::engine_params> & params,
                                     const std::vector<int> & n_prompt, const std::vector<int> & n_gen,
                                     const std::vector<std::pair<int, int>> & pg, const std::vector<int> & n_depth);

struct bench_callbacks {
    // Before each repetition (rep < 0: warmup run -rep, counting from 1).
    std::function<void(size_t test_index, size_t n_tests, const bench_test & t, int rep)> progress;
    // After each test, with the model it ran on (results are streamed, so a late failure loses nothing).
    std::function<void(const bench_result & r, const engine::llama::model & m)> result;
};

// Runs the tests; reloads the model only when model-level settings change. Stops early (returns
// false) when SIGINT was received, during warmup or repetitions, after passing the interrupted
// test's finished repetitions (if any) to cb.result marked partial; throws im::error on load or
// decode failures.
bool run_bench(const std::filesystem::path & model_path, const std::vector<bench_test> & tests,
               const bench_policy & policy, const bench_callbacks & cb);

// Tokens a warmup run generates for a test with n_gen > 0: the whole n_gen up to this cap, so that
// two warmup runs of a long tg test cost seconds, not minutes (docs/metrics.md).
inline constexpr int warmup_gen_cap = 32;

// The two timed loops, exposed for the parity benchmark and tests. Return false on decode failure.
bool decode_prompt(llama_context * ctx, int n_prompt, int n_batch);
bool decode_gen(llama_context * ctx, int n_gen);

}  // namespace im::workload
