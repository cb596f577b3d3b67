#include "core/interrupt.h"

#include <atomic>
#include <csignal>
#include <unistd.h>

namespace im::interrupt {

static std::atomic<int> g_count{0};

static void on_signal(int) {
    if (g_count.fetch_add(1) >= 1) {
        ::_exit(130);
    }
    static const char msg[] = "\ninfermeter: interrupted, finishing the current step and writing partial results "
                              "(press Ctrl-C again to quit now)\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof(msg) - 1);
}

void install() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool requested() { return g_count.load(std::memory_order_relaxed) > 0; }
void reset() { g_count.store(0); }

}  // namespace im::interrupt
