#include "engine/backend.h"

#include "ggml-backend.h"
#include "llama.h"

#include <deque>
#include <fstream>
#include <mutex>

namespace im::engine {

namespace {

std::mutex g_log_mutex;
std::deque<std::string> g_errors;
bool g_verbose = false;
std::string g_partial;
std::vector<std::string> * g_capture = nullptr;
std::string g_capture_partial;

void log_callback(ggml_log_level level, const char * text, void *) {
    if (g_verbose) {
        std::fputs(text, stderr);
    }
    std::lock_guard lock(g_log_mutex);
    if (g_capture) {
        g_capture_partial += text;
        size_t nl;
        while ((nl = g_capture_partial.find('\n')) != std::string::npos) {
            g_capture->push_back(g_capture_partial.substr(0, nl));
            g_capture_partial.erase(0, nl + 1);
        }
    }
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN ||
        (level == GGML_LOG_LEVEL_CONT && !g_partial.empty())) {
        g_partial += text;
        if (!g_partial.empty() && g_partial.back() == '\n') {
            g_partial.pop_back();
            g_errors.push_back(g_partial);
            g_partial.clear();
            if (g_errors.size() > 4) g_errors.pop_front();
        }
    } else {
        g_partial.clear();
    }
}

}  // namespace

void init(bool verbose) {
    static std::once_flag once;
    g_verbose = verbose;
    std::call_once(once, [] {
        llama_log_set(log_callback, nullptr);
        ggml_backend_load_all();
        llama_backend_init();
    });
}

static std::vector<std::string> g_captured;

log_capture::log_capture() {
    std::lock_guard lock(g_log_mutex);
    g_captured.clear();
    g_capture_partial.clear();
    g_capture = &g_captured;
}

log_capture::~log_capture() {
    std::lock_guard lock(g_log_mutex);
    g_capture = nullptr;
}

std::vector<std::string> log_capture::lines() const {
    std::lock_guard lock(g_log_mutex);  // llama.cpp may log from its own threads meanwhile
    return g_captured;
}

std::string last_llama_errors() {
    std::lock_guard lock(g_log_mutex);
    std::string out;
    for (const auto & e : g_errors) out += (out.empty() ? "" : "; ") + e;
    return out;
}

std::vector<device_info> devices() {
    std::vector<device_info> out;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        device_info d;
        d.name = ggml_backend_dev_name(dev);
        d.description = ggml_backend_dev_description(dev);
        switch (ggml_backend_dev_type(dev)) {
            case GGML_BACKEND_DEVICE_TYPE_CPU:   d.type = "cpu"; break;
            case GGML_BACKEND_DEVICE_TYPE_GPU:   d.type = "gpu"; break;
            case GGML_BACKEND_DEVICE_TYPE_IGPU:  d.type = "igpu"; break;
            default:                             d.type = "accel"; break;
        }
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        d.memory_free = free;
        d.memory_total = total;
        out.push_back(d);
    }
    return out;
}

std::vector<std::string> backend_names() {
    std::vector<std::string> out;
    for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
        out.emplace_back(ggml_backend_reg_name(ggml_backend_reg_get(i)));
    }
    return out;
}

std::string cpu_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
        }
    }
    return "unknown";
}

std::string gpu_info() {
    std::string out;
    for (const auto & d : devices()) {
        if (d.type == "gpu" || d.type == "igpu") out += (out.empty() ? "" : ", ") + d.description;
    }
    return out;
}

}  // namespace im::engine
