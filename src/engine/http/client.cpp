#include "engine/http/client.h"

#include "core/clock.h"
#include "core/error.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <queue>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace im::engine::http {

namespace {

constexpr size_t max_error_body_bytes = 64 * 1024;

void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw_runtime("libcurl failed to initialize");
    });
}

// Thousands of streams need thousands of sockets: lift the soft descriptor limit to the hard one.
void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool iequals_prefix(std::string_view line, std::string_view prefix) {
    if (line.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != prefix[i]) return false;
    }
    return true;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

std::string endpoint_url(const std::string & url, std::optional<api> & endpoint) {
    if (!(url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)) {
        throw_usage("--url '{}' is not an http:// or https:// URL", url);
    }
    const size_t host_start = url.find("//") + 2;
    if (host_start >= url.size() || url[host_start] == '/') throw_usage("--url '{}' has no host", url);
    std::string base = url;
    const size_t query = base.find_first_of("?#");
    if (query != std::string::npos) {
        throw_usage("--url '{}' has a query or fragment: give the server's base URL (the endpoint path "
                    "is added from --endpoint)",
                    url);
    }
    for (api a : {api::chat, api::completions, api::llama}) {  // chat first: it ends in /completions too
        if (ends_with(base, api_path(a))) {
            if (endpoint && *endpoint != a) {
                throw_usage("--url '{}' names the {} endpoint but --endpoint is {}: drop the path from --url or "
                            "change --endpoint",
                            url, api_name(a), api_name(*endpoint));
            }
            endpoint = a;
            return base;
        }
    }
    while (base.size() > host_start && base.back() == '/') base.pop_back();
    return base + api_path(endpoint.value_or(api::completions));
}

// One in-flight request on one client thread.
struct transfer {
    request req;
    int endpoint = 0;
    CURL * easy = nullptr;
    http_engine::worker * owner = nullptr;
    std::string body;
    sse_parser parser;
    std::vector<sse_event> scratch;
    long status = 0;
    std::string retry_after;
    std::string content_type;
    std::string error_body;
    bool done_seen = false;
    bool finish_seen = false;
    int64_t t_end_ns = 0;        // when the terminal event ([DONE] / finish) arrived
    failure cause = failure::none;
    std::string message;
    int n_chunks = 0;            // content chunks delivered
    int n_tokens = 0;            // tokens counted from chunks (OpenAI: 1 per chunk; llama: token ids)
    int pending_tokens = 0;      // token ids that came with empty content, credited to the next chunk
    int usage_completion = -1;
    int usage_prompt = -1;
    double server_ttft_ms = -1;
    double server_gen_tps = -1;
    char errbuf[CURL_ERROR_SIZE] = {0};

    explicit transfer(size_t max_line) : parser(max_line) {}
};

struct http_engine::shared_state {
    curl_slist * headers = nullptr;  // shared read-only by every transfer
    // Requests in flight per endpoint, across the client threads (--balance least-outstanding reads
    // them at send time), and the most there were at once.
    std::vector<std::atomic<int64_t>> outstanding, peak_outstanding;
    std::atomic<uint64_t> next_tie{0};
    explicit shared_state(size_t n_endpoints) : outstanding(n_endpoints), peak_outstanding(n_endpoints) {}
    ~shared_state() { curl_slist_free_all(headers); }

    // The endpoint with the fewest requests in flight; ties go in turn.
    int least_outstanding() {
        const size_t n = outstanding.size();
        const size_t first = size_t(next_tie.fetch_add(1, std::memory_order_relaxed) % n);
        size_t best = first;
        for (size_t k = 1; k < n; ++k) {
            const size_t e = (first + k) % n;
            if (outstanding[e].load(std::memory_order_relaxed) < outstanding[best].load(std::memory_order_relaxed)) best = e;
        }
        return int(best);
    }
    void began(int endpoint) {
        const int64_t now = outstanding[size_t(endpoint)].fetch_add(1, std::memory_order_relaxed) + 1;
        auto & peak = peak_outstanding[size_t(endpoint)];
        int64_t seen = peak.load(std::memory_order_relaxed);
        while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
        }
    }
    void ended(int endpoint) { outstanding[size_t(endpoint)].fetch_sub(1, std::memory_order_relaxed); }
};

