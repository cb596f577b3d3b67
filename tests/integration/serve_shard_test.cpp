// `serve --shard K/N` + `infermeter merge` end to end: one schedule against the real llama-server
// (synth:tiny, 127.0.0.1) run unsharded, then in 2 and in 3 shards as concurrent processes started at
// one --start-at instant, merged from their traces and compared with the unsharded run; merge's
// refusals (another seed, a missing shard, a broken trace) and serve's shard usage errors.
#include "support/fault_server.h"
#include "support/llama_server.h"
#include "support/run.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

using im::test::llama_server;
using im::test::run_infermeter;
using im::test::run_result;

namespace {

bool server_built() { return std::filesystem::exists(im::test::bin_path("llama-server")); }

// The open-loop schedule every run shares: 40 requests of 32/16 tokens, Poisson at 4 req/s. At 8 req/s
// the server on this loaded 2-core VM kept up only just (7.1 req/s), queues came and went with the
// neighbours' load and the latency medians of identical runs moved by 2.7x; at 4 it keeps up.
std::vector<std::string> schedule_args(const std::string & url, const std::string & model, const std::string & seed = "11",
                                       const std::string & requests = "40") {
    return {"serve", "--url", url, "-m", model, "--token-prompts", "-p", "32", "-n", "16", "--rate", "4",
            "--requests", requests, "--seed", seed, "--metrics-url", "none", "--no-db"};
}

// Epoch seconds `ahead_s` from now: a --start-at every shard can still reach after starting up.
std::string epoch_in(int ahead_s) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count() + ahead_s);
}

// Shards 1..n of the schedule as concurrent processes, each writing its trace into `dir`.
std::vector<std::string> run_shards(int n, const std::string & url, const std::string & model, const std::filesystem::path & dir) {
    const std::string start = epoch_in(10);  // starting a client took over 3 s on the loaded 2-core VM
    std::vector<std::string> traces;
    std::vector<std::future<run_result>> running;
    for (int k = 1; k <= n; ++k) {
        traces.push_back((dir / ("shard" + std::to_string(k) + "of" + std::to_string(n) + ".jsonl")).string());
        auto args = schedule_args(url, model);
        args.insert(args.end(), {"--shard", std::to_string(k) + "/" + std::to_string(n), "--start-at", start, "--trace", traces.back()});
        running.push_back(std::async(std::launch::async, [args] { return run_infermeter(args); }));
    }
    for (int k = 1; k <= n; ++k) {
        const auto r = running[static_cast<size_t>(k - 1)].get();
        EXPECT_EQ(r.exit_code, 0) << "shard " << k << "/" << n << ": " << r.err;
        EXPECT_EQ(r.err.find("passed"), std::string::npos) << "the --start-at instant passed before shard " << k << " started";
    }
    return traces;
}

// The ids of the request rows of a trace.
std::vector<uint64_t> trace_ids(const std::string & path) {
    std::vector<uint64_t> ids;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j["kind"] == "request") ids.push_back(j["id"].get<uint64_t>());
    }
    return ids;
}

double num(const nlohmann::json & row, const char * key) { return row.at(key).get<double>(); }

}  // namespace

