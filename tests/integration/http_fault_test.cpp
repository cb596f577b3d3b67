// The HTTP client against the fault-injecting server: every fault becomes one failed event with its
// cause; well-behaved streams finish with the right counts; nothing crashes or hangs.
#include "core/clock.h"
#include "core/error.h"
#include "engine/http/client.h"
#include "engine/http/metrics.h"
#include "support/fault_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <vector>

using namespace im::engine;
using namespace im::engine::http;
using im::test::fault_server;
using im::test::fault_server_options;

namespace {

struct outcome {
    std::vector<event> events;
    std::map<uint64_t, event> terminal;  // id -> finished / failed
    std::map<uint64_t, std::vector<event>> chunks;
    std::map<uint64_t, event> sent;
    int64_t t0_ns = 0;  // request i was intended at t0 + (i - 1) · spacing
};

// Submits `n` requests for `n_predict` tokens each and polls until all ended (or `limit_s` passed:
// then the test fails instead of hanging).
outcome run(http_engine & eng, int n, int n_predict, double limit_s = 60, int64_t spacing_ns = 0) {
    outcome o;
    const int64_t t0 = eng.now_ns();
    o.t0_ns = t0;
    for (int i = 0; i < n; ++i) {
        request r;
        r.id = uint64_t(i + 1);
        r.prompt_text = "Tell me about request " + std::to_string(i);
        r.n_predict = n_predict;
        r.t_intended_ns = t0 + i * spacing_ns;
        eng.submit(std::move(r));
    }
    const int64_t give_up = t0 + int64_t(limit_s * 1e9);
    while (o.terminal.size() < size_t(n) && eng.now_ns() < give_up) {
        std::vector<event> got;
        eng.poll(std::min(give_up, eng.now_ns() + 200'000'000), got);
        for (auto & e : got) {
            if (e.kind == event_kind::finished || e.kind == event_kind::failed) {
                EXPECT_EQ(o.terminal.count(e.id), 0u) << "two terminal events for request " << e.id;
                o.terminal[e.id] = e;
            } else if (e.kind == event_kind::tokens) {
                EXPECT_EQ(o.terminal.count(e.id), 0u) << "tokens after the end of request " << e.id;
                o.chunks[e.id].push_back(e);
            } else if (e.kind == event_kind::sent) {
                o.sent[e.id] = e;
            }
            o.events.push_back(std::move(e));
        }
    }
    EXPECT_EQ(o.terminal.size(), size_t(n)) << "requests still in flight after " << limit_s << " s";
    EXPECT_EQ(eng.in_flight(), 0u);
    return o;
}

client_options opts_for(const std::string & url, std::optional<api> a = api::completions) {
    client_options o;
    o.urls = {url};
    o.endpoint = a;
    o.request_timeout_ms = 20'000;
    return o;
}

void expect_all_failed(const outcome & o, failure cause, const std::string & message_part) {
    for (const auto & [id, e] : o.terminal) {
        EXPECT_EQ(e.kind, event_kind::failed) << "request " << id;
        EXPECT_EQ(e.cause, cause) << "request " << id << ": " << failure_name(e.cause) << " " << e.message;
        EXPECT_NE(e.message.find(message_part), std::string::npos) << e.message;
    }
}

}  // namespace

TEST(http_client, well_behaved_stream_on_every_endpoint) {
    fault_server_options so;
    so.chunk_interval_us = 1000;
    so.record_sends = true;
    fault_server srv(so);
    for (api a : {api::completions, api::chat, api::llama}) {
        http_engine eng(opts_for(srv.url("ok"), a));
        auto o = run(eng, 5, 16);
        for (const auto & [id, e] : o.terminal) {
            ASSERT_EQ(e.kind, event_kind::finished) << api_name(a) << ": " << failure_name(e.cause) << " " << e.message;
            EXPECT_EQ(e.n_tokens, 16);
            EXPECT_EQ(e.usage_completion_tokens, 16) << api_name(a);
            EXPECT_GT(e.usage_prompt_tokens, 0);
            ASSERT_EQ(o.chunks[id].size(), 16u) << api_name(a);
            ASSERT_TRUE(o.sent.count(id));
            int64_t last = o.sent[id].t_ns;
            for (size_t i = 0; i < o.chunks[id].size(); ++i) {
                const event & c = o.chunks[id][i];
                EXPECT_EQ(c.n_tokens, 1);
                EXPECT_EQ(c.text.rfind(std::to_string(i) + "@", 0), 0u) << c.text;
                // the chunk was observed after the server sent it (same steady clock)
                const int64_t t_sent = std::stoll(c.text.substr(c.text.find('@') + 1));
                EXPECT_GE(c.t_ns, t_sent);
                EXPECT_GE(c.t_ns, last);
                last = c.t_ns;
            }
            EXPECT_GE(e.t_ns, last);
            if (a == api::llama) {
                EXPECT_DOUBLE_EQ(e.server_ttft_ms, 1.25);
                EXPECT_DOUBLE_EQ(e.server_gen_tps, 500.0);
            } else {
                EXPECT_LT(e.server_ttft_ms, 0);
            }
        }
    }
    EXPECT_EQ(srv.sends().size(), 3u * 5u * 16u);
}

