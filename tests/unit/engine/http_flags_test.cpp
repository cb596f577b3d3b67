#include "cli/http_flags.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

using namespace im::cli;

namespace {

http_flags parse(std::vector<std::string> args) {
    CLI::App app("t");
    http_flags f;
    add_http_flags(&app, f);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    return f;
}

}  // namespace

TEST(http_flags, defaults_and_lists) {
    auto f = parse({"--url", "http://a:1,http://b:2", "--url", "http://c:3"});
    ASSERT_EQ(f.urls.size(), 3u);
    const auto o = client_options_from(f, 1);
    EXPECT_FALSE(o.endpoint.has_value());
    EXPECT_TRUE(o.body.ignore_eos);
    EXPECT_TRUE(o.body.include_usage);
    EXPECT_TRUE(o.verify_tls);
    EXPECT_EQ(o.request_timeout_ms, 600'000);
    EXPECT_EQ(o.connect_timeout_ms, 10'000);
    EXPECT_EQ(o.version, im::engine::http::http_version::any);
    EXPECT_FALSE(o.prefer_token_ids);
    EXPECT_EQ(o.client_threads, 1);  // auto, one stream
    EXPECT_EQ(o.spread, im::engine::http::balance::round_robin);
    EXPECT_EQ(metrics_url_from(f), "http://a:1/metrics");
}

// --client-threads auto: one thread per 256 streams, at most half the cores, at least one.
TEST(http_flags, auto_client_threads_follow_the_streams) {
    using im::engine::http::auto_client_threads;
    const int half = std::max(1, int(std::thread::hardware_concurrency()) / 2);
    EXPECT_EQ(auto_client_threads(0), 1);
    EXPECT_EQ(auto_client_threads(256), 1);
    EXPECT_EQ(auto_client_threads(257), std::min(2, half));
    EXPECT_EQ(auto_client_threads(1000), std::min(4, half));
    EXPECT_EQ(auto_client_threads(1'000'000), half);
    auto f = parse({"--url", "http://a:1", "--balance", "least-outstanding"});
    EXPECT_EQ(client_options_from(f, 1000).client_threads, std::min(4, half));
    EXPECT_EQ(client_options_from(f, 1000).spread, im::engine::http::balance::least_outstanding);
}

TEST(http_flags, everything_set) {
    setenv("IM_TEST_KEY", "sk-xyz", 1);
    auto f = parse({"--url", "https://h/prefix", "--endpoint", "chat", "--model", "m", "--api-key-env", "IM_TEST_KEY",
                    "--header", "X-A: 1", "--header", "X-B: 2", "--client-threads", "4", "--http2",
                    "--request-timeout", "1.5", "--connect-timeout", "0.25", "--insecure", "--no-ignore-eos",
                    "--no-usage", "--temperature", "-1", "--max-line-bytes", "1000", "--metrics-url", "none", "--token-prompts"});
    const auto o = client_options_from(f, 1);
    EXPECT_EQ(o.endpoint, im::engine::http::api::chat);
    EXPECT_EQ(o.body.model, "m");
    EXPECT_EQ(o.api_key, "sk-xyz");
    EXPECT_EQ(o.headers.size(), 2u);
    EXPECT_EQ(o.client_threads, 4);
    EXPECT_EQ(o.version, im::engine::http::http_version::http2);
    EXPECT_EQ(o.request_timeout_ms, 1500);
    EXPECT_EQ(o.connect_timeout_ms, 250);
    EXPECT_FALSE(o.verify_tls);
    EXPECT_FALSE(o.body.ignore_eos);
    EXPECT_FALSE(o.body.include_usage);
    EXPECT_LT(o.body.temperature, 0);
    EXPECT_EQ(o.max_line_bytes, 1000u);
    EXPECT_TRUE(o.prefer_token_ids);
    EXPECT_EQ(metrics_url_from(f), "");
    unsetenv("IM_TEST_KEY");
}

TEST(http_flags, usage_errors_name_the_flag) {
    auto expect_usage = [](std::vector<std::string> args, const std::string & part) {
        try {
            client_options_from(parse(std::move(args)), 1);
            FAIL() << "accepted: " << part;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage);
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
        }
    };
    unsetenv("IM_TEST_MISSING");
    expect_usage({"--url", "http://a", "--api-key-env", "IM_TEST_MISSING"}, "--api-key-env IM_TEST_MISSING");
    expect_usage({"--url", "http://a", "--http2", "--http1.1"}, "--http2");
    expect_usage({"--url", "http://a", "--request-timeout", "0"}, "--request-timeout");
    expect_usage({"--url", "http://a", "--endpoint", "foo"}, "--endpoint");
    expect_usage({"--url", "http://a", "--balance", "random"}, "--balance 'random'");
    expect_usage({"--url", "http://a", "--client-threads", "0"}, "--client-threads");
    expect_usage({"--url", "http://a", "--client-threads", "1,2"}, "--client-threads");
    expect_usage({"--url", "http://a", "--client-threads", "many"}, "--client-threads");
}
