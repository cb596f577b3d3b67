// The fault-injecting server as a program, for benchmarks in another process (bench/http_client.sh).
// Usage: fault_server [--interval-us N] [--drip-us N]
// Prints "port N" on stdout, serves until stdin reaches EOF, then prints "chunks_sent N" on stderr.
#include "support/fault_server.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char ** argv) {
    im::test::fault_server_options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--interval-us") == 0) {
            o.chunk_interval_us = std::atoll(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--drip-us") == 0) {
            o.drip_interval_us = std::atoll(argv[i + 1]);
        } else {
            std::fprintf(stderr, "fault_server: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    rlimit rl{};  // a thousand streams need a thousand sockets
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    im::test::fault_server srv(o);
    std::printf("port %d\n", srv.port());
    std::fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    srv.stop();
    std::fprintf(stderr, "chunks_sent %llu requests %llu\n", static_cast<unsigned long long>(srv.chunks_sent()),
                 static_cast<unsigned long long>(srv.requests()));
    return 0;
}
