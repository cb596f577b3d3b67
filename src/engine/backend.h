#pragma once

#include <cstdint>
#include <string>
#include <vector>

// Process-wide llama.cpp/ggml setup and what the compiled backends report about the machine.
namespace im::engine {

// Loads all ggml backends and initializes llama.cpp once. llama.cpp's own log is kept quiet
// unless `verbose`; its last error lines are kept for error messages (last_llama_errors()).
void init(bool verbose);

// The last lines llama.cpp/ggml logged at warning or error level (for error messages).
std::string last_llama_errors();

// While alive, records every line llama.cpp/ggml logs (any level) so callers can read back what
// llama.cpp allocated (KV cache size, compute buffers). One at a time; not thread-safe.
class log_capture {
  public:
    log_capture();
    ~log_capture();
    log_capture(const log_capture &) = delete;
    log_capture & operator=(const log_capture &) = delete;
    // A copy of the lines so far, taken under the log lock (llama.cpp may log from other threads).
    std::vector<std::string> lines() const;
};

struct device_info {
    std::string name;         // e.g. "CUDA0", "CPU"
    std::string description;  // e.g. "NVIDIA H100 80GB HBM3", CPU model name
    std::string type;         // "cpu", "gpu", "igpu", "accel"
    uint64_t memory_total = 0;
    uint64_t memory_free = 0;
};

// Every ggml backend device, in ggml's order.
std::vector<device_info> devices();
// Names of the compiled/loaded backend registries, e.g. {"CPU"} or {"CUDA", "CPU"}.
std::vector<std::string> backend_names();
// The CPU model name from /proc/cpuinfo ("unknown" elsewhere).
std::string cpu_name();
// Comma-separated GPU descriptions, empty on CPU-only machines (llama-bench's gpu_info).
std::string gpu_info();

}  // namespace im::engine
