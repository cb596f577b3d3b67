#pragma once

// Helpers of the hostile-input and interruption suites: a child process with a deadline, an
// optional signal at a chosen moment, and its peak RSS.
#include "support/run.h"

#include <chrono>
#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace im::test {

struct child_result {
    int exit_code = -1;       // 128 + signal when killed by one
    bool timed_out = false;   // killed with SIGKILL at the deadline
    double seconds = 0;       // start to exit
    double after_signal_s = -1;  // signal to exit; -1 without a signal
    int64_t max_rss_kb = 0;
    std::string out, err;     // from the files the child wrote
};

inline std::string slurp_file(const std::string & path) { return im::test::read_text(path); }

// Runs `program args` with stdout/stderr to files under `dir`; sends `sig` after `signal_after_s`
// (never when < 0); SIGKILLs at `deadline_s`.
inline child_result run_child(const std::string & program, const std::vector<std::string> & args,
                              const std::string & dir, double signal_after_s = -1, int sig = SIGINT,
                              double deadline_s = 300) {
    const std::string out = dir + "/child.out", err = dir + "/child.err";
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t pid = fork();
    if (pid == 0) {
        const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int n = open("/dev/null", O_RDONLY);
        dup2(n, 0);
        dup2(o, 1);
        dup2(e, 2);
        std::vector<char *> argv{const_cast<char *>(program.c_str())};
        for (const auto & a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execv(program.c_str(), argv.data());
        _exit(127);
    }
    child_result r;
    bool signalled = false;
    std::chrono::steady_clock::time_point t_sig;
    int status = 0;
    rusage ru{};
    for (;;) {
        const pid_t done = wait4(pid, &status, WNOHANG, &ru);
        const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (done == pid) {
            r.seconds = now;
            break;
        }
        if (!signalled && signal_after_s >= 0 && now >= signal_after_s) {
            kill(pid, sig);
            signalled = true;
            t_sig = std::chrono::steady_clock::now();
        }
        if (now > deadline_s) {
            kill(pid, SIGKILL);
            r.timed_out = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (signalled) r.after_signal_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_sig).count();
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.max_rss_kb = ru.ru_maxrss;
    r.out = slurp_file(out);
    r.err = slurp_file(err);
    return r;
}

inline child_result run_infermeter_child(const std::vector<std::string> & args, const std::string & dir,
                                         double signal_after_s = -1, int sig = SIGINT, double deadline_s = 300) {
    return run_child(bin_path("infermeter"), args, dir, signal_after_s, sig, deadline_s);
}

// True for the ASan build (`infermeter --version` says so): address-space limits do not apply to it.
inline bool sanitized_build() {
    static const bool yes = run_infermeter({"--version"}).out.find("ASan") != std::string::npos;
    return yes;
}

// The error is one line, the last on stderr (progress lines may precede it).
inline bool one_line_error(const std::string & err) {
    const size_t at = err.find("infermeter: error: ");
    return at != std::string::npos && (at == 0 || err[at - 1] == '\n') && err.find('\n', at) == err.size() - 1;
}

}  // namespace im::test