struct http_engine::worker {
    http_engine * engine = nullptr;
    const client_options * opts = nullptr;
    api endpoint_api = api::completions;
    const std::vector<std::string> * urls = nullptr;
    curl_slist * headers = nullptr;
    shared_state * shared = nullptr;

    int epfd = -1, wakefd = -1, timerfd = -1;
    CURLM * multi = nullptr;
    int64_t curl_deadline_ns = -1;  // from curl's timer callback; -1 = none
    // When the bytes being parsed were read: taken in the write callback, after libcurl's recv()
    // returned them, so never earlier than their arrival. (The time epoll_wait returned is not: bytes
    // that land while other sockets are served are read in the same pass.)
    int64_t t_read_ns = 0;

    std::mutex inbox_mu;
    std::vector<std::pair<request, int>> inbox;  // (request, endpoint)
    bool cancel_requested = false;
    std::atomic<bool> stop{false};

    struct later {
        bool operator()(const std::unique_ptr<transfer> & a, const std::unique_ptr<transfer> & b) const {
            return a->req.t_intended_ns > b->req.t_intended_ns;
        }
    };
    std::vector<std::unique_ptr<transfer>> pending;  // a heap on t_intended_ns
    std::unordered_map<CURL *, std::unique_ptr<transfer>> active;
    std::vector<CURL *> spare_handles;
    std::vector<event> outbox;

    std::atomic<uint64_t> bytes_received{0}, events_parsed{0}, started{0};
    std::vector<std::atomic<uint64_t>> per_endpoint_started, per_endpoint_finished, per_endpoint_failed;
    std::thread thread;