TEST(http_client, refused_connection) {
    http_engine eng(opts_for("http://127.0.0.1:" + std::to_string(fault_server::unused_port())));
    auto o = run(eng, 3, 4);
    expect_all_failed(o, failure::refused, "127.0.0.1");
}

TEST(http_client, status_500_with_json_error) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("error500")));
    auto o = run(eng, 3, 4);
    expect_all_failed(o, failure::http_status, "HTTP 500: injected failure");
}

TEST(http_client, status_429_with_retry_after) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("ratelimit"), api::chat));
    auto o = run(eng, 2, 4);
    expect_all_failed(o, failure::http_status, "HTTP 429 (Retry-After: 7): rate limited");
}

TEST(http_client, stream_cut_inside_chunked_body) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("cut")));
    auto o = run(eng, 3, 16);
    expect_all_failed(o, failure::cut_stream, "after 2 chunks");
    for (const auto & [id, e] : o.terminal) {
        EXPECT_EQ(o.chunks[id].size(), 2u);
        EXPECT_EQ(e.n_tokens, 2);  // what arrived before the cut is still reported
    }
}

TEST(http_client, stream_closed_cleanly_without_done) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("cut_eof"), api::llama));
    auto o = run(eng, 2, 16);
    expect_all_failed(o, failure::cut_stream, "without \"stop\": true");
}

TEST(http_client, stall_past_the_timeout) {
    fault_server srv;
    auto opts = opts_for(srv.url("stall"));
    opts.request_timeout_ms = 300;
    http_engine eng(opts);
    const int64_t t0 = im::clock::now_ns();
    auto o = run(eng, 3, 16, 20);
    expect_all_failed(o, failure::timeout, "--request-timeout 300 ms");
    EXPECT_LT(im::clock::now_ns() - t0, 10'000'000'000);  // ended by the timeout, not the test's limit
}

TEST(http_client, malformed_event) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("malformed")));
    auto o = run(eng, 2, 16);
    expect_all_failed(o, failure::malformed, "event data is not JSON");
}

TEST(http_client, error_event_mid_stream_llama_style) {
    fault_server srv;
    for (api a : {api::llama, api::chat}) {
        http_engine eng(opts_for(srv.url("error_event"), a));
        auto o = run(eng, 2, 16);
        expect_all_failed(o, failure::error_event, "The model produced output that does not match");
    }
}

TEST(http_client, sse_error_event) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("sse_error")));
    auto o = run(eng, 2, 16);
    expect_all_failed(o, failure::error_event, "overloaded");
}

TEST(http_client, twenty_megabyte_line_is_malformed_under_the_default_cap) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("hugeline")));
    auto o = run(eng, 1, 4);
    expect_all_failed(o, failure::malformed, "SSE line longer than 8388608 bytes");
}

TEST(http_client, twenty_megabyte_line_within_a_raised_cap) {
    fault_server srv;
    auto opts = opts_for(srv.url("hugeline"));
    opts.max_line_bytes = size_t(32) << 20;
    opts.keep_text = false;
    http_engine eng(opts);
    auto o = run(eng, 1, 4);
    ASSERT_EQ(o.terminal[1].kind, event_kind::finished) << o.terminal[1].message;
    EXPECT_EQ(o.chunks[1].size(), 1u);
}

TEST(http_client, slow_drip_stream_is_reassembled) {
    fault_server_options so;
    so.drip_interval_us = 50;
    fault_server srv(so);
    for (api a : {api::completions, api::chat, api::llama}) {
        http_engine eng(opts_for(srv.url("drip"), a));
        auto o = run(eng, 2, 6);
        for (const auto & [id, e] : o.terminal) {
            ASSERT_EQ(e.kind, event_kind::finished) << api_name(a) << ": " << e.message;
            EXPECT_EQ(e.n_tokens, 6);
            EXPECT_EQ(o.chunks[id].size(), 6u);
        }
    }
}

