#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using im::test::run_infermeter;

namespace {

std::string slurp(const std::filesystem::path & p) { return im::test::read_text(p); }

}  // namespace

// Real continuous batching on llama.cpp with real (greedy, CPU) sampling: every request completes
// with exactly the tokens asked for; the JSON, markdown and trace agree.
TEST(continuous_cli, closed_loop_real_sampling_exact_counts_and_trace) {
    const auto dir = im::test::temp_dir("continuous-closed");
    const auto trace = dir / "trace.jsonl";
    const auto exp = dir / "c.md";
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "1,4", "--requests",
                                   "8", "-p", "32", "-n", "16", "-t", "1", "-o", "json", "--trace", trace.string(),
                                   "--export", exp.string(), "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["concurrency"], 1);
    EXPECT_EQ(j[1]["concurrency"], 4);
    for (const auto & row : j) {
        EXPECT_EQ(row["mode"], "continuous");
        EXPECT_EQ(row["n_threads"], 1) << "the context's threads, as lockstep rows say";
        EXPECT_EQ(row["n_ok"], 8);
        EXPECT_EQ(row["n_failed"], 0);
        EXPECT_EQ(row["n_output_short"], 0);
        EXPECT_GT(row["output_tps"].get<double>(), 0);
        EXPECT_GT(row["ttft_p99_ms"].get<double>(), 0);
        EXPECT_GE(row["ttft_p99_ms"].get<double>(), row["ttft_p50_ms"].get<double>());
        EXPECT_GT(row["sample_ms_mean"].get<double>(), 0) << "CPU sampling must cost something";
        EXPECT_EQ(row["samples_ttft_ms"].size(), 8u);
        EXPECT_NE(row["sampling"].get<std::string>().find("greedy, CPU sampling"), std::string::npos);
        EXPECT_EQ(row["n_slots"], row["concurrency"]);
    }
    // Trace: a level row per level, one row per request with its token count and chunk times, and step rows.
    std::ifstream in(trace);
    std::string line;
    int levels = 0, requests = 0, steps = 0;
    while (std::getline(in, line)) {
        const auto t = nlohmann::json::parse(line);
        if (t["kind"] == "level") {
            ++levels;
            EXPECT_EQ(t["n_shards"], 1);
            EXPECT_GT(t["t0_unix_ns"].get<int64_t>(), 0);
        } else if (t["kind"] == "request") {
            ++requests;
            EXPECT_EQ(t["n_output"], 16);
            EXPECT_EQ(t["status"], "none");
            EXPECT_EQ(t["chunk_ms"].size(), 16u);
        } else {
            ++steps;
            EXPECT_LE(t["kv_cells_used"].get<int>(), 4 * 256);
        }
    }
    EXPECT_EQ(levels, 2);
    EXPECT_EQ(requests, 16);
    EXPECT_GT(steps, 16 * 16 / 4);
    EXPECT_NE(slurp(exp).find("| C=4 | 8 / 0 |"), std::string::npos) << slurp(exp);
}

// Open loop from a dataset's own prompts and output lengths, with backend sampling.
TEST(continuous_cli, open_loop_dataset_backend_sampling) {
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--rate", "50", "--requests", "10",
                                   "--max-concurrency", "4", "--dataset", im::test::data_path("dataset/alpaca.jsonl").string(),
                                   "--backend-sampling", "-o", "json", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["arrival"], "poisson");
    EXPECT_DOUBLE_EQ(j[0]["rate"].get<double>(), 50.0);
    EXPECT_EQ(j[0]["n_ok"], 10);
    EXPECT_NE(j[0]["lengths"].get<std::string>().find("dataset"), std::string::npos);
    EXPECT_NE(j[0]["sampling"].get<std::string>().find("backend sampling"), std::string::npos);
}

// Little's law on a longer closed-loop run of real requests.
TEST(continuous_cli, littles_law_on_a_real_run) {
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "4", "--requests",
                                   "160", "--warmup-requests", "4", "--output-tokens", "uniform:2,12", "-p", "16", "-o", "json",
                                   "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j[0]["n_ok"], 156);
    EXPECT_LT(j[0]["littles_law_error"].get<double>(), 0.05) << j[0]["mean_concurrency"];
}

