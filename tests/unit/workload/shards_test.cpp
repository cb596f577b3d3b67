// serve --shard K/N and merge on the deterministic fake engine: the shards of a schedule partition it
// exactly, and merging records split across shards reproduces the unsharded figures exactly (through
// the --trace files merge reads, too).
#include "core/error.h"
#include "engine/fake.h"
#include "report/trace.h"
#include "support/run.h"
#include "workload/requests.h"
#include "workload/shards.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

using namespace im;
using namespace im::workload;

namespace {

engine::fake_config fake(int slots) {
    engine::fake_config c;
    c.slots.n_slots = slots;
    c.slots.n_ctx_seq = 4096;
    c.slots.step_tokens = 512;
    c.step_base_ns = 10'000'000;
    c.per_decode_ns = 1'000'000;
    c.per_prompt_token_ns = 10'000;
    return c;
}

// Lengths that depend on the request's index in the schedule, so a shard that built request i from
// any other index would show.
engine::request make(uint64_t i) {
    engine::request r;
    r.n_prompt = 8 + static_cast<int>(i % 7);
    r.n_predict = 2 + static_cast<int>(i % 5);
    r.prompt_tokens.assign(static_cast<size_t>(r.n_prompt), 1);
    return r;
}

request_workload open_loop(int n) {
    request_workload w;
    w.arrivals = arrival_kind::poisson;
    w.rate = 40;
    w.n_requests = n;
    w.warmup_requests = 3;
    w.max_concurrency = 6;
    w.seed = 7;
    return w;
}

request_workload closed_loop(int c, int n) {
    request_workload w;
    w.arrivals = arrival_kind::closed;
    w.concurrency = c;
    w.n_requests = n;
    w.warmup_requests = 2;
    return w;
}

request_run run_shard(request_workload w, int k, int n, int slots) {
    w.shard = k;
    w.n_shards = n;
    engine::fake_engine eng(fake(slots));
    return run_requests(eng, w, make);
}

// The unsharded run's records split by shard (request i to shard i mod N + 1), as N shard runs with
// the same clocks: what merge must put back together.
std::vector<shard_run> split(const request_run & whole, int n) {
    std::vector<shard_run> parts;
    for (int k = 1; k <= n; ++k) {
        shard_run p{"shard" + std::to_string(k) + ".jsonl", whole};
        p.run.workload.shard = k;
        p.run.workload.n_shards = n;
        p.run.records.clear();
        for (const auto & q : whole.records) {
            if (in_shard(p.run.workload, q.id)) p.run.records.push_back(q);
        }
        parts.push_back(std::move(p));
    }
    return parts;
}

void expect_same_latency(const latency_stats & a, const latency_stats & b, const char * what) {
    EXPECT_EQ(a.n, b.n) << what;
    EXPECT_EQ(a.mean, b.mean) << what;
    EXPECT_EQ(a.p50, b.p50) << what;
    EXPECT_EQ(a.p90, b.p90) << what;
    EXPECT_EQ(a.p99, b.p99) << what;
    EXPECT_EQ(a.max, b.max) << what;
}

void expect_same_metrics(const request_metrics & a, const request_metrics & b) {
    EXPECT_EQ(a.n_requests, b.n_requests);
    EXPECT_EQ(a.n_measured, b.n_measured);
    EXPECT_EQ(a.n_ok, b.n_ok);
    EXPECT_EQ(a.n_failed, b.n_failed);
    EXPECT_EQ(a.failures, b.failures);
    EXPECT_EQ(a.window_s, b.window_s);
    EXPECT_EQ(a.request_tps, b.request_tps);
    EXPECT_EQ(a.output_tps, b.output_tps);
    EXPECT_EQ(a.total_tps, b.total_tps);
    EXPECT_EQ(a.goodput_rps, b.goodput_rps);
    EXPECT_EQ(a.mean_concurrency, b.mean_concurrency);
    expect_same_latency(a.ttft, b.ttft, "ttft");
    expect_same_latency(a.ttft_sent, b.ttft_sent, "ttft_sent");
    expect_same_latency(a.tpot, b.tpot, "tpot");
    expect_same_latency(a.itl, b.itl, "itl");
    expect_same_latency(a.itl_per_token, b.itl_per_token, "itl_per_token");
    expect_same_latency(a.e2e, b.e2e, "e2e");
}

std::string error_of(const std::vector<shard_run> & parts) {
    try {
        merge_shards(parts);
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), error_kind::usage) << e.what();
        return e.what();
    }
    return "";
}

}  // namespace

