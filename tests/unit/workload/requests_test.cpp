#include "core/error.h"
#include "engine/fake.h"
#include "engine/scheduler.h"
#include "workload/capacity.h"
#include "workload/requests.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

using namespace im;
using namespace im::workload;

namespace {

constexpr int64_t ms = 1'000'000;

engine::fake_config fake(int slots, int64_t base_ms = 10, int64_t per_decode_ms = 1) {
    engine::fake_config c;
    c.slots.n_slots = slots;
    c.slots.n_ctx_seq = 4096;
    c.slots.step_tokens = 512;
    c.step_base_ns = base_ms * ms;
    c.per_decode_ns = per_decode_ms * ms;
    c.per_prompt_token_ns = 0;
    return c;
}

request_factory fixed(int n_prompt, int n_predict) {
    return [=](uint64_t) {
        engine::request r;
        r.prompt_tokens.assign(static_cast<size_t>(n_prompt), 1);
        r.n_prompt = n_prompt;
        r.n_predict = n_predict;
        return r;
    };
}

request_workload closed(int c, int n) {
    request_workload w;
    w.arrivals = arrival_kind::closed;
    w.concurrency = c;
    w.n_requests = n;
    return w;
}

}  // namespace

// Known answers on the deterministic clock: 1 slot, step = 10 ms + 1 ms per decoding sequence.
// The prompt (one chunk) is the first step: 10 ms, first token at 10 ms. Each later token is a step
// of 11 ms. For n_predict = 5: E2E = 10 + 4·11 = 54 ms, TTFT 10 ms, TPOT (54 − 10)/4 = 11 ms.
TEST(requests, latency_definitions_known_answers) {
    engine::fake_engine eng(fake(1));
    const auto run = run_requests(eng, closed(1, 3), fixed(16, 5));
    ASSERT_EQ(run.records.size(), 3u);
    for (const auto & r : run.records) {
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r.n_output, 5);
        EXPECT_DOUBLE_EQ(r.ttft_ms(), 10.0);
        EXPECT_DOUBLE_EQ(r.e2e_ms(), 54.0);
        EXPECT_DOUBLE_EQ(r.tpot_ms(), 11.0);
        ASSERT_EQ(r.chunk_ns.size(), 5u);
        EXPECT_EQ(r.chunk_ns[1] - r.chunk_ns[0], 11 * ms);
    }
    // Closed loop: the second request is intended when the first ends.
    EXPECT_EQ(run.records[1].t_intended_ns, run.records[0].t_end_ns);
    EXPECT_DOUBLE_EQ(run.metrics.itl.p99, 11.0);
    EXPECT_DOUBLE_EQ(run.metrics.tpot.mean, 11.0);
    EXPECT_EQ(run.metrics.n_ok, 3u);
}

// A stalled engine must inflate the TTFT of the requests queued behind it (coordinated omission
// corrected): open loop at 20 req/s (one every 50 ms), one slot, a 1 s stall at t = 100 ms. The
// requests intended during the stall are measured from their intended time, not from when the
// engine got to them.
TEST(requests, coordinated_omission_stall_inflates_queued_ttft) {
    auto c = fake(1);
    c.stalls.push_back({100 * ms, 1000 * ms});
    engine::fake_engine eng(c);
    request_workload w;
    w.arrivals = arrival_kind::constant;
    w.rate = 20;
    w.n_requests = 30;
    const auto run = run_requests(eng, w, fixed(8, 2));
    ASSERT_EQ(run.metrics.n_ok, 30u);
    // Without the correction every TTFT would be ~10 ms (admission to first token).
    double worst = 0;
    for (const auto & r : run.records) worst = std::max(worst, r.ttft_ms());
    EXPECT_GT(worst, 900.0);
    EXPECT_GT(run.metrics.ttft.p99, 900.0);
    // The sender's view hides the stall: it starts at admission.
    EXPECT_LT(run.metrics.ttft_sent.p99, 1100.0);
    EXPECT_GT(run.metrics.ttft.p99, run.metrics.ttft_sent.p50 * 10);
    // Queue time is the difference.
    EXPECT_GT(run.metrics.queue.max, 800.0);
}

