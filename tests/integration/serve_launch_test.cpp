// `serve --launch-server` and `--compare-in-process` end to end: the real binary starts the real
// llama-server (synth:tiny, 127.0.0.1, a free port), drives it, runs the same workload in-process,
// and stops the server after, also when interrupted (issue 15, issue 16).
#include "hostile_support.h"
#include "support/fault_server.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <filesystem>
#include <map>
#include <netinet/in.h>
#include <regex>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// The port after "--port " in `text` (the launched server's recorded command line); 0 when absent.
int launched_port(const std::string & text) {
    std::smatch m;
    static const std::regex re("--port ([0-9]+)");
    if (!std::regex_search(text, m, re)) return 0;
    return std::stoi(m[1].str());
}

bool server_built() { return std::filesystem::exists(im::test::bin_path("llama-server")); }

}  // namespace

TEST(serve_launch, compare_in_process_in_one_command) {
    if (!server_built()) GTEST_SKIP() << "llama-server was not built";
    const auto tiny = im::test::tiny_model().string();
    const auto dir = im::test::temp_dir("serve-launch");
    const auto json = (dir / "serve.json").string();
    const auto r = im::test::run_infermeter({"serve", "--launch-server", "-m", tiny, "--compare-in-process", "--concurrency",
                                             "1,2", "--requests", "6", "-p", "32", "-n", "12", "-t", "1", "--export", json,
                                             "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The server's command line is recorded: its flags derived from the levels and the engine flags.
    EXPECT_NE(r.out.find("**Server:** launched for this run"), std::string::npos) << r.out;
    for (const char * flag : {"llama-server", "--host 127.0.0.1", "-np 2", " -c ", "--metrics", "-ngl 99", "-t 1"}) {
        EXPECT_NE(r.out.find(flag), std::string::npos) << flag << "\n" << r.out.substr(0, 1500);
    }
    const int port = launched_port(r.out);
    ASSERT_GT(port, 0);
    EXPECT_FALSE(im::test::accepts_connections(port)) << "the launched server is still running on port " << port;
    // Its telemetry was scraped (llama-server --metrics).
    EXPECT_NE(r.out.find("`llamacpp:"), std::string::npos) << r.out;
    // One comparison table per level, the gap attributed.
    EXPECT_NE(r.out.find("### Server Against the Same Engine In-Process"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("#### C=1"), std::string::npos);
    EXPECT_NE(r.out.find("#### C=2"), std::string::npos);
    EXPECT_NE(r.out.find("- Sampling (in-process, no sampling → CPU sampling):"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("- Server scheduling, streaming and transport (in-process CPU sampling → HTTP):"), std::string::npos);
    const bool backend_ran = r.out.find("| Continuous batching, backend sampling | not run:") == std::string::npos;
    if (!backend_ran) EXPECT_NE(r.out.find("- Backend sampling is not supported here:"), std::string::npos) << r.out;

    // The same rows in the JSON export, through the serve result kind.
    const auto j = nlohmann::json::parse(im::test::read_text(json));
    ASSERT_TRUE(j.is_array());
    std::map<std::string, int> modes;
    for (const auto & row : j) {
        const std::string mode = row.at("mode").get<std::string>();
        ++modes[mode];
        EXPECT_FALSE(row.at("interrupted").get<bool>());
        EXPECT_EQ(row.at("n_failed").get<int>(), 0) << row.dump();
        if (mode == "serve" || mode.find("continuous") != std::string::npos) {
            EXPECT_EQ(row.at("n_ok").get<int>(), 6) << row.dump();
            EXPECT_EQ(row.at("n_output_short").get<int>(), 0) << row.dump();
            EXPECT_EQ(row.at("lengths").get<std::string>(), "fixed 32 prompt / 12 output tokens") << row.dump();
        }
        EXPECT_GT(row.at("output_tps").get<double>(), 0) << row.dump();
        if (mode == "serve") EXPECT_NE(row.at("engine").get<std::string>().find("launched: "), std::string::npos);
    }
    EXPECT_EQ(modes["serve"], 2);
    EXPECT_EQ(modes["in-process lockstep"], 2);
    EXPECT_EQ(modes["in-process continuous, no sampling"], 2);
    EXPECT_EQ(modes["in-process continuous, CPU sampling"], 2);
    EXPECT_EQ(modes["in-process continuous, backend sampling"], backend_ran ? 2 : 0);
}

TEST(serve_launch, a_server_that_does_not_start_is_an_error) {
    if (!server_built()) GTEST_SKIP() << "llama-server was not built";
    const auto tiny = im::test::tiny_model().string();
    auto r = im::test::run_infermeter({"serve", "--launch-server", "-m", tiny, "--server-arg=--no-such-flag", "--requests", "2",
                                       "-n", "4", "--no-db"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("exited before it was ready"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
    r = im::test::run_infermeter({"serve", "--launch-server", "--requests", "2", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("-m MODEL"), std::string::npos) << r.err;
    r = im::test::run_infermeter({"serve", "--launch-server", "-m", tiny, "--url", "http://127.0.0.1:1", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("drop --url"), std::string::npos) << r.err;
    r = im::test::run_infermeter({"serve", "--url", "http://127.0.0.1:1", "--compare-in-process", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--compare-in-process needs -m"), std::string::npos) << r.err;
    r = im::test::run_infermeter({"serve", "--url", "http://127.0.0.1:1", "--format", "vllm", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--format vllm writes JSON"), std::string::npos) << r.err;
}

// SIGINT or SIGTERM mid-run: exit 130, outputs valid and marked interrupted, the server stopped.
TEST(serve_launch, interrupted_run_stops_the_server_and_marks_outputs) {
    if (!server_built()) GTEST_SKIP() << "llama-server was not built";
    const auto tiny = im::test::tiny_model().string();
    for (const int sig : {SIGINT, SIGTERM}) {
        const auto dir = im::test::temp_dir("serve-launch-int");
        const auto json = (dir / "serve.json").string();
        const auto r = im::test::run_infermeter_child({"serve", "--launch-server", "-m", tiny, "--concurrency", "2,4",
                                                       "--requests", "2000", "-p", "16", "-n", "64", "-t", "1", "-o", "json",
                                                       "--export", json, "--db", (dir / "im.db").string()},
                                                      dir.string(), 6.0, sig, 120);
        ASSERT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 130) << r.err;
        EXPECT_LT(r.after_signal_s, 15.0);
        for (const std::string & text : {r.out, im::test::read_text(json)}) {
            const auto j = nlohmann::json::parse(text);
            ASSERT_TRUE(j.is_array());
            ASSERT_FALSE(j.empty());
            for (const auto & row : j) EXPECT_TRUE(row.at("interrupted").get<bool>()) << row.dump();
            const int port = launched_port(j.front().at("engine").get<std::string>());
            ASSERT_GT(port, 0) << j.front().dump();
            EXPECT_FALSE(im::test::accepts_connections(port)) << "the launched server outlived the run (port " << port << ")";
        }
    }
}

// 10,000 requests through the client against the fault server: the client's peak RSS stays flat
// (records are the only thing kept per request). Prints the growth against a 1,000-request run.
TEST(serve_launch, ten_thousand_requests_keep_the_client_rss_flat) {
    im::test::fault_server_options o;
    o.chunk_interval_us = 200;
    im::test::fault_server srv(o);
    std::map<int, int64_t> rss_kb;
    for (const int n : {1000, 10000}) {
        const auto dir = im::test::temp_dir("serve-rss");
        const auto r = im::test::run_infermeter_child({"serve", "--url", srv.url("ok"), "--concurrency", "64", "--requests",
                                                       std::to_string(n), "-n", "4", "-o", "csv", "--no-db"},
                                                      dir.string(), -1, SIGINT, 300);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find(",serve,"), std::string::npos);
        rss_kb[n] = r.max_rss_kb;
    }
    const double growth_mib = double(rss_kb[10000] - rss_kb[1000]) / 1024.0;
    std::fprintf(stderr, "[ figures ] serve client peak RSS: %.1f MiB at 1,000 requests, %.1f MiB at 10,000 (growth %.1f MiB)\n",
                 double(rss_kb[1000]) / 1024.0, double(rss_kb[10000]) / 1024.0, growth_mib);
    EXPECT_LT(growth_mib, 32.0);
}