// Open loop: every request of the schedule is sent by exactly one shard, at the unsharded intended
// time, with the unsharded prompt and output lengths and warmup flag.
TEST(shards, open_loop_shards_partition_the_schedule) {
    const auto whole = run_shard(open_loop(40), 1, 1, 8);
    ASSERT_EQ(whole.records.size(), 40u);
    std::map<uint64_t, const request_record *> by_id;
    for (const auto & q : whole.records) by_id[q.id] = &q;
    for (int n : {2, 3}) {
        std::multiset<uint64_t> seen;
        for (int k = 1; k <= n; ++k) {
            const auto part = run_shard(open_loop(40), k, n, 8);
            EXPECT_EQ(part.workload.shard, k);
            for (const auto & q : part.records) {
                seen.insert(q.id);
                EXPECT_EQ(q.id % static_cast<uint64_t>(n), static_cast<uint64_t>(k - 1)) << "shard " << k << "/" << n;
                const auto & u = *by_id.at(q.id);
                EXPECT_EQ(q.t_intended_ns - part.t0_ns, u.t_intended_ns - whole.t0_ns) << "request " << q.id;
                EXPECT_EQ(q.n_prompt, u.n_prompt);
                EXPECT_EQ(q.n_predict, u.n_predict);
                EXPECT_EQ(q.warmup, u.warmup);
                EXPECT_TRUE(q.ok());
            }
        }
        ASSERT_EQ(seen.size(), 40u) << n << " shards";
        for (uint64_t i = 0; i < 40; ++i) EXPECT_EQ(seen.count(i), 1u) << "request " << i << " with " << n << " shards";
    }
}

// Closed loop: user u runs on shard u mod N + 1 only; shard K sends requests K-1, K-1+N, ... so the
// shards' requests are the schedule's, each once, with its lengths and warmup flag.
TEST(shards, closed_loop_shards_split_users_and_requests) {
    const auto whole = run_shard(closed_loop(6, 30), 1, 1, 6);
    ASSERT_EQ(whole.records.size(), 30u);
    for (int n : {2, 3}) {
        std::multiset<uint64_t> seen;
        std::map<int, int> user_shard;
        for (int k = 1; k <= n; ++k) {
            auto w = closed_loop(6, 30);
            w.shard = k;
            w.n_shards = n;
            EXPECT_EQ(shard_users(w), 6 / n);
            const auto part = run_shard(closed_loop(6, 30), k, n, 6);
            for (const auto & q : part.records) {
                seen.insert(q.id);
                EXPECT_EQ(q.id % static_cast<uint64_t>(n), static_cast<uint64_t>(k - 1));
                ASSERT_GE(q.user, 0);
                EXPECT_EQ(q.user % n, k - 1) << "user " << q.user << " on shard " << k << "/" << n;
                const auto [it, fresh] = user_shard.try_emplace(q.user, k);
                EXPECT_EQ(it->second, k) << "user " << q.user << " on two shards";
                EXPECT_EQ(q.n_prompt, 8 + static_cast<int>(q.id % 7));
                EXPECT_EQ(q.n_predict, 2 + static_cast<int>(q.id % 5));
                EXPECT_EQ(q.warmup, q.id < 2);
            }
        }
        EXPECT_EQ(user_shard.size(), 6u);
        ASSERT_EQ(seen.size(), 30u);
        for (uint64_t i = 0; i < 30; ++i) EXPECT_EQ(seen.count(i), 1u) << "request " << i << " with " << n << " shards";
    }
    // An uneven split: 7 users over 3 shards run 3, 2 and 2.
    auto w = closed_loop(7, 30);
    w.n_shards = 3;
    for (int k : {1, 2, 3}) {
        w.shard = k;
        EXPECT_EQ(shard_users(w), k == 1 ? 3 : 2);
    }
}

// The records of one run split in 2 and 3 shards and merged give the unsharded figures exactly
// (percentiles from the merged raw samples, the same steady window), also after a round trip
// through the --trace files merge reads.
TEST(shards, merge_reproduces_the_unsharded_figures_exactly) {
    const auto dir = im::test::temp_dir("shards-merge");
    for (const auto & whole : {run_shard(open_loop(60), 1, 1, 4), run_shard(closed_loop(6, 48), 1, 1, 3)}) {
        for (int n : {2, 3}) {
            SCOPED_TRACE(whole.load_label() + ", " + std::to_string(n) + " shards");
            const auto m = merge_shards(split(whole, n));
            EXPECT_EQ(m.run.workload.shard, 0);
            EXPECT_EQ(m.run.workload.n_shards, n);
            EXPECT_EQ(m.shards.size(), static_cast<size_t>(n));
            EXPECT_EQ(m.start_skew_ns, 0);
            ASSERT_EQ(m.run.records.size(), whole.records.size());
            for (size_t i = 0; i < m.run.records.size(); ++i) EXPECT_EQ(m.run.records[i].id, i);
            expect_same_metrics(m.run.metrics, whole.metrics);

            std::vector<shard_run> read;
            for (const auto & p : split(whole, n)) {
                const auto path = dir / p.source;
                std::ofstream(path) << report::trace_jsonl({p.run});
                auto runs = report::read_trace(path);
                ASSERT_EQ(runs.size(), 1u);
                read.push_back({p.source, std::move(runs.front())});
            }
            expect_same_metrics(merge_shards(read).run.metrics, whole.metrics);
        }
    }
}