TEST(requests, open_loop_schedule_has_no_drift_and_the_right_rate) {
    const auto s = open_loop_schedule(arrival_kind::constant, 4.0, 1, 1001, 0, 1);
    EXPECT_EQ(s.back(), 250 * ms * 1000);
    const auto p = open_loop_schedule(arrival_kind::poisson, 10.0, 1, 20001, 0, 7);
    const double mean_gap_s = static_cast<double>(p.back() - p.front()) / 1e9 / 20000;
    EXPECT_NEAR(mean_gap_s, 0.1, 0.004);
    const auto g = open_loop_schedule(arrival_kind::gamma, 10.0, 0.5, 20001, 0, 7);
    EXPECT_NEAR(static_cast<double>(g.back() - g.front()) / 1e9 / 20000, 0.1, 0.006);
    // Burstier: the gaps' coefficient of variation is sqrt(1/shape) = 1.41.
    double sum = 0, sq = 0;
    for (size_t i = 1; i < g.size(); ++i) {
        const double d = static_cast<double>(g[i] - g[i - 1]) / 1e9;
        sum += d;
        sq += d * d;
    }
    const double n = static_cast<double>(g.size() - 1), mean = sum / n;
    EXPECT_NEAR(std::sqrt(sq / n - mean * mean) / mean, std::sqrt(2.0), 0.1);
}

// Little's law, L = λW, on a long closed-loop run with mixed lengths.
TEST(requests, littles_law_holds_within_five_percent) {
    engine::fake_engine eng(fake(4));
    int k = 0;
    const auto make = [&](uint64_t i) {
        engine::request r;
        const int n = 8 + static_cast<int>((i * 37) % 50);
        r.prompt_tokens.assign(static_cast<size_t>(20 + (i * 13) % 100), 1);
        r.n_prompt = static_cast<int>(r.prompt_tokens.size());
        r.n_predict = n;
        ++k;
        return r;
    };
    auto w = closed(4, 400);
    w.warmup_requests = 8;
    const auto run = run_requests(eng, w, make);
    EXPECT_EQ(run.metrics.n_ok, 392u);
    EXPECT_FALSE(run.metrics.window_is_whole_run);
    EXPECT_LT(run.metrics.littles_law_error, 0.05) << run.metrics.mean_concurrency;
    EXPECT_NEAR(run.metrics.mean_concurrency, 4.0, 0.2);
    // Open loop too.
    engine::fake_engine eng2(fake(8));
    request_workload o;
    o.arrivals = arrival_kind::poisson;
    o.rate = 10;  // below what 8 slots serve (~16 req/s): a steady state exists
    o.n_requests = 600;
    const auto run2 = run_requests(eng2, o, make);
    EXPECT_LT(run2.metrics.littles_law_error, 0.05);
}

