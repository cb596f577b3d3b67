#include "support/fault_server.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <queue>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace im::test {

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

enum class wire { completions, chat, llama };

std::string http_chunk(std::string_view data) { return fmt::format("{:x}\r\n{}\r\n", data.size(), data); }

std::string sse(std::string_view json_text) { return fmt::format("data: {}\n\n", json_text); }

bool iequals_prefix(std::string_view s, std::string_view p) {
    if (s.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(s[i])) != p[i]) return false;
    }
    return true;
}

}  // namespace

struct fault_server::impl {
    struct conn {
        int fd = -1;
        uint64_t gen = 0;
        std::string in;
        std::string out;
        size_t out_off = 0;
        bool want_out = false;
        bool close_after_flush = false;
        // the answer in progress
        bool answering = false;
        std::string mode;
        wire fmt = wire::completions;
        bool chunked = true;
        bool usage = false;
        int n = 0;
        int next = 0;
        int prompt_tokens = 0;
        int64_t t0 = 0;
        uint64_t request = 0;
        std::string drip;
        size_t drip_pos = 0;
    };
    struct timer {
        int64_t due_ns;
        int fd;
        uint64_t gen;
        bool operator>(const timer & o) const { return due_ns > o.due_ns; }
    };

    fault_server * owner = nullptr;
    fault_server_options opts;
    int listen_fd = -1, epfd = -1, wakefd = -1, timerfd = -1;
    std::atomic<bool> stopping{false};
    std::map<int, conn> conns;
    uint64_t next_gen = 1;
    std::priority_queue<timer, std::vector<timer>, std::greater<>> timers;
    mutable std::mutex sends_mu;
    std::vector<chunk_send> sends;
    std::vector<std::string> last_headers;  // under sends_mu