TEST(http_client, slow_drip_past_the_timeout_fails) {
    fault_server_options so;
    so.drip_interval_us = 2000;
    fault_server srv(so);
    auto opts = opts_for(srv.url("drip"));
    opts.request_timeout_ms = 200;
    http_engine eng(opts);
    auto o = run(eng, 1, 64);
    expect_all_failed(o, failure::timeout, "timed out");
}

TEST(http_client, non_streaming_answer_is_malformed) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("json")));
    auto o = run(eng, 1, 4);
    expect_all_failed(o, failure::malformed, "application/json, not an event stream");
}

TEST(http_client, mixed_faults_round_robin_with_per_endpoint_counts) {
    fault_server srv;
    client_options opts = opts_for(srv.url("ok"));
    opts.urls = {srv.url("ok"), srv.url("error500"), srv.url("cut")};
    opts.client_threads = 2;
    http_engine eng(opts);
    auto o = run(eng, 30, 4);
    std::map<int, std::map<std::string, int>> by_endpoint;
    for (const auto & [id, e] : o.terminal) {
        by_endpoint[e.endpoint][e.kind == event_kind::finished ? "finished" : failure_name(e.cause)]++;
        EXPECT_EQ(e.endpoint, int((id - 1) % 3));
    }
    EXPECT_EQ(by_endpoint[0]["finished"], 10);
    EXPECT_EQ(by_endpoint[1]["http_status"], 10);
    EXPECT_EQ(by_endpoint[2]["cut_stream"], 10);
    const auto counts = eng.counts();
    ASSERT_EQ(counts.size(), 3u);
    EXPECT_EQ(counts[0].url, srv.url("ok") + "/v1/completions");
    EXPECT_EQ(counts[0].finished, 10u);
    EXPECT_EQ(counts[1].failed, 10u);
    EXPECT_EQ(counts[2].started, 10u);
}

TEST(http_client, sends_no_earlier_than_intended) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("ok")));
    auto o = run(eng, 5, 2, 60, 50'000'000);  // one every 50 ms
    ASSERT_EQ(o.sent.size(), 5u);
    for (uint64_t id = 1; id <= 5; ++id) {
        const int64_t intended = o.t0_ns + int64_t(id - 1) * 50'000'000;
        EXPECT_GE(o.sent[id].t_ns, intended) << id;  // never early; lateness depends on the machine
    }
    for (const auto & [id, e] : o.terminal) EXPECT_EQ(e.kind, event_kind::finished);
}

TEST(http_client, cancel_all_fails_in_flight_and_pending) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("stall")));
    const int64_t t0 = eng.now_ns();
    for (int i = 0; i < 4; ++i) {
        request r;
        r.id = uint64_t(i + 1);
        r.prompt_text = "x";
        r.n_predict = 8;
        r.t_intended_ns = i < 2 ? t0 : t0 + 3'600'000'000'000;  // two now, two in an hour
        eng.submit(std::move(r));
    }
    std::vector<event> got;
    while (got.size() < 2 || std::count_if(got.begin(), got.end(), [](const event & e) { return e.kind == event_kind::tokens; }) < 4) {
        eng.poll(eng.now_ns() + 100'000'000, got);
        ASSERT_LT(eng.now_ns() - t0, 20'000'000'000);
    }
    eng.cancel_all();
    size_t cancelled = 0;
    while (eng.in_flight() > 0 && eng.now_ns() - t0 < 20'000'000'000) {
        std::vector<event> more;
        eng.poll(eng.now_ns() + 100'000'000, more);
        for (const auto & e : more) cancelled += e.kind == event_kind::failed && e.cause == failure::cancelled;
    }
    EXPECT_EQ(cancelled, 4u);
    EXPECT_EQ(eng.in_flight(), 0u);
}

TEST(http_client, rejects_zero_length_requests) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("ok")));
    auto o = run(eng, 1, 0);
    expect_all_failed(o, failure::rejected, "n_predict 0");
    EXPECT_EQ(srv.requests(), 0u);
}

TEST(http_client, poll_waits_until_the_deadline_when_idle) {
    fault_server srv;
    http_engine eng(opts_for(srv.url("ok")));
    std::vector<event> got;
    const int64_t t0 = eng.now_ns();
    eng.poll(t0 + 50'000'000, got);
    EXPECT_TRUE(got.empty());
    EXPECT_GE(eng.now_ns() - t0, 50'000'000);
}