    worker(http_engine * e, const client_options * o, api a, const std::vector<std::string> * u, shared_state * sh)
        : engine(e), opts(o), endpoint_api(a), urls(u), headers(sh->headers), shared(sh), per_endpoint_started(u->size()),
          per_endpoint_finished(u->size()), per_endpoint_failed(u->size()) {
        epfd = epoll_create1(EPOLL_CLOEXEC);
        wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        multi = curl_multi_init();
        if (epfd < 0 || wakefd < 0 || timerfd < 0 || !multi) throw_runtime("HTTP client: cannot create its event loop");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wakefd;
        epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev);
        ev.data.fd = timerfd;
        epoll_ctl(epfd, EPOLL_CTL_ADD, timerfd, &ev);
        curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &worker::on_socket);
        curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &worker::on_timer);
        curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);  // HTTP/1.1: one connection per stream
        thread = std::thread([this] { run(); });
    }

    ~worker() {
        stop = true;
        wake();
        if (thread.joinable()) thread.join();
        for (auto & [easy, t] : active) {
            curl_multi_remove_handle(multi, easy);
            curl_easy_cleanup(easy);
        }
        for (CURL * h : spare_handles) curl_easy_cleanup(h);
        if (multi) curl_multi_cleanup(multi);
        for (int fd : {epfd, wakefd, timerfd}) {
            if (fd >= 0) close(fd);
        }
    }

    void wake() {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t n = write(wakefd, &one, sizeof(one));
    }

    void post(request r, int endpoint) {
        {
            std::lock_guard lk(inbox_mu);
            inbox.emplace_back(std::move(r), endpoint);
        }
        wake();
    }

    void post_cancel() {
        {
            std::lock_guard lk(inbox_mu);
            cancel_requested = true;
        }
        wake();
    }

    // --- curl callbacks -------------------------------------------------------------------------

    static int on_socket(CURL *, curl_socket_t s, int what, void * userp, void *) {
        auto * w = static_cast<worker *>(userp);
        epoll_event ev{};
        ev.data.fd = s;
        if (what == CURL_POLL_REMOVE) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, nullptr);
            return 0;
        }
        ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev);
        return 0;
    }

    static int on_timer(CURLM *, long timeout_ms, void * userp) {
        auto * w = static_cast<worker *>(userp);
        w->curl_deadline_ns = timeout_ms < 0 ? -1 : clock::now_ns() + int64_t(timeout_ms) * 1'000'000;
        return 0;
    }

    static size_t on_header(char * data, size_t size, size_t n, void * userp) {
        auto * t = static_cast<transfer *>(userp);
        const std::string_view line(data, size * n);
        if (line.rfind("HTTP/", 0) == 0) {  // a new response (after 100 Continue or a redirect)
            t->retry_after.clear();
            t->content_type.clear();
            const size_t sp = line.find(' ');
            if (sp != std::string_view::npos) t->status = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
        } else if (iequals_prefix(line, "retry-after:")) {
            t->retry_after = trim(line.substr(12));
        } else if (iequals_prefix(line, "content-type:")) {
            t->content_type = trim(line.substr(13));
        }
        return size * n;
    }

    static size_t on_write(char * data, size_t size, size_t n, void * userp) {
        auto * t = static_cast<transfer *>(userp);
        const size_t len = size * n;
        worker & w = *t->owner;
        w.t_read_ns = clock::now_ns();
        w.bytes_received.fetch_add(len, std::memory_order_relaxed);
        if (t->status == 0) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        if (t->status < 200 || t->status >= 300) {  // an error answer: keep (some of) its body for the message
            const size_t room = max_error_body_bytes - std::min(max_error_body_bytes, t->error_body.size());
            t->error_body.append(data, std::min(room, len));
            return len;
        }
        if (t->cause != failure::none) return 0;
        if (t->parser.n_bytes() == 0 && !t->content_type.empty() &&
            !iequals_prefix(t->content_type, "text/event-stream")) {
            return w.fail_now(*t, failure::malformed,
                              fmt::format("the server answered {}, not an event stream (does the endpoint support "
                                          "\"stream\": true?)",
                                          t->content_type));
        }
        t->scratch.clear();
        t->parser.feed(std::string_view(data, len), t->scratch);
        for (const sse_event & e : t->scratch) {
            w.events_parsed.fetch_add(1, std::memory_order_relaxed);
            if (!w.on_event(*t, e)) return 0;
        }
        if (t->parser.failed()) {
            return w.fail_now(*t, failure::malformed,
                              fmt::format("{} after {} chunks (raise --max-line-bytes if the server means it)",
                                          t->parser.error(), t->n_chunks));
        }
        return len;
    }

    // --- stream handling ------------------------------------------------------------------------

    size_t fail_now(transfer & t, failure cause, std::string message) {
        t.cause = cause;
        t.message = std::move(message);
        return 0;  // curl aborts the transfer (CURLE_WRITE_ERROR); on_done reports the cause
    }

    event make_event(const transfer & t, event_kind kind, int64_t t_ns) const {
        event e;
        e.id = t.req.id;
        e.kind = kind;
        e.t_ns = t_ns;
        e.endpoint = t.endpoint;
        return e;
    }

    // Returns false when the stream must stop (a failure was recorded).
    bool on_event(transfer & t, const sse_event & e) {
        stream_chunk c;
        std::string why;
        if (!interpret_event(endpoint_api, e, c, why)) {
            fail_now(t, failure::malformed, fmt::format("{} (event {} of the stream)", why, t.parser.n_events()));
            return false;
        }
        if (c.is_error) {
            fail_now(t, failure::error_event,
                     c.error_message.empty() ? std::string("error event without a message") : c.error_message);
            return false;
        }
        if (c.usage_completion_tokens >= 0) t.usage_completion = c.usage_completion_tokens;
        if (c.usage_prompt_tokens >= 0) t.usage_prompt = c.usage_prompt_tokens;
        if (c.timings_prompt_ms >= 0) t.server_ttft_ms = c.timings_prompt_ms;
        if (c.timings_predicted_per_second >= 0) t.server_gen_tps = c.timings_predicted_per_second;
        if (!c.text.empty()) {
            event ev = make_event(t, event_kind::tokens, t_read_ns);
            ev.n_tokens = (c.n_token_ids >= 0 ? c.n_token_ids : 1) + t.pending_tokens;
            if (ev.n_tokens < 1) ev.n_tokens = 1;  // text arrived: at least one token made it
            t.pending_tokens = 0;
            if (opts->keep_text) ev.text = std::move(c.text);
            t.n_tokens += ev.n_tokens;
            ++t.n_chunks;
            outbox.push_back(std::move(ev));
        } else if (c.n_token_ids > 0) {
            t.pending_tokens += c.n_token_ids;  // e.g. a token held back until its UTF-8 completes
        }
        if ((c.done || c.finished) && t.t_end_ns == 0) t.t_end_ns = t_read_ns;
        t.done_seen = t.done_seen || c.done;
        t.finish_seen = t.finish_seen || c.finished;
        return true;
    }

    void start(std::unique_ptr<transfer> t) {
        CURL * easy = nullptr;
        if (!spare_handles.empty()) {
            easy = spare_handles.back();
            spare_handles.pop_back();
            curl_easy_reset(easy);
        } else {
            easy = curl_easy_init();
        }
        const int64_t now = clock::now_ns();
        if (!easy) {
            finish_failed(*t, now, failure::engine_error, "libcurl could not create a transfer");
            return;
        }
        t->easy = easy;
        t->owner = this;
        if (opts->spread == balance::least_outstanding) t->endpoint = shared->least_outstanding();
        // Text when there is text; else token ids (exact lengths, no re-tokenizing by the server).
        const bool ids = !t->req.prompt_tokens.empty() && endpoint_api != api::chat &&
                         (t->req.prompt_text.empty() || opts->prefer_token_ids);
        t->body = !ids
                      ? request_body(endpoint_api, opts->body, t->req.prompt_text, t->req.n_predict)
                      : request_body(endpoint_api, opts->body, t->req.prompt_tokens, t->req.n_predict);
        curl_easy_setopt(easy, CURLOPT_URL, (*urls)[size_t(t->endpoint)].c_str());
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body.c_str());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(t->body.size()));
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &worker::on_write);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &worker::on_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
        curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, long(opts->request_timeout_ms));
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, long(opts->connect_timeout_ms));
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, opts->verify_tls ? 1L : 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, opts->verify_tls ? 2L : 0L);
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
        const bool plain = (*urls)[size_t(t->endpoint)].rfind("http://", 0) == 0;
        switch (opts->version) {
            case http_version::any: break;
            case http_version::http1: curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_1_1)); break;
            case http_version::http2:
                curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                                 long(plain ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS));
                curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);  // share one connection instead of opening more
                break;
        }
        started.fetch_add(1, std::memory_order_relaxed);
        per_endpoint_started[size_t(t->endpoint)].fetch_add(1, std::memory_order_relaxed);
        outbox.push_back(make_event(*t, event_kind::sent, now));
        if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
            spare_handles.push_back(easy);
            t->easy = nullptr;
            finish_failed(*t, now, failure::engine_error, "libcurl refused the transfer");
            return;
        }
        shared->began(t->endpoint);
        active.emplace(easy, std::move(t));
    }

    void finish_failed(const transfer & t, int64_t t_ns, failure cause, std::string message) {
        event e = make_event(t, event_kind::failed, t_ns);
        e.cause = cause;
        e.message = std::move(message);
        e.n_tokens = t.n_tokens;
        e.usage_completion_tokens = t.usage_completion;
        e.usage_prompt_tokens = t.usage_prompt;
        per_endpoint_failed[size_t(t.endpoint)].fetch_add(1, std::memory_order_relaxed);
        outbox.push_back(std::move(e));
    }

    void on_done(CURL * easy, CURLcode res) {
        auto it = active.find(easy);
        if (it == active.end()) return;
        std::unique_ptr<transfer> t = std::move(it->second);
        active.erase(it);
        shared->ended(t->endpoint);
        curl_multi_remove_handle(multi, easy);
        spare_handles.push_back(easy);
        const int64_t now = clock::now_ns();
        const std::string curl_text = t->errbuf[0] ? std::string(t->errbuf) : std::string(curl_easy_strerror(res));
        if (t->cause != failure::none) {
            finish_failed(*t, now, t->cause, t->message);
        } else if (t->status >= 300 || (t->status > 0 && t->status < 200)) {
            std::string msg = fmt::format("HTTP {}", t->status);
            if (!t->retry_after.empty()) msg += fmt::format(" (Retry-After: {})", t->retry_after);
            const std::string text = error_text(t->error_body);
            if (!text.empty()) msg += ": " + text;
            finish_failed(*t, now, failure::http_status, msg);
        } else if (res != CURLE_OK) {
            failure cause = failure::cut_stream;
            std::string msg = curl_text;
            switch (res) {
                case CURLE_COULDNT_CONNECT:
                case CURLE_COULDNT_RESOLVE_HOST:
                case CURLE_COULDNT_RESOLVE_PROXY:
                    cause = failure::refused;
                    break;
                case CURLE_SSL_CONNECT_ERROR:
                case CURLE_PEER_FAILED_VERIFICATION:
                case CURLE_SSL_CERTPROBLEM:
                case CURLE_SSL_CACERT_BADFILE:
                    cause = failure::refused;
                    msg = "TLS: " + curl_text;
                    break;
                case CURLE_OPERATION_TIMEDOUT:
                    cause = failure::timeout;
                    msg = fmt::format("{} (--request-timeout {} ms, --connect-timeout {} ms); {} chunks received",
                                      curl_text, opts->request_timeout_ms, opts->connect_timeout_ms, t->n_chunks);
                    break;
                case CURLE_WEIRD_SERVER_REPLY:
                case CURLE_BAD_CONTENT_ENCODING:
                case CURLE_UNSUPPORTED_PROTOCOL:
                    cause = failure::malformed;
                    break;
                default:
                    cause = failure::cut_stream;
                    msg = fmt::format("{} after {} chunks", curl_text, t->n_chunks);
                    break;
            }
            finish_failed(*t, now, cause, msg);
        } else if (!t->done_seen && !t->finish_seen) {
            finish_failed(*t, now, t->parser.failed() ? failure::malformed : failure::cut_stream,
                          fmt::format("the stream ended after {} chunks without {}{}", t->n_chunks,
                                      endpoint_api == api::llama ? "\"stop\": true" : "[DONE] or a finish_reason",
                                      t->parser.mid_event() ? ", inside an event" : ""));
        } else {
            event e = make_event(*t, event_kind::finished, t->t_end_ns ? t->t_end_ns : now);
            e.n_tokens = t->n_tokens + t->pending_tokens;
            e.usage_completion_tokens = t->usage_completion;
            e.usage_prompt_tokens = t->usage_prompt;
            e.server_ttft_ms = t->server_ttft_ms;
            e.server_gen_tps = t->server_gen_tps;
            per_endpoint_finished[size_t(t->endpoint)].fetch_add(1, std::memory_order_relaxed);
            outbox.push_back(std::move(e));
        }
    }

    void read_done() {
        int left = 0;
        while (CURLMsg * m = curl_multi_info_read(multi, &left)) {
            if (m->msg == CURLMSG_DONE) on_done(m->easy_handle, m->data.result);
        }
    }

    void cancel_everything() {
        const int64_t now = clock::now_ns();
        for (auto & [easy, t] : active) {
            curl_multi_remove_handle(multi, easy);
            spare_handles.push_back(easy);
            shared->ended(t->endpoint);
            finish_failed(*t, now, failure::cancelled, "cancelled (interrupt)");
        }
        active.clear();
        for (auto & t : pending) finish_failed(*t, now, failure::cancelled, "cancelled before it was sent");
        pending.clear();
    }

    void take_inbox() {
        std::vector<std::pair<request, int>> got;
        bool cancel = false;
        {
            std::lock_guard lk(inbox_mu);
            got.swap(inbox);
            cancel = cancel_requested;
            cancel_requested = false;
        }
        for (auto & [r, endpoint] : got) {
            auto t = std::make_unique<transfer>(opts->max_line_bytes);
            t->req = std::move(r);
            t->endpoint = endpoint;
            if (t->req.n_predict < 1) {
                finish_failed(*t, clock::now_ns(), failure::rejected,
                              fmt::format("n_predict {} asks for no output", t->req.n_predict));
                continue;
            }
            if (t->req.prompt_text.empty() && !t->req.prompt_tokens.empty() && endpoint_api == api::chat) {
                finish_failed(*t, clock::now_ns(), failure::rejected,
                              "the chat endpoint needs prompt text, and this request has only token ids "
                              "(give -m or --vocab so prompts can be written as text)");
                continue;
            }
            pending.push_back(std::move(t));
            std::push_heap(pending.begin(), pending.end(), later{});
        }
        if (cancel) cancel_everything();
    }

    void arm_timer(int64_t at_ns) {
        itimerspec its{};
        if (at_ns >= 0) {
            if (at_ns <= 0) at_ns = 1;
            its.it_value.tv_sec = time_t(at_ns / 1'000'000'000);
            its.it_value.tv_nsec = long(at_ns % 1'000'000'000);
        }
        timerfd_settime(timerfd, TFD_TIMER_ABSTIME, &its, nullptr);
    }

    void run() {
        std::vector<epoll_event> evs(512);
        int running = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            int64_t now = clock::now_ns();
            // Send what is due: no request leaves before its intended time.
            while (!pending.empty() && pending.front()->req.t_intended_ns <= now) {
                std::pop_heap(pending.begin(), pending.end(), later{});
                std::unique_ptr<transfer> t = std::move(pending.back());
                pending.pop_back();
                start(std::move(t));
            }
            if (curl_deadline_ns >= 0 && curl_deadline_ns <= now) {
                curl_deadline_ns = -1;
                curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
                read_done();
            }
            flush();
            if (curl_deadline_ns >= 0 && curl_deadline_ns <= clock::now_ns()) continue;
            int64_t wake_at = curl_deadline_ns;
            if (!pending.empty()) {
                const int64_t next = pending.front()->req.t_intended_ns;
                wake_at = wake_at < 0 ? next : std::min(wake_at, next);
            }
            arm_timer(wake_at);
            const int n = epoll_wait(epfd, evs.data(), int(evs.size()), -1);
            if (n < 0) continue;  // EINTR
            for (int i = 0; i < n; ++i) {
                const int fd = evs[size_t(i)].data.fd;
                if (fd == wakefd) {
                    uint64_t v;
                    [[maybe_unused]] ssize_t r = read(wakefd, &v, sizeof(v));
                    take_inbox();
                } else if (fd == timerfd) {
                    uint64_t v;
                    [[maybe_unused]] ssize_t r = read(timerfd, &v, sizeof(v));
                } else {
                    const uint32_t e = evs[size_t(i)].events;
                    int flags = 0;
                    if (e & EPOLLIN) flags |= CURL_CSELECT_IN;
                    if (e & EPOLLOUT) flags |= CURL_CSELECT_OUT;
                    if (e & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
                    curl_multi_socket_action(multi, fd, flags, &running);
                }
            }
            read_done();
        }
        flush();
    }

    void flush() {
        if (outbox.empty()) return;
        engine->deliver(outbox);
        outbox.clear();
    }
};

http_engine::http_engine(client_options o) : opts_(std::move(o)), shared_(std::make_unique<shared_state>(opts_.urls.size())) {
    if (opts_.urls.empty()) throw_usage("no server to measure: give --url (e.g. --url http://127.0.0.1:8080)");
    if (opts_.client_threads < 1 || opts_.client_threads > 256) {
        throw_usage("--client-threads {} is out of range (1..256)", opts_.client_threads);
    }
    if (opts_.request_timeout_ms < 1) throw_usage("--request-timeout must be positive");
    if (opts_.connect_timeout_ms < 1) throw_usage("--connect-timeout must be positive");
    if (opts_.max_line_bytes < 64) throw_usage("--max-line-bytes {} is too small (at least 64)", opts_.max_line_bytes);
    std::optional<api> endpoint = opts_.endpoint;
    for (const auto & u : opts_.urls) endpoint_url(u, endpoint);  // settles the endpoint from any URL path
    for (const auto & u : opts_.urls) urls_.push_back(endpoint_url(u, endpoint));
    api_ = endpoint.value_or(api::completions);
    for (const auto & h : opts_.headers) {
        const size_t colon = h.find(':');
        if (colon == std::string::npos || colon == 0 || h.find_first_of("\r\n") != std::string::npos) {
            throw_usage("--header '{}' is not of the form 'Name: value'", h);
        }
    }

    global_init_once();
    if (opts_.version == http_version::http2 && !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)) {
        throw_usage("HTTP/2 was asked for but this libcurl ({}) was built without it: use HTTP/1.1",
                    curl_version_info(CURLVERSION_NOW)->version);
    }
    raise_fd_limit();
    curl_slist * list = nullptr;
    list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Accept: text/event-stream");
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip before the body
    if (!opts_.api_key.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + opts_.api_key).c_str());
    for (const auto & h : opts_.headers) list = curl_slist_append(list, h.c_str());
    shared_->headers = list;

    for (int i = 0; i < opts_.client_threads; ++i) {
        workers_.push_back(std::make_unique<worker>(this, &opts_, api_, &urls_, shared_.get()));
    }
}

