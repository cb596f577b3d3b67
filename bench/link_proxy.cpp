// link_proxy: a TCP forwarder that behaves like a network link — each byte arrives `--delay-ms` after
// it was sent, and a direction carries at most `--rate-mbit` megabits per second (serialization time:
// a chunk starts when the link is free and takes bytes / rate). Used where the kernel has no sch_netem
// (this project's 2-core VM; macOS) to put latency between infermeter and a ggml-rpc-server
// (bench/rpc_links.sh, tests/integration/rpc_test.cpp). Portable POSIX; one thread per direction.
//
//   link_proxy --listen PORT --to HOST:PORT [--delay-ms D] [--rate-mbit R] [--host ADDR]
//
// Prints "link_proxy: listening on ADDR:PORT" once bound (PORT 0: the kernel chooses), then serves
// every connection until killed.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct link_shape {
    std::chrono::nanoseconds delay{0};
    double bytes_per_ns = 0;  // 0: no rate limit
};

struct chunk {
    steady::time_point due;
    std::vector<char> data;  // empty: the sender closed its side
};

// One direction of a connection: the reader stamps each chunk with its arrival time on the far side,
// the writer delivers it then. Order is kept; the link's serialization makes later chunks wait.
class direction {
  public:
    direction(int from, int to, link_shape shape) : from_(from), to_(to), shape_(shape) {}

    void run() {
        std::thread writer([this] { write_loop(); });
        read_loop();
        writer.join();
    }

  private:
    void read_loop() {
        std::vector<char> buf(64 * 1024);
        steady::time_point link_free = steady::now();
        for (;;) {
            const ssize_t n = ::read(from_, buf.data(), buf.size());
            const auto now = steady::now();
            chunk c;
            if (n > 0) {
                c.data.assign(buf.data(), buf.data() + n);
                auto start = std::max(now, link_free);
                if (shape_.bytes_per_ns > 0) {
                    start += std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(n) / shape_.bytes_per_ns));
                }
                link_free = start;
                c.due = start + shape_.delay;
            } else {
                c.due = std::max(now, link_free) + shape_.delay;
            }
            {
                std::lock_guard<std::mutex> lock(mu_);
                queue_.push_back(std::move(c));
            }
            cv_.notify_one();
            if (n <= 0) return;
        }
    }

    void write_loop() {
        for (;;) {
            chunk c;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [this] { return !queue_.empty(); });
                c = std::move(queue_.front());
                queue_.pop_front();
            }
            std::this_thread::sleep_until(c.due);
            if (c.data.empty()) {
                ::shutdown(to_, SHUT_WR);
                return;
            }
            size_t off = 0;
            while (off < c.data.size()) {
                const ssize_t w = ::write(to_, c.data.data() + off, c.data.size() - off);
                if (w <= 0) {
                    ::shutdown(from_, SHUT_RD);  // the far side is gone: stop reading this direction
                    return;
                }
                off += static_cast<size_t>(w);
            }
        }
    }

    int from_, to_;
    link_shape shape_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<chunk> queue_;
};

void no_delay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int connect_to(const std::string & host, const std::string & port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo * res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
    int fd = -1;
    for (addrinfo * a = res; a; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        ::close(fd);
        fd = -1;
    }
    ::freeaddrinfo(res);
    return fd;
}

[[noreturn]] void usage(const char * why) {
    std::fprintf(stderr,
                 "link_proxy: %s\nusage: link_proxy --listen PORT --to HOST:PORT [--delay-ms D] [--rate-mbit R] "
                 "[--host ADDR]\n",
                 why);
    std::exit(2);
}

}  // namespace

int main(int argc, char ** argv) {
    std::string listen_port, to, host = "127.0.0.1";
    double delay_ms = 0, rate_mbit = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing a value after " + a).c_str());
        const std::string v = argv[++i];
        char * end = nullptr;
        if (a == "--listen") listen_port = v;
        else if (a == "--to") to = v;
        else if (a == "--host") host = v;
        else if (a == "--delay-ms") delay_ms = std::strtod(v.c_str(), &end);
        else if (a == "--rate-mbit") rate_mbit = std::strtod(v.c_str(), &end);
        else usage(("unknown option " + a).c_str());
        if (end && (*end != '\0' || end == v.c_str())) usage(("not a number: " + v).c_str());
    }
    const auto colon = to.rfind(':');
    if (listen_port.empty() || colon == std::string::npos) usage("--listen and --to HOST:PORT are required");
    if (!(delay_ms >= 0 && delay_ms <= 10000) || !(rate_mbit >= 0)) usage("--delay-ms must be 0..10000, --rate-mbit >= 0");
    const std::string to_host = to.substr(0, colon), to_port = to.substr(colon + 1);
    ::signal(SIGPIPE, SIG_IGN);

    link_shape shape;
    shape.delay = std::chrono::nanoseconds(static_cast<int64_t>(delay_ms * 1e6));
    shape.bytes_per_ns = rate_mbit > 0 ? rate_mbit * 1e6 / 8 / 1e9 : 0;

    const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(listen_port.c_str())));
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) usage(("not an IPv4 address: " + host).c_str());
    if (::bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(lfd, 64) != 0) {
        std::fprintf(stderr, "link_proxy: cannot listen on %s:%s: %s\n", host.c_str(), listen_port.c_str(), std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(lfd, reinterpret_cast<sockaddr *>(&addr), &len);
    std::printf("link_proxy: listening on %s:%d\n", host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);

    for (;;) {
        const int client = ::accept(lfd, nullptr, nullptr);
        if (client < 0) continue;
        const int server = connect_to(to_host, to_port);
        if (server < 0) {
            std::fprintf(stderr, "link_proxy: cannot connect to %s\n", to.c_str());
            ::close(client);
            continue;
        }
        no_delay(client);
        no_delay(server);
        std::thread([client, server, shape] {
            direction up(client, server, shape), down(server, client, shape);
            std::thread t([&] { down.run(); });
            up.run();
            t.join();
            ::close(client);
            ::close(server);
        }).detach();
    }
}
