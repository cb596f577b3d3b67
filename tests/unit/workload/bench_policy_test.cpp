// The stopping rules of `bench` (DESIGN §2.2, docs/metrics.md "Warmup and repetitions") on synthetic
// sample sequences: the real loops (warm_up, repeat) driven by scripted rates instead of llama.cpp.
#include "core/interrupt.h"
#include "support/run.h"
#include "workload/bench.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <vector>

using namespace im::workload;
namespace engine = im::engine;

namespace {

// Hands out the scripted values in order, then repeats the last one.
struct script {
    std::vector<double> values;
    size_t next = 0;
    double operator()() { return values[std::min(next++, values.size() - 1)]; }
};

// A timed run of `tokens` at the given rate.
timed_run at_rate(double ts, int tokens = 128) {
    return {static_cast<int64_t>(1e9 * tokens / ts), ts};
}

bench_policy adaptive(int min_reps, int max_reps, double min_time_s = 0) {
    bench_policy p;
    p.min_reps = min_reps;
    p.max_reps = max_reps;
    p.min_time_s = min_time_s;
    return p;
}

// Deterministic noise in [-1, 1) (a 64-bit LCG): the same sequence on every machine.
struct noise {
    uint64_t state = 42;
    double operator()() {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<double>(state >> 11) / static_cast<double>(1ull << 52) - 1.0;
    }
};

}  // namespace

TEST(bench_warmup, a_cold_first_run_then_warm_ones_stops_once_two_agree) {
    // The H200's pp128: 5.5k and 7.1k t/s cold, ~12.9k warm (issue 9).
    script s{{5500, 7100, 12800, 12900, 12950}};
    const auto o = warm_up(bench_policy{}, std::ref(s));
    EXPECT_EQ(o.n, 4);  // 12,800 and 12,900 agree within 2%
    EXPECT_TRUE(o.converged);
    EXPECT_FALSE(o.interrupted);
}

TEST(bench_warmup, agreement_is_within_two_percent_of_the_larger) {
    const bench_policy p;
    const std::vector<double> close = {1000, 1019.9};  // 1.95% of 1019.9
    const std::vector<double> apart = {1000, 1021};    // 2.06%
    EXPECT_TRUE(warmup_done(p, close));
    EXPECT_FALSE(warmup_done(p, apart));
    EXPECT_FALSE(warmup_done(p, std::vector<double>{1000}));  // one run never settles anything
    EXPECT_FALSE(warmup_done(p, std::vector<double>{}));
}

TEST(bench_warmup, never_agreeing_runs_stop_at_the_bound_and_say_so) {
    script s{{100, 110, 100, 110, 100, 110, 100, 110, 100, 110, 100, 110, 100}};
    const auto o = warm_up(bench_policy{}, std::ref(s));
    EXPECT_EQ(o.n, bench_policy{}.max_warmup);
    EXPECT_EQ(o.n, 10);
    EXPECT_FALSE(o.converged);
}

TEST(bench_warmup, no_warmup_runs_nothing) {
    bench_policy p;
    p.warmup = false;
    int calls = 0;
    const auto o = warm_up(p, [&] {
        ++calls;
        return 1.0;
    });
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(o.n, 0);
    EXPECT_FALSE(o.converged);
}

TEST(bench_warmup, a_stop_request_during_warmup_ends_it_before_the_next_run) {
    im::interrupt::install();
    im::interrupt::reset();
    int calls = 0;
    const auto o = warm_up(bench_policy{}, [&] {
        if (++calls == 2) std::raise(SIGINT);  // arrives during the second warmup run
        return 100.0 * calls;                  // never agrees: only the signal stops it
    });
    im::interrupt::reset();
    EXPECT_TRUE(o.interrupted);
    EXPECT_EQ(o.n, 2);
    EXPECT_EQ(calls, 2);
    EXPECT_FALSE(o.converged);
}

TEST(bench_repetitions, ci95_relative_known_answer) {
    // The golden bench row: mean 1,187.01, s = 2.015, t(0.975, 2) = 4.303 -> ±5.006 / median 1,187.
    const std::vector<double> v = {1185.0, 1187.0, 1189.03};
    EXPECT_NEAR(ci95_relative(v), 5.0060 / 1187.0, 1e-6);
    EXPECT_EQ(ci95_relative(std::vector<double>{1187.0}), 0.0);
}

TEST(bench_repetitions, a_fixed_count_is_exactly_r_whatever_the_noise) {
    bench_policy p;  // -r 5, no --min-time / --max-reps
    EXPECT_FALSE(p.adaptive());
    script s{{100, 200, 50, 400, 90, 300}};
    std::vector<int64_t> ns;
    std::vector<double> ts;
    EXPECT_TRUE(repeat(p, [&] { return at_rate(s()); }, ns, ts));
    EXPECT_EQ(ts.size(), 5u);
    EXPECT_EQ(ns.size(), 5u);
}