TEST(http_client, bad_options_are_usage_errors) {
    auto expect_usage = [](client_options o, const std::string & part) {
        try {
            http_engine eng(std::move(o));
            FAIL() << "accepted: " << part;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage);
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
        }
    };
    expect_usage(client_options{}, "--url");
    client_options o;
    o.urls = {"ftp://x"};
    expect_usage(o, "--url 'ftp://x'");
    o.urls = {"http://h:1/v1/chat/completions"};
    o.endpoint = api::llama;
    expect_usage(o, "--endpoint");
    o.endpoint.reset();
    o.client_threads = 0;
    expect_usage(o, "--client-threads");
    o.client_threads = 1;
    o.headers = {"NoColon"};
    expect_usage(o, "--header 'NoColon'");
}

TEST(http_client, endpoint_urls) {
    std::optional<api> a;
    EXPECT_EQ(endpoint_url("http://h:8080", a), "http://h:8080/v1/completions");
    EXPECT_FALSE(a.has_value());
    EXPECT_EQ(endpoint_url("http://h:8080/prefix/", a), "http://h:8080/prefix/v1/completions");
    EXPECT_EQ(endpoint_url("https://h/v1/chat/completions", a), "https://h/v1/chat/completions");
    EXPECT_EQ(a, api::chat);
    a = api::llama;
    EXPECT_EQ(endpoint_url("http://h:8080/", a), "http://h:8080/completion");
}

TEST(http_client, server_metrics_before_and_after_a_level) {
    fault_server srv;
    const std::string metrics_url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/metrics";
    const auto before = scrape_metrics(metrics_url);
    EXPECT_EQ(before.bad_lines, 0u);
    EXPECT_EQ(before.types.at("faultserver:requests_total"), "counter");
    {
        http_engine eng(opts_for(srv.url("ok")));
        auto o = run(eng, 4, 8);
    }
    const auto after = scrape_metrics(metrics_url);
    const auto d = diff_metrics(before.samples, after.samples);
    EXPECT_DOUBLE_EQ(d.at("faultserver:requests_total"), 4);
    EXPECT_DOUBLE_EQ(d.at("faultserver:chunks_sent_total"), 32);
    try {
        scrape_metrics("http://127.0.0.1:" + std::to_string(srv.port()) + "/nothing");
        FAIL();
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
    }
    try {
        scrape_metrics("http://127.0.0.1:" + std::to_string(fault_server::unused_port()) + "/metrics");
        FAIL();
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("--metrics-url"), std::string::npos) << e.what();
    }
}

TEST(http_client, credentials_in_urls_are_redacted) {
    EXPECT_EQ(redact_url("http://user:secret@h:8080/v1/completions"), "http://***@h:8080/v1/completions");
    EXPECT_EQ(redact_url("https://h/v1/completions?x=a@b"), "https://h/v1/completions?x=a@b");
    EXPECT_EQ(redact_url("http://h:1"), "http://h:1");
    client_options o;
    o.urls = {"http://user:secret@127.0.0.1:1"};
    o.api_key = "sk-never-shown";
    http_engine eng(o);
    EXPECT_EQ(eng.describe().find("secret"), std::string::npos) << eng.describe();
    EXPECT_EQ(eng.describe().find("sk-never-shown"), std::string::npos);
    EXPECT_EQ(eng.counts()[0].url.find("secret"), std::string::npos);
}

TEST(http_client, api_key_goes_out_as_a_bearer_header_and_nowhere_else) {
    fault_server srv;
    for (const std::string mode : {"ok", "error500"}) {
        auto o = opts_for(srv.url(mode));
        o.api_key = "sk-test-1234567890";
        o.headers = {"X-Bench: infermeter"};
        http_engine eng(o);
        auto r = run(eng, 1, 2);
        const auto h = srv.last_headers();
        EXPECT_NE(std::find(h.begin(), h.end(), "Authorization: Bearer sk-test-1234567890"), h.end());
        EXPECT_NE(std::find(h.begin(), h.end(), "X-Bench: infermeter"), h.end());
        EXPECT_EQ(std::find(h.begin(), h.end(), "Expect: 100-continue"), h.end());
        for (const auto & e : r.events) {
            EXPECT_EQ(e.message.find("sk-test"), std::string::npos) << e.message;
            EXPECT_EQ(e.text.find("sk-test"), std::string::npos);
        }
        EXPECT_EQ(eng.describe().find("sk-test"), std::string::npos);
    }
    auto refused = opts_for("http://127.0.0.1:" + std::to_string(fault_server::unused_port()));
    refused.api_key = "sk-test-1234567890";
    http_engine eng(refused);
    for (const auto & e : run(eng, 1, 2).events) EXPECT_EQ(e.message.find("sk-test"), std::string::npos) << e.message;
}