http_engine::~http_engine() { workers_.clear(); }

int64_t http_engine::now_ns() const { return clock::now_ns(); }

void http_engine::submit(request r) {
    const uint64_t k = next_submit_.fetch_add(1, std::memory_order_relaxed);
    const int endpoint = int(k % urls_.size());
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    workers_[k % workers_.size()]->post(std::move(r), endpoint);
}

void http_engine::deliver(std::vector<event> & batch) {
    bool was_empty = false;
    {
        std::lock_guard lk(mu_);
        was_empty = ready_.empty();
        if (was_empty) {
            ready_.swap(batch);
        } else {
            ready_.insert(ready_.end(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
        }
    }
    if (was_empty) cv_.notify_one();
}

void http_engine::poll(int64_t deadline_ns, std::vector<event> & out) {
    std::vector<event> got;
    {
        std::unique_lock lk(mu_);
        const auto until = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns));
        cv_.wait_until(lk, until, [&] { return !ready_.empty(); });
        got.swap(ready_);
    }
    if (got.empty()) return;
    std::stable_sort(got.begin(), got.end(), [](const event & a, const event & b) { return a.t_ns < b.t_ns; });
    int64_t terminal = 0;
    for (auto & e : got) {
        if (e.kind == event_kind::finished || e.kind == event_kind::failed) ++terminal;
        out.push_back(std::move(e));
    }
    in_flight_.fetch_sub(terminal, std::memory_order_relaxed);
}

