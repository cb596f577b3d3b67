#pragma once

#include "hardware/ceilings.h"

#include "ggml.h"

#include <string>

// Measured ceilings of one ggml backend device (DESIGN §2.4): memory bandwidth, matmul rate (f16
// and a quantized type), and the cost of launching and synchronizing a trivially small graph.
// Each probe runs for at most a few seconds; results are cached per machine, backend, device,
// threads and quant type in fs::cache_dir()/"hardware.json".
namespace im::hardware {

// Ceilings of `device_name` (a ggml device name such as "CUDA0" or "CPU", or a description
// substring; "" = the device a model runs on: the first GPU, else the first iGPU, else the CPU).
// `n_threads` <= 0 = all logical CPUs (used by the CPU probes only). Served from the cache unless
// `reprobe` or the entry is missing. Requires engine::init(). Throws a usage error for an unknown
// device and a runtime error when the backend cannot run a probe. Not thread-safe.
ceilings probe(const std::string & device_name, int n_threads, bool reprobe,
               ggml_type quant_type = GGML_TYPE_Q4_K);

// The individual probes, uncached (for tests and for `probe`). Each returns the best of its
// repetitions; the time budget bounds one probe's wall time roughly.
namespace probes {

// CPU: multi-threaded read and STREAM triad (McCalpin, "STREAM", 1995: a[i] = b[i] + s*c[i],
// counted as 24 bytes per element) over `bytes` per array set (at least 4x the last-level cache).
struct cpu_bandwidth_result {
    double read_bytes_per_s = 0.0;
    double triad_bytes_per_s = 0.0;
};
cpu_bandwidth_result cpu_bandwidth(int n_threads, size_t bytes, double budget_s);

struct ggml_bandwidth_result {
    double copy_bytes_per_s = 0.0;  // ggml_cpy f32 -> f32: bytes read + written
    double add_bytes_per_s = 0.0;   // ggml_add: 2 reads + 1 write
};
// Device-memory bandwidth through ggml kernels on the device's own backend.
ggml_bandwidth_result ggml_bandwidth(const std::string & device_name, int n_threads, size_t bytes, double budget_s);

// FLOP/s of ggml_mul_mat(W[k x m] of `weight_type`, X[k x n] f32) = 2*m*n*k per call.
double ggml_matmul(const std::string & device_name, int n_threads, ggml_type weight_type, int m, int n, int k,
                   double budget_s);

// Median seconds of computing + synchronizing a one-node graph on 16 floats.
double ggml_launch_overhead(const std::string & device_name, int n_threads, double budget_s);

}  // namespace probes

// The ggml device `probe` would use for `device_name` (same rules), as "name|description|type".
struct resolved_device {
    std::string name;         // ggml device name, e.g. "CPU", "CUDA0"
    std::string description;  // e.g. "NVIDIA H100 80GB HBM3"
    std::string backend;      // registry name, e.g. "CPU", "CUDA"
    bool is_cpu = false;
};
resolved_device resolve_device(const std::string & device_name);

}  // namespace im::hardware