TEST(http_client, token_id_prompts) {
    fault_server srv;
    for (api a : {api::completions, api::llama, api::chat}) {
        http_engine eng(opts_for(srv.url("ok"), a));
        request r;
        r.id = 1;
        r.prompt_tokens = {5, 6, 7, 8, 9};
        r.n_predict = 3;
        r.t_intended_ns = eng.now_ns();
        eng.submit(std::move(r));
        std::vector<event> got;
        const int64_t give_up = eng.now_ns() + 20'000'000'000;
        while (eng.in_flight() > 0 && eng.now_ns() < give_up) eng.poll(eng.now_ns() + 100'000'000, got);
        const event & end = got.back();
        if (a == api::chat) {
            EXPECT_EQ(end.cause, failure::rejected);
            EXPECT_NE(end.message.find("--vocab"), std::string::npos);
        } else {
            ASSERT_EQ(end.kind, event_kind::finished) << end.message;
            EXPECT_EQ(end.usage_prompt_tokens, 5);  // the fault server counts the ids it got
        }
    }
}

TEST(http_client, token_prompts_preferred_when_asked) {
    fault_server srv;
    for (bool prefer : {false, true}) {
        auto o = opts_for(srv.url("ok"), api::llama);
        o.prefer_token_ids = prefer;
        http_engine eng(o);
        request r;
        r.id = 1;
        r.prompt_tokens = {5, 6, 7};
        r.prompt_text = "a text prompt of many bytes";  // the fault server counts 1 + bytes / 4 for text
        r.n_predict = 2;
        r.t_intended_ns = eng.now_ns();
        eng.submit(std::move(r));
        std::vector<event> got;
        const int64_t give_up = eng.now_ns() + 20'000'000'000;
        while (eng.in_flight() > 0 && eng.now_ns() < give_up) eng.poll(eng.now_ns() + 100'000'000, got);
        ASSERT_EQ(got.back().kind, event_kind::finished) << got.back().message;
        EXPECT_EQ(got.back().usage_prompt_tokens, prefer ? 3 : 7);
    }
}

// TLS: a self-signed server (openssl s_server) is refused by default and reached with verification off.
TEST(http_client, tls_verification_is_on_by_default) {
    const std::string openssl = "/usr/bin/openssl";
    if (!std::filesystem::exists(openssl)) GTEST_SKIP() << "no " << openssl;
    const auto dir = std::filesystem::temp_directory_path() / ("infermeter-tls-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string key = (dir / "key.pem").string(), cert = (dir / "cert.pem").string();
    const std::string gen = openssl + " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + key + " -out " + cert +
                            " -days 1 -subj /CN=localhost >/dev/null 2>&1";
    ASSERT_EQ(std::system(gen.c_str()), 0);
    const int port = fault_server::unused_port();
    const pid_t pid = fork();
    if (pid == 0) {
        const int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        execl(openssl.c_str(), "openssl", "s_server", "-accept", std::to_string(port).c_str(), "-cert", cert.c_str(),
              "-key", key.c_str(), "-www", "-quiet", static_cast<char *>(nullptr));
        _exit(127);
    }
    struct stop_server {
        pid_t pid;
        ~stop_server() {
            kill(pid, SIGTERM);
            waitpid(pid, nullptr, 0);
        }
    } guard{pid};
    // wait until it accepts connections
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        up = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0;
        close(fd);
        if (!up) usleep(50'000);
    }
    ASSERT_TRUE(up) << "openssl s_server did not start";
    const std::string url = "https://127.0.0.1:" + std::to_string(port);
    {
        http_engine eng(opts_for(url));
        auto o = run(eng, 1, 2, 30);
        expect_all_failed(o, failure::refused, "TLS: ");
    }
    {
        auto opts = opts_for(url);
        opts.verify_tls = false;  // --insecure: the handshake succeeds; s_server then never answers a POST
        opts.request_timeout_ms = 1500;
        http_engine eng(opts);
        auto o = run(eng, 1, 2, 30);
        for (const auto & [id, e] : o.terminal) {
            EXPECT_EQ(e.kind, event_kind::failed);
            EXPECT_NE(e.cause, failure::refused) << e.message;
            EXPECT_EQ(e.message.find("TLS"), std::string::npos) << e.message;
        }
    }
    std::filesystem::remove_all(dir);
}