TEST(continuous_cli, bad_input) {
    const std::vector<std::string> base = {"parallel", "-m", "synth:tiny", "--mode", "continuous", "--no-db"};
    const auto with = [&](std::vector<std::string> extra) {
        auto a = base;
        a.insert(a.end(), extra.begin(), extra.end());
        return run_infermeter(a);
    };
    auto r = with({"--rate", "2", "--concurrency", "4"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--concurrency"), std::string::npos) << r.err;
    r = with({"--rate", "0"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = with({"--rate", "-1"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = with({"--slo", "ttft=fast"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--slo"), std::string::npos) << r.err;
    r = with({"--no-sample", "--backend-sampling"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = with({"-p", "40000", "-n", "16"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("trained context"), std::string::npos) << r.err;
    r = with({"--dataset", "/no/such.jsonl"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("/no/such.jsonl"), std::string::npos) << r.err;
    r = with({"--workers", "2"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
}

// An SLO no load meets: the capacity search says so and names the closest point.
TEST(continuous_cli, capacity_search_with_an_unmeetable_slo) {
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--find-capacity", "--slo",
                                   "ttft=0.001ms,tpot=0.001ms", "-p", "16", "-n", "8", "--capacity-max-concurrency", "4",
                                   "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("No load met"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("closest point, C="), std::string::npos) << r.out;
}

// SIGINT in the middle: in-flight requests cancelled, what finished is written, marked, exit 130.
TEST(continuous_cli, sigint_drains_and_marks_interrupted) {
    const auto dir = im::test::temp_dir("continuous-sigint");
    const auto exp = dir / "c.json";
    const std::string bin = im::test::bin_path("infermeter");
    std::vector<std::string> args = {"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "2",
                                     "--requests", "100000", "-p", "16", "-n", "8", "--export", exp.string(), "--no-db"};
    const auto err_path = dir / "stderr.txt";
    const pid_t pid = fork();
    if (pid == 0) {
        const int devnull = open("/dev/null", O_WRONLY);
        const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(devnull, 1);
        dup2(err, 2);
        std::vector<char *> argv{const_cast<char *>(bin.c_str())};
        for (auto & a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    // Interrupt once requests are flowing (the progress line names the requests done).
    for (int i = 0; i < 1200; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (slurp(err_path).find(" req ") != std::string::npos) break;
    }
    // The progress line prints every 5 s without a TTY: wait for its second line, by when requests
    // (8 tokens each) have finished even on a busy 2-core machine.
    for (int i = 0; i < 600; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const auto err = slurp(err_path);
        if (err.find(" req ") != err.rfind(" req ")) break;
    }
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 130);
    const auto j = nlohmann::json::parse(slurp(exp));
    ASSERT_EQ(j.size(), 1u);
    EXPECT_TRUE(j[0]["interrupted"].get<bool>());
    EXPECT_GT(j[0]["n_ok"].get<int>(), 0);
    // In-flight requests at the stop are counted as cancelled, not as latencies.
    EXPECT_NE(j[0]["failures"].get<std::string>().find("cancelled"), std::string::npos) << j[0]["failures"];
}

// 10,000 real requests through llama.cpp: every one completes with its exact length, KV is freed
// (no slot ever refuses a request for lack of cells) and the process does not grow.
TEST(continuous_cli, ten_thousand_requests_soak_rss_flat) {
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "8", "--requests",
                                   "10000", "-p", "6", "-n", "2", "--step-tokens", "64", "-o", "json", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out)[0];
    EXPECT_EQ(j["n_ok"], 10000);
    EXPECT_EQ(j["n_failed"], 0);
    EXPECT_EQ(j["n_output_short"], 0);
    const double growth_mb = (j["rss_end_bytes"].get<double>() - j["rss_start_bytes"].get<double>()) / 1e6;
    RecordProperty("rss_growth_mb", std::to_string(growth_mb));
    // The records of 10,000 requests (their token times) are kept by design: ~2 MB. Anything that
    // leaks per request (KV, batches, sampler state) would show as far more.
    EXPECT_LT(growth_mb, 32.0) << "RSS grew by " << growth_mb << " MB over 10,000 requests";
}

// --trace and --export onto a character device of the test's own (mknod, never /dev): written through,
// the node stays a device.
TEST(continuous_cli, trace_and_export_write_through_a_device_node) {
    const auto dir = im::test::temp_dir("continuous-node");
    const auto node = dir / "null", export_node = dir / "null.json";
    if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) GTEST_SKIP() << "mknod needs root";
    ASSERT_EQ(::mknod(export_node.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "2", "--requests",
                                   "4", "-p", "8", "-n", "4", "--trace", node.string(), "--export", export_node.string(),
                                   "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto & p : {node, export_node}) {
        struct stat st {};
        ASSERT_EQ(::lstat(p.c_str(), &st), 0);
        EXPECT_TRUE(S_ISCHR(st.st_mode)) << p << " was replaced by a regular file";
    }
}
