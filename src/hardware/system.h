#pragma once

#include "engine/backend.h"

#include <cstdint>
#include <string>
#include <vector>

// What machine the numbers come from: CPU, caches, memory, every ggml backend device.
namespace im::hardware {

struct system_info {
    std::string cpu_model;             // /proc/cpuinfo "model name" (Linux), machdep.cpu.brand_string (macOS)
    int n_cores = 0;                   // physical cores; falls back to n_threads when unknown
    int n_threads = 0;                 // logical CPUs (std::thread::hardware_concurrency)
    uint64_t l1d_bytes = 0;            // per core; 0 = unknown
    uint64_t l2_bytes = 0;             // per core (or per cluster); 0 = unknown
    uint64_t l3_bytes = 0;             // largest shared last-level cache; 0 = unknown
    uint64_t memory_total_bytes = 0;   // physical RAM
    std::vector<engine::device_info> devices;  // every ggml backend device, in ggml's order
    std::vector<std::string> backend_features;  // "CPU: AVX2=1", "CUDA: ..." as the registries report them
    std::string os;                    // uname: "Linux 6.1.0-18-amd64 x86_64"
    std::string hostname;

    // The last-level cache, the largest of l3/l2 known (0 = unknown).
    uint64_t llc_bytes() const { return l3_bytes ? l3_bytes : l2_bytes; }
};

// Reads the machine description. Requires engine::init() for the device list. Never throws:
// fields it cannot read stay 0/empty.
system_info describe_system();

}  // namespace im::hardware