// A closed loop's Little's law measures the steady window against the requests' lifetimes: with the
// reference's lengths (outputs lognormal, median 500, p90 1280, capped at 512 as evaluate's standard
// profile does) 3 requests per user leave it well off, 12 per user (evaluate's standard) within 5%.
TEST(requests, littles_law_needs_requests_per_user) {
    const auto run_with = [](int c, int per_user, uint64_t seed) {
        engine::fake_config fc;
        fc.slots.n_slots = c;
        fc.slots.n_ctx_seq = 4096;
        fc.slots.step_tokens = 512;
        fc.step_base_ns = 2 * ms;
        fc.per_decode_ns = ms / 10;
        fc.per_prompt_token_ns = 5'000;
        engine::fake_engine eng(fc);
        // A portable generator (std's distributions differ between standard libraries): splitmix64 and Box–Muller.
        uint64_t x = seed * 1000 + static_cast<uint64_t>(c);
        const auto uniform = [&] {
            uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            return (static_cast<double>((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
        };
        std::vector<std::pair<int, int>> lens;
        for (int i = 0; i < 400; ++i) {
            const double g = std::sqrt(-2 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
            const int out = std::clamp(static_cast<int>(500 * std::exp(0.734 * g)), 4, 512);
            lens.push_back({20 + static_cast<int>(uniform() * 100), out});
        }
        const auto make = [lens](uint64_t i) {
            engine::request r;
            const auto [p, n] = lens[i % lens.size()];
            r.prompt_tokens.assign(static_cast<size_t>(p), 1);
            r.n_prompt = p;
            r.n_predict = n;
            return r;
        };
        return run_requests(eng, closed(c, per_user * c), make).metrics;
    };
    double worst_long = 0, best_short = 1;
    for (int c : {2, 16}) {
        for (uint64_t seed = 0; seed < 4; ++seed) {
            const auto long_run = run_with(c, 12, seed);
            ASSERT_FALSE(long_run.window_is_whole_run);
            worst_long = std::max(worst_long, long_run.littles_law_error);
            const auto short_run = run_with(16, 3, seed);
            ASSERT_FALSE(short_run.window_is_whole_run);
            best_short = std::min(best_short, short_run.littles_law_error);
        }
    }
    EXPECT_LT(worst_long, 0.05);
    EXPECT_GT(best_short, 0.05);
    // Everything started together and ended together: no steady window, and nothing to check.
    const auto together = run_with(8, 1, 0);
    EXPECT_TRUE(together.window_is_whole_run);
    EXPECT_TRUE(std::isnan(together.littles_law_error));
}

// Invariants over 10,000 requests: every request completes with its exact token count, no KV leak
// (cells in use return to zero), KV never exceeds the allocation, nothing admitted is starved.
TEST(requests, ten_thousand_requests_invariants) {
    auto c = fake(8, 1, 0);
    c.slots.n_ctx_seq = 256;
    c.slots.step_tokens = 64;
    engine::fake_engine eng(c);
    const auto make = [](uint64_t i) {
        engine::request r;
        r.prompt_tokens.assign(static_cast<size_t>(1 + (i * 7919) % 150), 1);
        r.n_prompt = static_cast<int>(r.prompt_tokens.size());
        r.n_predict = 1 + static_cast<int>((i * 104729) % 100);
        return r;
    };
    request_workload w;
    w.arrivals = arrival_kind::poisson;
    w.rate = 400;
    w.n_requests = 10000;
    const auto run = run_requests(eng, w, make);
    ASSERT_EQ(run.records.size(), 10000u);
    for (const auto & r : run.records) {
        ASSERT_TRUE(r.ok()) << r.id << " " << r.message;
        ASSERT_EQ(r.n_output, r.n_predict) << r.id;
        ASSERT_GE(r.t_admitted_ns, r.t_intended_ns);
    }
    EXPECT_LE(eng.max_kv_cells_used(), 8 * 256);
    ASSERT_FALSE(run.steps.empty());
    EXPECT_EQ(run.steps.back().kv_cells_used, 0);  // everything freed at the end
    // Never starved: once a request decodes, every step until it ends carries one of its tokens:
    // its token events are exactly one step apart.
    for (const auto & s : run.steps) EXPECT_LE(s.n_tokens, std::max(64, s.n_decoding));
}

TEST(requests, a_request_longer_than_a_slot_is_rejected_not_truncated) {
    auto c = fake(2);
    c.slots.n_ctx_seq = 100;
    engine::fake_engine eng(c);
    const auto make = [](uint64_t i) {
        engine::request r;
        r.prompt_tokens.assign(i == 1 ? 90 : 10, 1);
        r.n_prompt = static_cast<int>(r.prompt_tokens.size());
        r.n_predict = 20;
        return r;
    };
    const auto run = run_requests(eng, closed(2, 4), make);
    EXPECT_EQ(run.metrics.n_failed, 1u);
    ASSERT_EQ(run.metrics.failures.size(), 1u);
    EXPECT_EQ(run.metrics.failures[0].first, "rejected");
    EXPECT_NE(run.records[1].message.find("needs 110 KV cells"), std::string::npos) << run.records[1].message;
    EXPECT_EQ(run.metrics.n_ok, 3u);
}

TEST(requests, chunked_prefill_keeps_decoders_going) {
    engine::scheduler_config sc;
    sc.n_slots = 2;
    sc.n_ctx_seq = 10000;
    sc.step_tokens = 100;
    engine::continuous_scheduler s(sc);
    engine::request a;
    a.id = 1;
    a.prompt_tokens.assign(10, 1);
    a.n_predict = 50;
    s.enqueue(a);
    auto p = s.plan(0);
    ASSERT_EQ(p.items.size(), 1u);
    s.complete(p, {5}, false, {});
    engine::request b;
    b.id = 2;
    b.prompt_tokens.assign(450, 1);
    b.n_predict = 5;
    s.enqueue(b);
    // b's 450-token prompt is split into chunks of 99 while a decodes one token per step.
    int steps = 0;
    for (;; ++steps) {
        p = s.plan(0);
        ASSERT_LE(p.n_tokens, 100);
        if (p.n_prefilling > 0) ASSERT_EQ(p.n_decoding, 1);
        std::vector<int32_t> chosen(p.items.size(), 3);
        s.complete(p, chosen, false, {});
        if (p.n_prefilling == 0) break;
    }
    EXPECT_EQ(steps, 5);  // ceil(450 / 99)
}

TEST(requests, slo_parsing_and_validation) {
    const auto s = parse_slo("ttft=1s,tpot=50ms");
    EXPECT_DOUBLE_EQ(s.ttft_ms, 1000);
    EXPECT_DOUBLE_EQ(s.tpot_ms, 50);
    EXPECT_DOUBLE_EQ(s.percentile, 99);
    EXPECT_DOUBLE_EQ(parse_slo("p90:ttft=200ms").percentile, 90);
    EXPECT_THROW(parse_slo("ttft=-1ms"), im::error);
    EXPECT_THROW(parse_slo("latency=1s"), im::error);
    EXPECT_THROW(parse_slo("p100:ttft=1s"), im::error);
    request_workload w;
    w.arrivals = arrival_kind::poisson;
    w.rate = 0;
    w.n_requests = 5;
    EXPECT_THROW(validate(w), im::error);
    w.rate = -3;
    EXPECT_THROW(validate(w), im::error);
    w.rate = 1;
    w.n_requests = 0;
    EXPECT_THROW(validate(w), im::error);
}

TEST(requests, clopper_pearson_known_values) {
    // 95% interval for 0 of 10: [0, 0.3085]; 10 of 10: [0.6915, 1]; 5 of 10: [0.1871, 0.8129].
    EXPECT_NEAR(proportion_ci95(0, 10).second, 0.3085, 1e-4);
    EXPECT_NEAR(proportion_ci95(10, 10).first, 0.6915, 1e-4);
    EXPECT_NEAR(proportion_ci95(5, 10).first, 0.1871, 1e-4);
    EXPECT_NEAR(proportion_ci95(5, 10).second, 0.8129, 1e-4);
}

// The capacity search on the fake engine: TPOT grows with concurrency (1 ms per decoding sequence on
// a 10 ms base), so a TPOT objective of 20 ms is met up to C = 10 and missed beyond.
TEST(requests, capacity_search_finds_the_highest_concurrency) {
    request_workload base;
    base.objectives = parse_slo("ttft=10s,tpot=20.5ms");
    base.n_requests = 0;
    capacity_options o;
    o.max_concurrency = 64;
    o.max_probes = 20;
    const auto run_level = [&](const request_workload & w) {
        engine::fake_engine eng(fake(w.arrivals == arrival_kind::closed ? w.concurrency : w.max_concurrency));
        auto lw = w;
        lw.n_requests = lw.arrivals == arrival_kind::closed ? 4 * lw.concurrency : 200;
        return run_requests(eng, lw, fixed(16, 40));
    };
    const auto res = find_capacity(run_level, base, o);
    ASSERT_TRUE(res.concurrency.has_value()) << res.summary;
    EXPECT_EQ(*res.concurrency, 10);
    ASSERT_TRUE(res.rate.has_value()) << res.summary;
    EXPECT_GT(*res.rate, 0);
    EXPECT_NE(res.summary.find("10 concurrent users"), std::string::npos) << res.summary;
    // An objective no load meets names the closest point.
    base.objectives = parse_slo("ttft=1ms,tpot=1ms");
    const auto none = find_capacity(run_level, base, o);
    EXPECT_FALSE(none.concurrency.has_value());
    EXPECT_NE(none.summary.find("No load met"), std::string::npos);
    EXPECT_NE(none.summary.find("closest point, C=1"), std::string::npos) << none.summary;
}
