#include "support/run.h"

#include "model/ref.h"
#include "engine/backend.h"

#include <array>
#include <fstream>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sstream>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace im::test {

// Tests and the binaries they start keep their caches (synthesized models, the results store)
// inside the build tree, never in the user's home.
static const bool g_env_ready = [] {
    const std::string state = INFERMETER_TEST_STATE_DIR;
    setenv("XDG_CACHE_HOME", (state + "/cache").c_str(), 1);
    setenv("XDG_DATA_HOME", (state + "/data").c_str(), 1);
    return true;
}();

static std::string env_or(const char * name, const std::string & fallback) {
    const char * v = std::getenv(name);
    return v && *v ? v : fallback;
}

run_result run_program(const std::string & program, const std::vector<std::string> & args,
                       const std::string & stdin_text) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe failed");
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
        std::vector<char *> argv;
        argv.push_back(const_cast<char *>(program.c_str()));
        for (const auto & a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execv(program.c_str(), argv.data());
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (!stdin_text.empty()) {
        [[maybe_unused]] auto n = write(in_pipe[1], stdin_text.data(), stdin_text.size());
    }
    close(in_pipe[1]);
    run_result r;
    std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        if (poll(fds.data(), fds.size(), -1) < 0) break;
        for (size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP))) {
                const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
                if (n <= 0) {
                    close(fds[i].fd);
                    fds[i].fd = -1;
                    --open_fds;
                } else {
                    (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
                }
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

run_result run_infermeter(const std::vector<std::string> & args, const std::string & stdin_text) {
    run_result r = run_program(env_or("INFERMETER_BIN", std::string(INFERMETER_TEST_BIN_DIR) + "/infermeter"), args, stdin_text);
    // The build's own warning (scripts/test's ASan stage), not the command's output: tests that count the
    // lines of an error read the same in every build.
    static const std::string sanitized = "warning: sanitizers are enabled: measurements will be slow\n";
    if (const auto at = r.err.find(sanitized); at != std::string::npos) r.err.erase(at, sanitized.size());
    return r;
}

std::string bin_path(const std::string & name) { return env_or("INFERMETER_BIN_DIR", INFERMETER_TEST_BIN_DIR) + "/" + name; }

std::filesystem::path data_path(const std::string & name) {
    return std::filesystem::path(INFERMETER_TEST_DATA_DIR) / name;
}

std::filesystem::path temp_dir(const std::string & tag) {
    auto dir = std::filesystem::temp_directory_path() / ("infermeter-test-" + tag + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

std::string read_text(const std::filesystem::path & path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool accepts_connections(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0;
    close(fd);
    return ok;
}

std::filesystem::path tiny_model() {
    engine::init(false);
    return model::resolve("synth:tiny");
}

}  // namespace im::test