size_t http_engine::in_flight() const { return size_t(std::max<int64_t>(0, in_flight_.load())); }

void http_engine::cancel_all() {
    for (auto & w : workers_) w->post_cancel();
}

balance parse_balance(std::string_view name) {
    if (name == "round-robin") return balance::round_robin;
    if (name == "least-outstanding") return balance::least_outstanding;
    throw_usage("--balance '{}': use round-robin or least-outstanding", name);
}

const char * balance_name(balance b) { return b == balance::round_robin ? "round-robin" : "least-outstanding"; }

int auto_client_threads(int max_streams) {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    const int wanted = (std::max(1, max_streams) + 255) / 256;
    return std::clamp(wanted, 1, std::max(1, cores / 2));
}

std::string redact_url(const std::string & url) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const size_t host = scheme + 3;
    const size_t path = url.find('/', host);
    const size_t at = url.rfind('@', path == std::string::npos ? url.size() : path);
    if (at == std::string::npos || at < host) return url;
    return url.substr(0, host) + "***@" + url.substr(at + 1);
}

std::string http_engine::describe() const {
    std::string s = fmt::format("HTTP {} {}", api_name(api_), redact_url(urls_.front()));
    if (urls_.size() > 1) s += fmt::format(" (+{} more, {})", urls_.size() - 1, balance_name(opts_.spread));
    s += fmt::format(", {} client thread{}", opts_.client_threads, opts_.client_threads == 1 ? "" : "s");
    if (!opts_.body.model.empty()) s += ", model " + opts_.body.model;
    return s;
}