TEST(bench_repetitions, steady_samples_stop_at_the_minimum) {
    const auto p = adaptive(3, 100);
    script s{{1000.0, 1001.0, 999.0, 1000.5}};
    std::vector<int64_t> ns;
    std::vector<double> ts;
    ASSERT_TRUE(repeat(p, [&] { return at_rate(s()); }, ns, ts));
    EXPECT_EQ(ts.size(), 3u);  // ±0.25% after three: -r is the minimum, and enough
    EXPECT_LE(ci95_relative(ts), p.precision);
}

TEST(bench_repetitions, a_cold_first_sample_keeps_repeating_until_the_interval_is_tight) {
    // Without enough warmup: the first timed pp128 at 5.5k, then 12.9k ± 0.1%.
    const auto p = adaptive(5, 200);
    noise rnd;
    bool first = true;
    std::vector<int64_t> ns;
    std::vector<double> ts;
    ASSERT_TRUE(repeat(p, [&] {
        const double r = first ? 5500.0 : 12900.0 * (1 + 0.001 * rnd());
        first = false;
        return at_rate(r);
    }, ns, ts));
    EXPECT_GT(ts.size(), 5u);     // five samples with the cold one are ±~30%: not enough
    EXPECT_LT(ts.size(), 200u);   // one cold sample among many warm ones: the interval closes
    EXPECT_LE(ci95_relative(ts), 0.01);
}

TEST(bench_repetitions, noisy_samples_repeat_until_the_target_then_stop) {
    // ±5% uniform noise: s ≈ 2.9% of the mean, so t·s/√n ≤ 1% needs n ≈ 35.
    const auto p = adaptive(5, 1000);
    noise rnd;
    std::vector<int64_t> ns;
    std::vector<double> ts;
    ASSERT_TRUE(repeat(p, [&] { return at_rate(1000.0 * (1 + 0.05 * rnd())); }, ns, ts));
    EXPECT_GE(ts.size(), 20u);
    EXPECT_LE(ts.size(), 60u);
    EXPECT_LE(ci95_relative(ts), 0.01);
    ts.pop_back();
    EXPECT_GT(ci95_relative(ts), 0.01);  // it stopped at the first repetition that met the target
}

TEST(bench_repetitions, never_converging_stops_at_max_reps) {
    const auto p = adaptive(5, 50);
    bool hi = false;
    std::vector<int64_t> ns;
    std::vector<double> ts;
    ASSERT_TRUE(repeat(p, [&] { return at_rate((hi = !hi) ? 1500.0 : 500.0); }, ns, ts));
    EXPECT_EQ(ts.size(), 50u);
    EXPECT_GT(ci95_relative(ts), 0.01);
}

TEST(bench_repetitions, min_time_holds_even_when_precise) {
    const auto p = adaptive(2, 1000, 2.0);
    std::vector<int64_t> ns;
    std::vector<double> ts;
    // 128 tokens at 1,280 t/s: 0.1 s each, identical: precise after 2, but 2 s need 20.
    ASSERT_TRUE(repeat(p, [&] { return at_rate(1280.0); }, ns, ts));
    EXPECT_EQ(ts.size(), 20u);
}

TEST(bench_repetitions, a_stop_request_keeps_the_samples_taken) {
    im::interrupt::install();
    im::interrupt::reset();
    const auto p = adaptive(5, 100);
    int calls = 0;
    std::vector<int64_t> ns;
    std::vector<double> ts;
    const bool complete = repeat(p, [&] {
        if (++calls == 3) std::raise(SIGINT);
        return at_rate(1000.0);
    }, ns, ts);
    im::interrupt::reset();
    EXPECT_FALSE(complete);
    EXPECT_EQ(ts.size(), 3u);
}

// run_bench on the real tiny model: SIGINT during the first warmup run ends the run before any timed
// repetition, with no row for the test (the outputs, written by the caller, say interrupted).
TEST(bench_warmup, run_bench_interrupted_in_warmup_returns_promptly_with_nothing_timed) {
    const auto model = im::test::tiny_model();
    engine::llama::engine_params params;
    params.n_threads = 1;
    const auto tests = expand_tests({params}, {32}, {8}, {}, {0});
    im::interrupt::install();
    im::interrupt::reset();
    int warmups = 0, timed = 0, results = 0;
    bench_callbacks cb;
    cb.progress = [&](size_t, size_t, const bench_test &, int rep) {
        if (rep < 0 && ++warmups == 1) std::raise(SIGINT);
        if (rep >= 0) ++timed;
    };
    cb.result = [&](const bench_result &, const engine::llama::model &) { ++results; };
    const bool complete = run_bench(model, tests, bench_policy{}, cb);
    im::interrupt::reset();
    EXPECT_FALSE(complete);
    EXPECT_EQ(warmups, 1);  // the run in progress finishes; no second warmup run starts
    EXPECT_EQ(timed, 0);
    EXPECT_EQ(results, 0);
}
