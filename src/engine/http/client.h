#pragma once

#include "engine/http/protocol.h"
#include "engine/http/sse.h"
#include "engine/request.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The HTTP implementation of the request-level engine (DESIGN §2.5): streamed completions from any
// OpenAI-compatible server or llama-server's /completion, on libcurl's multi interface driven by
// epoll. Each client thread owns one curl multi handle, its sockets and its connection pool, and
// serves hundreds of streams; requests are spread over the threads round-robin.
namespace im::engine::http {

enum class http_version { any, http1, http2 };  // http2 over http:// uses prior knowledge

// How requests are spread over several --url (docs/scale-out.md): in turn at submission, or at send
// time to the endpoint with the fewest requests in flight from this client (ties in turn).
enum class balance { round_robin, least_outstanding };
// "round-robin" | "least-outstanding"; throws im::error (usage) naming --balance otherwise.
balance parse_balance(std::string_view name);
const char * balance_name(balance b);

// --client-threads auto: one thread per 256 concurrent streams (one thread drains a burst of a few
// hundred chunks well within a millisecond; 1,000 streams on one thread did not: issue 15), at most
// half the cores (the rest is the server's when it runs here, and the driver's), at least one.
int auto_client_threads(int max_streams);

struct client_options {
    std::vector<std::string> urls;        // --url; base URLs (the endpoint's path is appended) or full ones
    std::optional<api> endpoint;          // --endpoint; unset: inferred from the URL's path, else completions
    body_options body;                    // --model, ignore-EOS, usage, temperature
    std::vector<std::string> headers;     // --header "Name: value"
    std::string api_key;                  // Bearer token from --api-key-env; never printed, logged or stored
    int client_threads = 1;               // --client-threads (auto_client_threads for "auto")
    balance spread = balance::round_robin; // --balance
    http_version version = http_version::any;
    int64_t request_timeout_ms = 600'000; // --request-timeout: whole answer, first byte to last
    int64_t connect_timeout_ms = 10'000;  // --connect-timeout
    bool verify_tls = true;               // peer and host verification (curl's default)
    size_t max_line_bytes = sse_parser::default_max_line_bytes;  // a longer SSE line is malformed
    bool keep_text = true;                // put each chunk's text into its tokens event
    bool prefer_token_ids = false;        // --token-prompts: send prompt_tokens even when text exists
                                          // (exact lengths when the server has the same vocabulary)
};

// The client's own cost (DESIGN §2.5: infermeter measures its dispatch lag and CPU use).
struct client_stats {
    int64_t cpu_ns = 0;           // CPU time of the client threads (not the caller's)
    uint64_t bytes_received = 0;  // response body bytes
    uint64_t events_parsed = 0;   // SSE events
    uint64_t requests_started = 0;
};

// Requests, finishes and failures per --url (for the per-endpoint breakdown).
struct endpoint_counts {
    std::string url;  // the full URL requests go to (credentials redacted)
    uint64_t started = 0;
    uint64_t finished = 0;
    uint64_t failed = 0;
    int64_t peak_outstanding = 0;  // most requests in flight to it at once from this client
};

class http_engine : public request_engine {
  public:
    // Validates the URLs and options (im::error, usage, naming the flag) and starts the client threads.
    explicit http_engine(client_options o);
    ~http_engine() override;
    http_engine(const http_engine &) = delete;
    http_engine & operator=(const http_engine &) = delete;

    int64_t now_ns() const override;
    // Thread-safe. The request goes to the next URL round-robin and is sent at t_intended_ns (or at
    // once if that has passed). The prompt goes as text, or as token ids when it has no text (not on
    // the chat endpoint). A request with n_predict < 1 fails with cause rejected.
    void submit(request r) override;
    // Thread-safe with submit (one poller at a time). Events of one call are in time order.
    void poll(int64_t deadline_ns, std::vector<event> & out) override;
    size_t in_flight() const override;
    void cancel_all() override;
    std::string describe() const override;

    // The full URLs in --url order; event::endpoint indexes this list.
    const std::vector<std::string> & endpoints() const { return urls_; }
    api endpoint_api() const { return api_; }
    std::vector<endpoint_counts> counts() const;
    void reset_peaks();  // peak_outstanding starts again from what is in flight now
    client_stats stats() const;

    struct worker;  // one client thread (client.cpp)

  private:
    void deliver(std::vector<event> & batch);  // called by workers

    client_options opts_;
    api api_ = api::completions;
    std::vector<std::string> urls_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::atomic<uint64_t> next_submit_{0};
    std::atomic<int64_t> in_flight_{0};

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<event> ready_;

    struct shared_state;
    std::unique_ptr<shared_state> shared_;
};

// One blocking exchange without streaming, for what is not load: a GET (`post_json` empty) or a POST of
// `post_json` as application/json. `headers` and a Bearer `api_key` go with it (the key is never printed).
// The body is kept up to 64 MiB. `error` is curl's reason when no answer came (then ok is false).
struct plain_answer {
    bool ok = false;
    long status = 0;
    std::string body;
    std::string error;
};
plain_answer fetch_once(const std::string & url, const std::string & post_json, int64_t timeout_ms,
                        const std::vector<std::string> & headers = {}, const std::string & api_key = "");

// "http://host:8080" + endpoint → "http://host:8080/v1/completions"; a URL that already ends in a
// known endpoint path is kept (and sets the endpoint when none was given). Throws im::error (usage)
// naming --url for anything but http:// and https:// URLs, and --endpoint on a conflict.
std::string endpoint_url(const std::string & url, std::optional<api> & endpoint);
// The URL with any user:password@ replaced by ***@ (for reports and messages).
std::string redact_url(const std::string & url);

}  // namespace im::engine::http