    void watch(int fd, uint32_t events, bool add) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
    }

    void close_conn(int fd) {
        auto it = conns.find(fd);
        if (it == conns.end()) return;
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        conns.erase(it);
    }

    void schedule(conn & c, int64_t due) { timers.push({due, c.fd, c.gen}); }

    // Writes what it can; returns false when the connection is gone.
    bool flush(conn & c) {
        while (c.out_off < c.out.size()) {
            const ssize_t w = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                close_conn(c.fd);
                return false;
            }
            c.out_off += size_t(w);
        }
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
            if (c.close_after_flush) {
                shutdown(c.fd, SHUT_WR);
                close_conn(c.fd);
                return false;
            }
        }
        const bool want = !c.out.empty();
        if (want != c.want_out) {
            c.want_out = want;
            watch(c.fd, EPOLLIN | (want ? EPOLLOUT : 0u), false);
        }
        return true;
    }

    // Queues a piece of the body in the answer's framing.
    void body(conn & c, std::string_view data) {
        if (c.chunked) {
            c.out += http_chunk(data);
        } else {
            c.out.append(data);
        }
    }

    std::string chunk_json(const conn & c, int index, int64_t t_sent) const {
        const std::string text = fmt::format("{}@{};", index, t_sent);
        switch (c.fmt) {
            case wire::completions:
                return fmt::format(R"({{"id":"fs-{}","object":"text_completion","choices":[{{"index":0,"text":"{}","finish_reason":null}}]}})",
                                   c.request, text);
            case wire::chat:
                return fmt::format(R"({{"id":"fs-{}","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{}"}},"finish_reason":null}}]}})",
                                   c.request, text);
            case wire::llama:
                return fmt::format(R"({{"content":"{}","tokens":[{}],"stop":false,"tokens_predicted":{}}})", text,
                                   100 + index, index + 1);
        }
        return "{}";
    }

    // The end of a complete answer: finish reason, usage, [DONE] (or llama's final chunk).
    std::string tail(const conn & c) const {
        std::string s;
        if (c.fmt == wire::llama) {
            s += sse(fmt::format(R"({{"content":"","tokens":[],"stop":true,"tokens_predicted":{},"tokens_evaluated":{},"timings":{{"prompt_n":{},"prompt_ms":1.25,"predicted_n":{},"predicted_ms":{},"predicted_per_second":{}}}}})",
                                 c.n, c.prompt_tokens, c.prompt_tokens, c.n, c.n * 2.0, 500.0));
            return s;
        }
        if (c.fmt == wire::chat) {
            s += sse(R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})");
        } else {
            s += sse(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})");
        }
        if (c.usage) {
            s += sse(fmt::format(R"({{"choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
                                 c.prompt_tokens, c.n, c.prompt_tokens + c.n));
        }
        s += "data: [DONE]\n\n";
        return s;
    }

    void end_answer(conn & c) {
        if (c.chunked) c.out += "0\r\n\r\n";
        c.answering = false;
    }

    void simple_answer(conn & c, int status, const char * reason, const std::string & extra_headers,
                       const std::string & content_type, const std::string & payload) {
        c.out += fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n", status, reason,
                             content_type, payload.size(), extra_headers);
        c.out += payload;
        c.answering = false;
    }

    void start_answer(conn & c, std::string_view path, std::string_view req_body) {
        if (path == "/metrics") {  // Prometheus text, as llama-server --metrics serves it
            simple_answer(c, 200, "OK", "", "text/plain; version=0.0.4",
                          fmt::format("# HELP faultserver:requests_total Completion requests received.\n"
                                      "# TYPE faultserver:requests_total counter\n"
                                      "faultserver:requests_total {}\n"
                                      "# TYPE faultserver:chunks_sent_total counter\n"
                                      "faultserver:chunks_sent_total {}\n",
                                      owner->requests_.load(), owner->chunks_sent_.load()));
            return;
        }
        c.request = owner->requests_.fetch_add(1) + 1;
        std::string_view p = path.substr(1);
        const size_t slash = p.find('/');
        c.mode = std::string(p.substr(0, slash));
        const std::string_view rest = slash == std::string_view::npos ? std::string_view() : p.substr(slash);
        c.fmt = rest.find("chat/completions") != std::string_view::npos ? wire::chat
                : rest == "/completion"                                  ? wire::llama
                                                                         : wire::completions;
        static const char * modes[] = {"ok", "error500", "ratelimit", "cut", "cut_eof", "stall", "malformed",
                                       "error_event", "sse_error", "hugeline", "drip", "json"};
        if (std::none_of(std::begin(modes), std::end(modes), [&](const char * m) { return c.mode == m; })) {
            simple_answer(c, 404, "Not Found", "", "application/json",
                          fmt::format(R"({{"error":{{"message":"no such mode: {}"}}}})", c.mode));
            return;
        }
        nlohmann::json j = nlohmann::json::parse(req_body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            simple_answer(c, 400, "Bad Request", "", "application/json", R"({"error":{"message":"body is not JSON"}})");
            return;
        }
        const auto n = j.find(c.fmt == wire::llama ? "n_predict" : "max_tokens");
        c.n = n != j.end() && n->is_number_integer() ? n->get<int>() : 8;
        c.usage = j.contains("stream_options") && j["stream_options"].value("include_usage", false);
        const auto prompt = j.find("prompt");
        c.prompt_tokens = prompt == j.end()          ? 1
                          : prompt->is_array()       ? int(prompt->size())
                          : prompt->is_string()      ? 1 + int(prompt->get<std::string>().size() / 4)
                                                     : 1;
        c.next = 0;
        c.t0 = now_ns();
        c.chunked = true;
        c.answering = true;
        const std::string sse_headers = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
        const std::string & m = c.mode;
        if (m == "error500") {
            simple_answer(c, 500, "Internal Server Error", "", "application/json",
                          R"({"error":{"code":500,"message":"injected failure","type":"server_error"}})");
        } else if (m == "ratelimit") {
            simple_answer(c, 429, "Too Many Requests", "Retry-After: 7\r\n", "application/json",
                          R"({"error":{"code":429,"message":"rate limited"}})");
        } else if (m == "json") {
            simple_answer(c, 200, "OK", "", "application/json",
                          R"({"choices":[{"index":0,"text":"all at once","finish_reason":"length"}]})");
        } else if (m == "cut_eof") {
            c.chunked = false;
            c.out += sse_headers + "Connection: close\r\n\r\n";
            schedule(c, c.t0);
        } else if (m == "hugeline") {
            c.out += sse_headers + "Transfer-Encoding: chunked\r\n\r\n";
            std::string line = R"(data: {"choices":[{"index":0,"text":")";
            line.append(opts.huge_line_bytes, 'x');
            line += "\"}]}\n\n";
            body(c, line);
            body(c, "data: [DONE]\n\n");
            end_answer(c);
        } else if (m == "drip") {
            c.out += sse_headers + "Transfer-Encoding: chunked\r\n\r\n";
            std::string stream;
            if (c.fmt == wire::chat) stream += sse(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})");
            for (int i = 0; i < c.n; ++i) stream += sse(chunk_json(c, i, 0));
            stream += tail(c);
            // Frame it as several HTTP chunks, then drip the framed bytes one at a time.
            c.drip.clear();
            for (size_t at = 0; at < stream.size(); at += 37) c.drip += http_chunk(std::string_view(stream).substr(at, 37));
            c.drip += "0\r\n\r\n";
            c.drip_pos = 0;
            schedule(c, c.t0);
        } else if (m == "ok" || m == "cut" || m == "stall" || m == "malformed" || m == "error_event" ||
                   m == "sse_error") {
            c.out += sse_headers + "Transfer-Encoding: chunked\r\n\r\n";
            if (c.fmt == wire::chat) body(c, sse(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"));
            schedule(c, c.t0);
        }
    }

    // A timer fired for this connection: the next piece of its answer is due.
    void step(conn & c, int64_t now) {
        if (!c.answering) return;
        if (c.mode == "drip") {
            c.out.push_back(c.drip[c.drip_pos++]);
            if (c.drip_pos == c.drip.size()) {
                c.answering = false;
            } else {
                schedule(c, now + opts.drip_interval_us * 1000);
            }
            return;
        }
        const bool faulty = c.mode != "ok";
        if (faulty && c.next == 2) {
            if (c.mode == "cut" || c.mode == "cut_eof") {
                c.close_after_flush = true;
                c.answering = false;
            } else if (c.mode == "stall") {
                // silence: no timer, no end; the client's timeout ends it
            } else if (c.mode == "malformed") {
                body(c, "data: {\"choices\":[{\"text\":\"oops\"\n\n");
                body(c, tail(c));
                end_answer(c);
            } else if (c.mode == "error_event") {
                body(c, sse(R"({"error":{"code":500,"message":"The model produced output that does not match the expected Content-only format","type":"server_error"}})"));
                if (c.fmt != wire::llama) body(c, "data: [DONE]\n\n");
                end_answer(c);
            } else if (c.mode == "sse_error") {
                body(c, "event: error\ndata: {\"message\":\"overloaded\"}\n\n");
                end_answer(c);
            }
            return;
        }
        const int index = c.next++;
        const int64_t t_sent = now_ns();
        body(c, sse(chunk_json(c, index, t_sent)));
        owner->chunks_sent_.fetch_add(1, std::memory_order_relaxed);
        if (opts.record_sends) {
            std::lock_guard lk(sends_mu);
            sends.push_back({c.request, index, t_sent});
        }
        if (c.next < c.n) {
            // due times from the request's start: lateness never accumulates
            schedule(c, std::max(now, c.t0 + int64_t(c.next) * opts.chunk_interval_us * 1000));
        } else if (c.mode == "ok") {
            body(c, tail(c));
            end_answer(c);
        } else {
            schedule(c, now);  // a short answer still reaches its fault
        }
    }

    // Parses complete requests from the input buffer while no answer is in progress.
    void serve_input(conn & c) {
        while (!c.answering && !c.close_after_flush) {
            const size_t end = c.in.find("\r\n\r\n");
            if (end == std::string::npos) return;
            const std::string_view head(c.in.data(), end);
            size_t content_length = 0;
            size_t line_start = head.find("\r\n");
            const std::string_view request_line = head.substr(0, line_start);
            std::vector<std::string> header_lines;
            while (line_start != std::string_view::npos && line_start < head.size()) {
                const size_t next = head.find("\r\n", line_start + 2);
                const std::string_view line = head.substr(line_start + 2, next == std::string_view::npos ? std::string_view::npos : next - line_start - 2);
                header_lines.emplace_back(line);
                if (iequals_prefix(line, "content-length:")) content_length = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
                line_start = next;
            }
            if (c.in.size() < end + 4 + content_length) return;
            const std::string req_body = c.in.substr(end + 4, content_length);
            const size_t sp1 = request_line.find(' ');
            const size_t sp2 = request_line.find(' ', sp1 + 1);
            const std::string path(sp1 == std::string_view::npos ? std::string_view("/") : request_line.substr(sp1 + 1, sp2 - sp1 - 1));
            c.in.erase(0, end + 4 + content_length);
            {
                std::lock_guard lk(sends_mu);
                last_headers = std::move(header_lines);
            }
            start_answer(c, path.empty() || path[0] != '/' ? "/" : path, req_body);
        }
    }

    void on_readable(int fd) {
        auto it = conns.find(fd);
        if (it == conns.end()) return;
        conn & c = it->second;
        char buf[65536];
        for (;;) {
            const ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r > 0) {
                c.in.append(buf, size_t(r));
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (r < 0 && errno == EINTR) continue;
            close_conn(fd);  // the client closed or reset the connection
            return;
        }
        serve_input(c);
        flush(c);
    }

    void accept_all() {
        for (;;) {
            const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            const int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            conn & c = conns[fd];
            c = conn{};
            c.fd = fd;
            c.gen = next_gen++;
            watch(fd, EPOLLIN, true);
        }
    }

    void run() {
        std::vector<epoll_event> evs(256);
        while (!stopping.load()) {
            itimerspec its{};
            if (!timers.empty()) {
                const int64_t due = std::max<int64_t>(1, timers.top().due_ns);
                its.it_value.tv_sec = time_t(due / 1'000'000'000);
                its.it_value.tv_nsec = long(due % 1'000'000'000);
            }
            timerfd_settime(timerfd, TFD_TIMER_ABSTIME, &its, nullptr);
            const int n = epoll_wait(epfd, evs.data(), int(evs.size()), -1);
            for (int i = 0; i < n; ++i) {
                const int fd = evs[size_t(i)].data.fd;
                if (fd == listen_fd) {
                    accept_all();
                } else if (fd == wakefd || fd == timerfd) {
                    uint64_t v;
                    [[maybe_unused]] ssize_t r = read(fd, &v, sizeof(v));
                } else {
                    if (evs[size_t(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(fd);
                    auto it = conns.find(fd);
                    if (it != conns.end() && (evs[size_t(i)].events & EPOLLOUT)) {
                        if (flush(it->second)) serve_input(it->second), flush(it->second);
                    }
                }
            }
            const int64_t now = now_ns();
            while (!timers.empty() && timers.top().due_ns <= now) {
                const timer t = timers.top();
                timers.pop();
                auto it = conns.find(t.fd);
                if (it == conns.end() || it->second.gen != t.gen) continue;
                step(it->second, now);
                if (flush(it->second)) {
                    serve_input(it->second);
                    flush(it->second);
                }
            }
        }
        for (auto & [fd, c] : conns) close(fd);
        conns.clear();
    }
};

fault_server::fault_server(fault_server_options o) : impl_(std::make_unique<impl>()) {
    impl_->owner = this;
    impl_->opts = o;
    impl_->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(impl_->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(impl_->listen_fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 ||
        listen(impl_->listen_fd, 4096) != 0) {
        throw std::runtime_error(std::string("fault_server: cannot listen: ") + std::strerror(errno));
    }
    socklen_t len = sizeof(addr);
    getsockname(impl_->listen_fd, reinterpret_cast<sockaddr *>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    impl_->epfd = epoll_create1(EPOLL_CLOEXEC);
    impl_->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    impl_->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    impl_->watch(impl_->listen_fd, EPOLLIN, true);
    impl_->watch(impl_->wakefd, EPOLLIN, true);
    impl_->watch(impl_->timerfd, EPOLLIN, true);
    thread_ = std::thread([this] { impl_->run(); });
}

fault_server::~fault_server() {
    stop();
    for (int fd : {impl_->listen_fd, impl_->epfd, impl_->wakefd, impl_->timerfd}) {
        if (fd >= 0) close(fd);
    }
}

void fault_server::stop() {
    if (!thread_.joinable()) return;
    impl_->stopping = true;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(impl_->wakefd, &one, sizeof(one));
    thread_.join();
}

std::string fault_server::url(const std::string & mode) const {
    return fmt::format("http://127.0.0.1:{}/{}", port_, mode);
}

std::vector<chunk_send> fault_server::sends() const {
    std::lock_guard lk(impl_->sends_mu);
    return impl_->sends;
}

std::vector<std::string> fault_server::last_headers() const {
    std::lock_guard lk(impl_->sends_mu);
    return impl_->last_headers;
}

int fault_server::unused_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace im::test
