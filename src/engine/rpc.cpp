#include "engine/rpc.h"

#include "core/error.h"

#include "ggml-backend.h"
#if __has_include("ggml-rpc.h")
#include "ggml-rpc.h"
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <array>
#include <cstdint>

namespace im::engine {

namespace {

struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

// Waits until `fd` is ready for `events` or `timeout_ms` passes; false on timeout or error.
bool wait_for(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    int rc;
    do {
        rc = ::poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

bool send_all(int fd, const uint8_t * data, size_t n, int timeout_ms) {
    while (n > 0) {
        if (!wait_for(fd, POLLOUT, timeout_ms)) return false;
        const ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return false;
        data += k;
        n -= static_cast<size_t>(k);
    }
    return true;
}

// 0: all read; 1: timed out; 2: closed or failed.
int recv_all(int fd, uint8_t * data, size_t n, int timeout_ms) {
    while (n > 0) {
        if (!wait_for(fd, POLLIN, timeout_ms)) return 1;
        const ssize_t k = ::recv(fd, data, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return 2;
        data += k;
        n -= static_cast<size_t>(k);
    }
    return 0;
}

std::vector<std::string> g_registered;

}  // namespace

bool rpc_supported() { return ggml_backend_reg_by_name("RPC") != nullptr; }

std::string probe_rpc_server(const std::string & endpoint, int connect_timeout_ms, int handshake_timeout_ms) {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos) return "not HOST:PORT";
    const std::string host = endpoint.substr(0, colon), port = endpoint.substr(colon + 1);
    addrinfo hints{};
    hints.ai_family = AF_INET;  // ggml's RPC client connects over IPv4
    hints.ai_socktype = SOCK_STREAM;
    addrinfo * res = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res) {
        return fmt::format("cannot resolve {}: {}", host, rc != 0 ? gai_strerror(rc) : "no address");
    }
    fd_guard s;
    s.fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) {
        ::freeaddrinfo(res);
        return fmt::format("no socket: {}", std::strerror(errno));
    }
    int rc = ::connect(s.fd, res->ai_addr, res->ai_addrlen);
    ::freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) return fmt::format("cannot connect: {}", std::strerror(errno));
    if (rc != 0) {
        if (!wait_for(s.fd, POLLOUT, connect_timeout_ms)) {
            return fmt::format("no answer to a TCP connect within {} s", connect_timeout_ms / 1000.0);
        }
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return fmt::format("cannot connect: {}", std::strerror(err));
    }
    // ggml-rpc's HELLO (RPC_CMD_HELLO = 14, fixed across protocol versions): | cmd (1 byte) | size (8 bytes) |
    // conn_caps (24 bytes, all 0: plain TCP) |; the answer is | size (8) | major minor patch pad | caps |.
    std::array<uint8_t, 1 + 8 + 24> hello{};
    hello[0] = 14;
    const uint64_t req_size = 24;
    std::memcpy(hello.data() + 1, &req_size, sizeof(req_size));
    const int one = 1;
    ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!send_all(s.fd, hello.data(), hello.size(), handshake_timeout_ms)) {
        return "the connection failed while sending the RPC handshake";
    }
    uint64_t rsp_size = 0;
    const int got = recv_all(s.fd, reinterpret_cast<uint8_t *>(&rsp_size), sizeof(rsp_size), handshake_timeout_ms);
    if (got == 1) {
        return fmt::format("connected, but no answer to the RPC handshake within {} s (not a ggml-rpc-server, or one "
                           "busy with another client: it serves one client at a time)", handshake_timeout_ms / 1000.0);
    }
    if (got == 2 || rsp_size < 4 || rsp_size > 4096) {
        return "the server closed the connection during the RPC handshake (not a ggml-rpc-server of this llama.cpp "
               "version?)";
    }
    std::vector<uint8_t> rsp(rsp_size);
    if (recv_all(s.fd, rsp.data(), rsp.size(), handshake_timeout_ms) != 0) return "the RPC handshake answer was cut short";
#ifdef RPC_PROTO_MAJOR_VERSION
    if (rsp[0] != RPC_PROTO_MAJOR_VERSION || rsp[1] > RPC_PROTO_MINOR_VERSION) {
        return fmt::format("the server speaks RPC protocol {}.{}.{}, this build {}.{}.{}: build both from the same llama.cpp",
                           rsp[0], rsp[1], rsp[2], RPC_PROTO_MAJOR_VERSION, RPC_PROTO_MINOR_VERSION, RPC_PROTO_PATCH_VERSION);
    }
#endif
    return "";
}

void add_rpc_servers(const std::vector<std::string> & endpoints) {
    if (endpoints.empty() || endpoints == g_registered) return;
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("RPC");
    if (!reg) {
        throw_usage("--rpc: this build has no RPC backend; build with INFERMETER_RPC=1 ./scripts/build "
                    "(CMake -DGGML_RPC=ON), which also builds build/bin/ggml-rpc-server");
    }
    if (!g_registered.empty()) {
        throw_usage("--rpc: {} are registered already in this process; one --rpc list per run",
                    fmt::format("{}", fmt::join(g_registered, ",")));
    }
    using add_server_fn = ggml_backend_reg_t (*)(const char * endpoint);
    auto * add_server = reinterpret_cast<add_server_fn>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_rpc_add_server"));
    if (!add_server) throw_runtime("--rpc: this build's RPC backend has no ggml_backend_rpc_add_server");
    for (const auto & e : endpoints) {
        const std::string why = probe_rpc_server(e);
        if (!why.empty()) {
            throw_runtime("--rpc {}: {} (start it with: ggml-rpc-server -H HOST -p PORT)", e, why);
        }
    }
    for (const auto & e : endpoints) {
        ggml_backend_reg_t server = add_server(e.c_str());
        if (!server) throw_runtime("--rpc {}: the server reports no devices", e);
        ggml_backend_register(server);
    }
    g_registered = endpoints;
}

}  // namespace im::engine
