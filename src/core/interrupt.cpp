#include "core/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <semaphore.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace im::interrupt {

namespace {

std::atomic<int> g_count{0};
std::atomic<bool> g_have_last_words{false};
std::atomic<bool> g_watcher_started{false};
struct semaphore {
    sem_t s;
    semaphore() { ::sem_init(&s, 0, 0); }
} g_wake;

std::recursive_mutex & outputs_mutex() {
    static std::recursive_mutex m;
    return m;
}
std::vector<std::pair<std::string, std::function<void()>>> & last_words() {
    static std::vector<std::pair<std::string, std::function<void()>>> w;
    return w;
}

void say(const char * msg, size_t n) { [[maybe_unused]] auto r = ::write(2, msg, n); }

// Async-signal-safe: counts, prints with write(2), wakes the watcher with sem_post, or _exit.
void on_signal(int) {
    const int n = g_count.fetch_add(1) + 1;
    if (n == 1) {
        static const char msg[] = "\ninfermeter: interrupted, finishing the current step and writing partial results "
                                  "(press Ctrl-C again to quit now)\n";
        say(msg, sizeof(msg) - 1);
        return;
    }
    if (n == 2 && g_have_last_words.load() && g_watcher_started.load()) {
        static const char msg[] = "\ninfermeter: quitting; writing the partial results, marked interrupted (Ctrl-C "
                                  "again to quit without them)\n";
        say(msg, sizeof(msg) - 1);
        ::sem_post(&g_wake.s);
        return;
    }
    ::_exit(130);
}

void watcher() {
    while (::sem_wait(&g_wake.s) != 0) {
    }
    run_last_words();
    std::fflush(stdout);
    ::_exit(130);
}

}  // namespace

void install() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool requested() { return g_count.load(std::memory_order_relaxed) > 0; }
void reset() { g_count.store(0); }

void set_last_words(const std::string & key, std::function<void()> work) {
    auto lock = hold_outputs();
    auto & w = last_words();
    bool found = false;
    for (auto & [k, f] : w) {
        if (k == key) {
            f = std::move(work);
            found = true;
        }
    }
    if (!found) w.emplace_back(key, std::move(work));
    g_have_last_words = true;
    if (!g_watcher_started.exchange(true)) std::thread(watcher).detach();
}

void clear_last_words(const std::string & key) {
    auto lock = hold_outputs();
    auto & w = last_words();
    std::erase_if(w, [&](const auto & kv) { return kv.first == key; });
    g_have_last_words = !w.empty();
}

std::unique_lock<std::recursive_mutex> hold_outputs() { return std::unique_lock(outputs_mutex()); }

void run_last_words() {
    auto lock = hold_outputs();
    for (auto & [key, work] : last_words()) {
        try {
            work();
        } catch (const std::exception & e) {
            std::fprintf(stderr, "infermeter: error: %s\n", e.what());
        }
    }
    last_words().clear();
    g_have_last_words = false;
}

}  // namespace im::interrupt
