#include "cli/server_launch.h"

#include "core/error.h"
#include "core/escape.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "engine/http/client.h"

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace im::cli {

namespace {

// A port the kernel considers free now (bound to 0, read back, closed).
int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_runtime("--launch-server: no socket for a free port");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    const bool ok = bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0;
    close(fd);
    if (!ok) throw_runtime("--launch-server: could not find a free port on 127.0.0.1");
    return ntohs(addr.sin_port);
}

long health_status(const std::string & url) {
    const auto a = engine::http::fetch_once(url, "", 2000);
    return a.ok ? a.status : 0;
}

}  // namespace

std::vector<std::string> server_engine_args(const engine_flags & f, bool tunable) {
    std::vector<std::string> v{"-ngl", f.n_gpu_layers};
    if (tunable) {
        const std::string fa = f.flash_attn == "1" ? "on" : f.flash_attn == "0" ? "off" : f.flash_attn;
        v.insert(v.end(), {"-b", f.n_batch, "-ub", f.n_ubatch, "-fa", fa});
        if (!f.threads.empty()) v.insert(v.end(), {"-t", f.threads, "-tb", f.threads});
    }
    if (f.type_k != "f16") v.insert(v.end(), {"-ctk", f.type_k});
    if (f.type_v != "f16") v.insert(v.end(), {"-ctv", f.type_v});
    if (f.mmap == "0") v.push_back("--no-mmap");
    if (f.poll != "50") v.insert(v.end(), {"--poll", f.poll});
    if (f.split_mode != "layer") v.insert(v.end(), {"-sm", f.split_mode});
    if (f.main_gpu != "0") v.insert(v.end(), {"-mg", f.main_gpu});
    if (!f.tensor_split.empty()) v.insert(v.end(), {"-ts", f.tensor_split});  // llama-server reads "3,1" and "3/1"
    if (!f.rpc.empty()) v.insert(v.end(), {"--rpc", f.rpc});
    return v;
}

std::string default_server_bin() {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return "llama-server";
    return (self.parent_path() / "llama-server").string();
}

launched_server::launched_server(const launch_options & o) {
    const std::string bin = o.bin.empty() ? default_server_bin() : o.bin;
    if (access(bin.c_str(), X_OK) != 0) {
        throw_usage("--launch-server: {} is not an executable llama-server (build it with ./scripts/build, or give --server-bin)",
                    bin);
    }
    // A port taken between our probe and the server's bind makes the server exit: try a few.
    for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = free_port();
        argv_ = {bin, "--host", "127.0.0.1", "--port", std::to_string(port_)};
        argv_.insert(argv_.end(), o.args.begin(), o.args.end());
        char tmpl[] = "/tmp/infermeter-llama-server-XXXXXX";
        const int logfd = mkstemp(tmpl);
        if (logfd < 0) throw_runtime("--launch-server: cannot create a log file in /tmp");
        log_path_ = tmpl;
        const pid_t parent = getpid();
        std::vector<char *> cargv;
        for (auto & a : argv_) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        pid_ = fork();
        if (pid_ < 0) {
            close(logfd);
            throw_runtime("--launch-server: fork failed");
        }
        if (pid_ == 0) {
            setpgid(0, 0);                        // the terminal's Ctrl-C goes to infermeter, which stops us
            prctl(PR_SET_PDEATHSIG, SIGTERM);     // and infermeter's death ends us
            if (getppid() != parent) _exit(126);
            const int devnull = open("/dev/null", O_RDONLY);
            if (devnull >= 0) dup2(devnull, 0);
            dup2(logfd, 1);
            dup2(logfd, 2);
            execv(bin.c_str(), cargv.data());
            _exit(127);
        }
        close(logfd);
        log::info("serve: started {}", command_line());
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.ready_timeout_s);
        bool exited = false;
        while (std::chrono::steady_clock::now() < until) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                exited = true;
                break;
            }
            if (interrupt::requested()) {
                stop();
                throw error(error_kind::interrupted, "interrupted while llama-server was starting");
            }
            if (health_status(url() + "/health") == 200) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        const std::string tail = log_tail();
        if (exited && tail.find("couldn't bind") != std::string::npos && attempt < 2) {  // port race: another port
            std::remove(log_path_.c_str());
            continue;
        }
        stop();
        throw_runtime("--launch-server: {} {} (its log, last lines):\n{}", command_line(),
                      exited ? "exited before it was ready" : "did not answer /health in time", tail);
    }
}

launched_server::~launched_server() {
    try {
        stop();
    } catch (...) {
    }
    if (!log_path_.empty()) std::remove(log_path_.c_str());
}

std::string launched_server::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string launched_server::command_line() const { return esc::shell_join(argv_); }

void launched_server::stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

std::string launched_server::log_tail() const {
    std::ifstream f(log_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string s = ss.str();
    return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

}  // namespace im::cli