// Without --start-at each shard's t = 0 is its own start: merge places the records on the wall
// clock, so a shard that started later shows up later and widens the union's window.
TEST(shards, merge_places_shards_on_the_wall_clock) {
    const auto whole = run_shard(open_loop(40), 1, 1, 4);
    auto parts = split(whole, 2);
    parts[1].run.t0_unix_ns += 2'000'000'000;
    const auto m = merge_shards(parts);
    EXPECT_EQ(m.start_skew_ns, 2'000'000'000);
    EXPECT_FALSE(m.run.started_at);
    EXPECT_EQ(m.run.metrics.ttft.p99, whole.metrics.ttft.p99);  // per-request latencies do not depend on the clocks
    EXPECT_GT(m.run.metrics.window_s, whole.metrics.window_s + 1.0);
    EXPECT_NEAR(start_skew_share(m), 2.0 / m.run.metrics.window_s, 1e-12);
    EXPECT_GT(start_skew_share(m), max_start_skew_share);
    for (auto & p : parts) {
        p.run.t0_unix_ns = parts[0].run.t0_unix_ns;
        p.run.started_at = true;
    }
    EXPECT_EQ(start_skew_share(merge_shards(parts)), 0.0);
}

TEST(shards, merge_refuses_what_is_not_one_schedule) {
    const auto whole = run_shard(open_loop(30), 1, 1, 4);
    auto parts = split(whole, 3);
    auto other_seed = parts;
    other_seed[2].run.workload.seed = 8;
    EXPECT_NE(error_of(other_seed).find("not shards of one schedule: --seed 7 vs 8"), std::string::npos) << error_of(other_seed);
    auto missing = parts;
    missing.erase(missing.begin() + 1);
    EXPECT_NE(error_of(missing).find("shard 2/3 is missing"), std::string::npos) << error_of(missing);
    auto twice = parts;
    twice[2] = parts[0];
    twice[2].source = "again.jsonl";
    EXPECT_NE(error_of(twice).find("shard 1/3 is given twice: shard1.jsonl and again.jsonl"), std::string::npos) << error_of(twice);
    auto mixed = split(whole, 2);
    mixed.push_back(parts[2]);
    EXPECT_NE(error_of(mixed).find("--shard N 2 vs 3"), std::string::npos) << error_of(mixed);
    auto other_start = parts;
    for (auto & p : other_start) p.run.started_at = true;
    other_start[1].run.t0_unix_ns += 60'000'000'000;
    EXPECT_NE(error_of(other_start).find("not shards of one run: --start-at"), std::string::npos) << error_of(other_start);
    other_start[1].run.started_at = false;
    EXPECT_NE(error_of(other_start).find("vs none"), std::string::npos) << error_of(other_start);
    auto edited = parts;
    edited[0].run.records.push_back(parts[1].run.records.front());
    EXPECT_NE(error_of(edited).find("does not belong to shard 1/3"), std::string::npos) << error_of(edited);
}

TEST(shards, shard_flag_parsing_and_validation) {
    request_workload w = closed_loop(4, 16);
    parse_shard("2/3", w);
    EXPECT_EQ(w.shard, 2);
    EXPECT_EQ(w.n_shards, 3);
    EXPECT_EQ(shard_label(w), "2/3");
    EXPECT_EQ(load_label(w), "C=4, shard 2/3");
    for (const char * bad : {"0/2", "3/2", "2", "a/b", "1/0", "1/2x", "/2", "1/2000"}) {
        try {
            parse_shard(bad, w);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), error_kind::usage);
            EXPECT_NE(std::string(e.what()).find("--shard"), std::string::npos) << e.what();
        }
    }
    w = closed_loop(2, 16);
    parse_shard("1/3", w);
    EXPECT_THROW(validate(w), im::error);  // fewer users than shards
    w = open_loop(30);
    w.max_concurrency = 2;
    parse_shard("1/3", w);
    EXPECT_THROW(validate(w), im::error);  // a cap smaller than the shards
    w.max_concurrency = 0;
    w.n_requests = 2;
    w.warmup_requests = 0;
    EXPECT_THROW(validate(w), im::error);  // fewer requests than shards
    w.n_requests = 3;
    EXPECT_NO_THROW(validate(w));
}
