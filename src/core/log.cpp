#include "core/log.h"

#include <cstdio>
#include <mutex>

namespace im::log {

static std::mutex g_mutex;
static bool g_quiet = false;
static sink_fn g_sink = [](level lv, const std::string & msg) {
    std::fprintf(stderr, "%s%s\n", lv == level::warn ? "warning: " : "", msg.c_str());
};

void set_sink(sink_fn sink) {
    std::lock_guard lock(g_mutex);
    g_sink = std::move(sink);
}

void set_quiet(bool q) { g_quiet = q; }
bool quiet() { return g_quiet; }

void emit(level lv, const std::string & message) {
    if (g_quiet && lv == level::info) {
        return;
    }
    std::lock_guard lock(g_mutex);
    g_sink(lv, message);
}

}  // namespace im::log