std::vector<endpoint_counts> http_engine::counts() const {
    std::vector<endpoint_counts> out(urls_.size());
    for (size_t i = 0; i < urls_.size(); ++i) {
        out[i].url = redact_url(urls_[i]);
        for (const auto & w : workers_) {
            out[i].started += w->per_endpoint_started[i].load();
            out[i].finished += w->per_endpoint_finished[i].load();
            out[i].failed += w->per_endpoint_failed[i].load();
        }
        out[i].peak_outstanding = shared_->peak_outstanding[i].load();
    }
    return out;
}

void http_engine::reset_peaks() {
    for (size_t i = 0; i < urls_.size(); ++i) shared_->peak_outstanding[i].store(shared_->outstanding[i].load());
}

client_stats http_engine::stats() const {
    client_stats s;
    for (const auto & w : workers_) {
        clockid_t cid;
        timespec ts{};
        if (pthread_getcpuclockid(const_cast<std::thread &>(w->thread).native_handle(), &cid) == 0 &&
            clock_gettime(cid, &ts) == 0) {
            s.cpu_ns += int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
        }
        s.bytes_received += w->bytes_received.load();
        s.events_parsed += w->events_parsed.load();
        s.requests_started += w->started.load();
    }
    return s;
}

namespace {

size_t collect_body(char * data, size_t size, size_t n, void * userp) {
    auto * s = static_cast<std::string *>(userp);
    if (s->size() > (size_t(64) << 20)) return 0;  // not load: an answer here is small; stop at 64 MiB
    s->append(data, size * n);
    return size * n;
}

}  // namespace

plain_answer fetch_once(const std::string & url, const std::string & post_json, int64_t timeout_ms,
                        const std::vector<std::string> & headers, const std::string & api_key) {
    global_init_once();
    plain_answer a;
    CURL * easy = curl_easy_init();
    if (!easy) {
        a.error = "libcurl could not create a request";
        return a;
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist * list = nullptr;
    if (!api_key.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + api_key).c_str());
    for (const auto & h : headers) list = curl_slist_append(list, h.c_str());
    if (!post_json.empty()) {
        list = curl_slist_append(list, "Content-Type: application/json");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, post_json.c_str());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, long(post_json.size()));
    }
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &collect_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, long(timeout_ms));
    const CURLcode rc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(easy);
    a.ok = rc == CURLE_OK;
    if (!a.ok) a.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return a;
}

}  // namespace im::engine::http