// Tolerances, for a shared 2-core VM where the server and up to three client processes compete for
// the cores with other jobs (load average 7-10 while this was written): throughput over the steady
// window follows the schedule's arrivals (the same 40 arrival times in every run), so it must agree
// within 25% (measured with 64 requests at 4 req/s: 4.40-4.53 req/s unsharded and merged, two rounds).
// Per-request latencies move with the CPU the server gets: the same runs measured TTFT p50 from 12.8
// to 20.6 ms and TPOT p50 from 10.2 to 14.8 ms, and at 8 req/s three identical unsharded runs in a row
// gave TTFT p50 18.5 / 42.7 / 17.8 ms, so medians must agree within a factor of 3 (plus 10 ms for
// TTFT, a few decode steps). The p99 of 40 samples is about their largest and is only checked for
// sanity. Exact agreement of merged and unsharded figures on the same records is the unit test's
// (shards.merge_reproduces_the_unsharded_figures_exactly).
TEST(serve_shard, two_and_three_shards_merged_match_the_unsharded_run) {
    if (!server_built()) GTEST_SKIP() << "llama-server was not built";
    const auto model = im::test::tiny_model().string();
    const auto dir = im::test::temp_dir("serve-shard");
    // One thread: on the shared 2-core VM a 2-thread server spinning against the clients and other jobs
    // streamed at 500 ms per token instead of 25.
    llama_server srv({"-m", model, "-np", "8", "-c", "8192", "--no-webui", "-t", "1"});
    ASSERT_TRUE(srv.wait_ready(120)) << srv.log_text();

    auto args = schedule_args(srv.base(), model);
    args.insert(args.end(), {"-o", "json", "--trace", (dir / "whole.jsonl").string()});
    const auto whole_run = run_infermeter(args);
    ASSERT_EQ(whole_run.exit_code, 0) << whole_run.err;
    const auto whole = nlohmann::json::parse(whole_run.out).at(0);
    ASSERT_EQ(whole["n_ok"], 40) << whole_run.out;
    EXPECT_EQ(whole["n_shards"], 1);

    for (int n : {2, 3}) {
        SCOPED_TRACE(std::to_string(n) + " shards");
        const auto traces = run_shards(n, srv.base(), model, dir);
        // Every request of the schedule sent once, by the shard i mod N + 1.
        std::multiset<uint64_t> ids;
        for (int k = 1; k <= n; ++k) {
            for (const uint64_t id : trace_ids(traces[static_cast<size_t>(k - 1)])) {
                ids.insert(id);
                EXPECT_EQ(id % static_cast<uint64_t>(n), static_cast<uint64_t>(k - 1)) << traces[static_cast<size_t>(k - 1)];
            }
        }
        ASSERT_EQ(ids.size(), 40u);
        for (uint64_t i = 0; i < 40; ++i) EXPECT_EQ(ids.count(i), 1u) << "request " << i;

        std::vector<std::string> margs{"merge"};
        for (auto it = traces.rbegin(); it != traces.rend(); ++it) margs.push_back(*it);  // any order
        const auto md = dir / ("merged" + std::to_string(n) + ".md");
        margs.insert(margs.end(), {"-o", "json", "--export", md.string(), "--no-db"});
        const auto merged_run = run_infermeter(margs);
        ASSERT_EQ(merged_run.exit_code, 0) << merged_run.err;
        const auto merged = nlohmann::json::parse(merged_run.out).at(0);
        EXPECT_EQ(merged["n_ok"], 40);
        EXPECT_EQ(merged["n_failed"], 0);
        EXPECT_EQ(merged["requests"], 40);
        EXPECT_EQ(merged["shard"], 0);
        EXPECT_EQ(merged["n_shards"], n);
        EXPECT_EQ(merged["rate"], 4.0);
        EXPECT_EQ(merged["samples_ttft_ms"].size(), 40u);
        const auto report = im::test::read_text(md);
        EXPECT_NE(report.find("| 4.00 req/s, " + std::to_string(n) + " shards merged | 40 / 0 |"), std::string::npos) << report;
        EXPECT_NE(report.find("every shard started its schedule at the --start-at instant"), std::string::npos) << report;

        const auto within = [](double got, double want, double rel, double abs = 0) {
            return std::abs(got - want) <= rel * want + abs;
        };
        for (const char * k : {"request_tps", "output_tps", "window_s"}) {
            EXPECT_TRUE(within(num(merged, k), num(whole, k), 0.25)) << k << ": merged " << merged[k] << ", unsharded " << whole[k];
        }
        for (const auto & [k, slack] : {std::pair{"ttft_p50_ms", 10.0}, std::pair{"tpot_p50_ms", 0.0}, std::pair{"e2e_p50_ms", 0.0}}) {
            const double m = num(merged, k), w = num(whole, k);
            EXPECT_TRUE(m <= 3 * w + slack && w <= 3 * m + slack) << k << ": merged " << m << ", unsharded " << w;
        }
        for (const char * k : {"ttft", "tpot", "itl", "e2e"}) {
            const auto p50 = merged[std::string(k) + "_p50_ms"], p99 = merged[std::string(k) + "_p99_ms"];
            EXPECT_GE(p99.get<double>(), p50.get<double>()) << k;
            EXPECT_GT(p50.get<double>(), 0) << k;
        }
        std::cerr << n << " shards merged: " << num(merged, "request_tps") << " req/s (unsharded " << num(whole, "request_tps")
                  << "), output " << num(merged, "output_tps") << " t/s (" << num(whole, "output_tps") << "), TTFT p50/p99 "
                  << num(merged, "ttft_p50_ms") << "/" << num(merged, "ttft_p99_ms") << " ms (" << num(whole, "ttft_p50_ms") << "/"
                  << num(whole, "ttft_p99_ms") << "), TPOT p50/p99 " << num(merged, "tpot_p50_ms") << "/"
                  << num(merged, "tpot_p99_ms") << " ms (" << num(whole, "tpot_p50_ms") << "/" << num(whole, "tpot_p99_ms")
                  << ")\n";
    }

    // merge refuses what is not shards 1..N of one schedule.
    auto other = schedule_args(srv.base(), model, "12", "4");
    other.insert(other.end(), {"--shard", "2/2", "--trace", (dir / "seed12.jsonl").string()});
    const auto other_run = run_infermeter(other);
    ASSERT_EQ(other_run.exit_code, 0) << other_run.err;
    auto r = run_infermeter({"merge", (dir / "shard1of2.jsonl").string(), (dir / "seed12.jsonl").string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("are not shards of one schedule"), std::string::npos) << r.err;
    r = run_infermeter({"merge", (dir / "shard1of3.jsonl").string(), (dir / "shard3of3.jsonl").string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("shard 2/3 is missing"), std::string::npos) << r.err;
    srv.stop();
}

TEST(serve_shard, usage_and_input_errors) {
    const auto dir = im::test::temp_dir("serve-shard-errors");
    const std::vector<std::string> base{"serve", "--url", "http://127.0.0.1:1", "--requests", "8", "--no-db"};
    const auto with = [&](std::vector<std::string> extra) {
        auto a = base;
        a.insert(a.end(), extra.begin(), extra.end());
        return run_infermeter(a);
    };
    for (const auto & [extra, want] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--rate", "4", "--shard", "3/2"}, "--shard '3/2': K must be in 1..2"},
             {{"--rate", "4", "--shard", "two"}, "--shard 'two': expected K/N"},
             {{"--rate", "4", "--shard", "1/9"}, "--requests >= 9"},
             {{"--rate", "4", "--start-at", "yesterday"}, "--start-at 'yesterday'"},
             {{"--rate", "4", "--start-at", "1000000000"}, "that instant passed"},
             {{"--rate", "4,8", "--start-at", epoch_in(60)}, "--start-at aligns one load level"}}) {
        const auto r = with(extra);
        EXPECT_EQ(r.exit_code, 2) << extra[2] << " " << extra[3] << ": " << r.err;
        EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    }
    auto r = run_infermeter({"serve", "--url", "http://127.0.0.1:1", "--concurrency", "2", "--shard", "1/3", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("every shard needs one (C >= 3)"), std::string::npos) << r.err;

    const auto broken = dir / "broken.jsonl";
    std::ofstream(broken) << "{\"kind\":\"level\",\"level\":0}\n";
    r = run_infermeter({"merge", broken.string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(broken.string() + ":1: not a trace row"), std::string::npos) << r.err;
    r = run_infermeter({"merge", (dir / "absent.jsonl").string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("absent.jsonl"), std::string::npos) << r.err;
}

// The shard is in every writer's output (the fault server's well-behaved endpoint as the server).
TEST(serve_shard, every_writer_records_the_shard) {
    im::test::fault_server srv;
    const auto dir = im::test::temp_dir("serve-shard-writers");
    const std::vector<std::string> base{"serve", "--url", srv.url("ok"), "--rate", "50", "--requests", "9", "-n", "4",
                                        "--shard", "2/3", "--metrics-url", "none", "--no-db"};
    const auto with = [&](std::vector<std::string> extra) {
        auto a = base;
        a.insert(a.end(), extra.begin(), extra.end());
        return run_infermeter(a);
    };
    const auto csv = dir / "shard.csv", trace = dir / "shard.jsonl";
    auto r = with({"-o", "json", "--export", csv.string(), "--trace", trace.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto row = nlohmann::json::parse(r.out).at(0);
    EXPECT_EQ(row["shard"], 2);
    EXPECT_EQ(row["n_shards"], 3);
    EXPECT_EQ(row["requests"], 3);  // requests 1, 4, 7 of the 9
    const auto text = im::test::read_text(csv);
    EXPECT_NE(text.find(",shard,n_shards,"), std::string::npos) << text.substr(0, 600);
    const auto level = nlohmann::json::parse(im::test::read_text(trace).substr(0, im::test::read_text(trace).find('\n')));
    EXPECT_EQ(level["kind"], "level");
    EXPECT_EQ(level["shard"], 2);
    EXPECT_EQ(level["n_shards"], 3);
    EXPECT_EQ(trace_ids(trace.string()), (std::vector<uint64_t>{1, 4, 7}));
    r = with({});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| 50.00 req/s, shard 2/3 | 3 / 0 |"), std::string::npos) << r.out;
    r = with({"-o", "json", "--format", "vllm"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto v = nlohmann::json::parse(r.out);
    EXPECT_EQ(v["shard"], 2);
    EXPECT_EQ(v["n_shards"], 3);
    EXPECT_EQ(v["completed"], 3);
}

// Without --start-at each shard's t = 0 is its own start: run one after the other, the shards' origins
// lie a whole run apart, and merge says so (a warning on stderr, the note in the report) but merges.
TEST(serve_shard, merge_without_start_at_reports_the_skew) {
    im::test::fault_server srv;
    const auto dir = im::test::temp_dir("serve-shard-skew");
    std::vector<std::string> traces;
    for (const char * k : {"1/2", "2/2"}) {
        traces.push_back((dir / (std::string("s") + k[0] + ".jsonl")).string());
        const auto r = run_infermeter({"serve", "--url", srv.url("ok"), "--rate", "50", "--requests", "12", "-n", "4", "--shard", k,
                                       "--trace", traces.back(), "--metrics-url", "none", "--no-db"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    const auto r = run_infermeter({"merge", traces[0], traces[1], "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("the shards' schedules started"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("give every shard the same --start-at"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("the shards started their clocks independently"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| 50.00 req/s, 2 shards merged | 12 / 0 |"), std::string::npos) << r.out;
}
