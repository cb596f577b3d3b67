// The HTTP client's own accuracy and cost (bench/http_client.sh): a closed loop of C streams
// against the fault server's `ok` mode, whose chunks carry their server send time (same steady
// clock). Prints, over the measured window: chunks/s, p50/p99/max |client-observed − server-sent|,
// client CPU in cores (whole process: client threads and this driver), client peak RSS.
// Usage: http_client_bench --url http://127.0.0.1:PORT/ok --streams C --chunks N [--seconds S]
//                          [--warmup S] [--client-threads T|auto]  (auto, the default: as serve's)
#include "core/stats.h"
#include "engine/http/client.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/resource.h>

using namespace im::engine;

static int64_t cpu_ns_self() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1'000'000'000 +
           (int64_t(ru.ru_utime.tv_usec) + ru.ru_stime.tv_usec) * 1000;
}

static long status_kib(const char * key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
    }
    return -1;
}

int main(int argc, char ** argv) {
    std::string url;
    int streams = 100, chunks = 100, threads = 0;  // 0: auto
    double seconds = 10, warmup = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const char * v = argv[i + 1];
        if (k == "--url") url = v;
        else if (k == "--streams") streams = std::atoi(v);
        else if (k == "--chunks") chunks = std::atoi(v);
        else if (k == "--seconds") seconds = std::atof(v);
        else if (k == "--warmup") warmup = std::atof(v);
        else if (k == "--client-threads") threads = std::strcmp(v, "auto") == 0 ? 0 : std::atoi(v);
        else {
            fmt::print(stderr, "http_client_bench: unknown flag {}\n", k);
            return 2;
        }
    }
    http::client_options o;
    o.urls = {url};
    o.endpoint = http::api::completions;
    o.client_threads = threads > 0 ? threads : http::auto_client_threads(streams);
    o.request_timeout_ms = 120'000;
    http::http_engine eng(o);

    uint64_t next_id = 1;
    auto submit = [&] {
        request r;
        r.id = next_id++;
        r.prompt_text = "bench";
        r.n_predict = chunks;
        r.t_intended_ns = eng.now_ns();
        eng.submit(std::move(r));
    };
    const int64_t t0 = eng.now_ns();
    const int64_t t_measure = t0 + int64_t(warmup * 1e9);
    const int64_t t_stop = t_measure + int64_t(seconds * 1e9);
    for (int i = 0; i < streams; ++i) submit();

    std::vector<double> delay_us;
    delay_us.reserve(size_t(seconds * 200'000));
    uint64_t n_chunks = 0, n_failed = 0, n_finished = 0;
    int64_t cpu0 = -1, client_cpu0 = 0, wall0 = 0;
    std::vector<event> got;
    bool measuring = false;
    while (eng.in_flight() > 0) {
        got.clear();
        const int64_t now = eng.now_ns();
        if (!measuring && now >= t_measure) {
            measuring = true;
            cpu0 = cpu_ns_self();
            client_cpu0 = eng.stats().cpu_ns;
            wall0 = now;
        }
        eng.poll(now + 5'000'000, got);
        for (const event & e : got) {
            if (e.kind == event_kind::tokens) {
                const size_t at = e.text.find('@');
                if (measuring && e.t_ns < t_stop && at != std::string::npos) {
                    const int64_t t_sent = std::atoll(e.text.c_str() + at + 1);
                    delay_us.push_back(std::fabs(double(e.t_ns - t_sent)) / 1e3);
                    ++n_chunks;
                }
            } else if (e.kind == event_kind::finished || e.kind == event_kind::failed) {
                if (e.kind == event_kind::failed) {
                    n_failed += e.cause != failure::cancelled;
                    if (n_failed <= 3 && e.cause != failure::cancelled) fmt::print(stderr, "failed: {} {}\n", failure_name(e.cause), e.message);
                } else {
                    ++n_finished;
                }
                if (eng.now_ns() < t_stop) submit();
            }
        }
        if (measuring && eng.now_ns() >= t_stop && cpu0 >= 0 && wall0 > 0) {
            const int64_t wall = eng.now_ns() - wall0;
            const double cores = double(cpu_ns_self() - cpu0) / double(wall);
            const double client_cores = double(eng.stats().cpu_ns - client_cpu0) / double(wall);
            fmt::print("streams {} client_threads {} chunks_per_s {:.0f} delay_p50_us {:.0f} delay_p99_us {:.0f} delay_max_us {:.0f} "
                       "cpu_cores {:.3f} client_thread_cores {:.3f} rss_mib {:.1f} failed {}\n",
                       streams, o.client_threads, double(n_chunks) / (double(wall) / 1e9),
                       delay_us.empty() ? 0.0 : im::stats::percentile(delay_us, 50),
                       delay_us.empty() ? 0.0 : im::stats::percentile(delay_us, 99),
                       delay_us.empty() ? 0.0 : im::stats::percentile(delay_us, 100), cores, client_cores,
                       double(status_kib("VmHWM:")) / 1024.0, n_failed);
            std::fflush(stdout);
            cpu0 = -1;  // printed once; drain the rest
            eng.cancel_all();
        }
    }
    return n_finished > 0 ? 0 : 1;
}
