#pragma once

#include "cli/engine_flags.h"

#include <string>
#include <sys/types.h>
#include <vector>

// `serve --launch-server`: build/bin/llama-server (or --server-bin) as a child process on 127.0.0.1
// and a free port, for the length of one run. The child is in its own process group (a Ctrl-C in the
// terminal reaches infermeter only, which then stops it) and dies with infermeter (PR_SET_PDEATHSIG).
namespace im::cli {

struct launch_options {
    std::string bin;                    // empty: llama-server beside the infermeter executable
    std::vector<std::string> args;      // after --host/--port: -m, -np, -c, ... as given
    double ready_timeout_s = 300;       // /health must answer 200 within this
};

class launched_server {
  public:
    // Starts the server and waits for /health; throws a runtime error with the tail of its log when
    // it exits or does not become ready.
    explicit launched_server(const launch_options & o);
    ~launched_server();
    launched_server(const launched_server &) = delete;
    launched_server & operator=(const launched_server &) = delete;

    std::string url() const;            // http://127.0.0.1:PORT
    std::string command_line() const;   // the argv, shell-quoted
    // SIGTERM, then SIGKILL after 10 s. Idempotent.
    void stop();
    // The last 4 KB of the server's log.
    std::string log_tail() const;

  private:
    std::vector<std::string> argv_;
    std::string log_path_;
    int port_ = 0;
    pid_t pid_ = -1;
};

// llama-server's flags for the engine flags given (the same ones the in-process runs use). Without
// `tunable`, the flags `tune --workload serve` searches (-b, -ub, -fa, -t/-tb) are left out: the search
// sets them per candidate.
std::vector<std::string> server_engine_args(const engine_flags & f, bool tunable = true);

// The llama-server beside the running executable (build/bin/llama-server for build/bin/infermeter).
std::string default_server_bin();

}  // namespace im::cli
