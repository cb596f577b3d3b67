#pragma once

#include "hardware/ceilings.h"
#include "model/info.h"

#include "ggml.h"

#include <string>
#include <vector>

// Measured ceilings of one ggml backend device (DESIGN §2.4): memory bandwidth (read-only, copy,
// triad; the best counts), matmul rate (f16 and a quantized type at a large square-ish shape, and at
// the model's own weight shapes per N), and the cost of computing and synchronizing a one-node graph.
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

// CPU: multi-threaded read-only reduction (two arrays summed), copy (b -> a) and STREAM triad
// (McCalpin, "STREAM", 1995: a[i] = b[i] + s*c[i], counted as 24 bytes per element) over three
// arrays of `bytes` each (callers pass far more than the last-level cache). Every page is first
// touched by the thread that later streams it, before any timing. Best repetition of each kind.
struct cpu_bandwidth_result {
    double read_bytes_per_s = 0.0;
    double copy_bytes_per_s = 0.0;   // bytes read + written
    double triad_bytes_per_s = 0.0;
};
cpu_bandwidth_result cpu_bandwidth(int n_threads, size_t bytes, double budget_s);

struct ggml_bandwidth_result {
    double read_bytes_per_s = 0.0;  // best of ggml_sum and ggml_sum_rows: 1 read
    double copy_bytes_per_s = 0.0;  // ggml_cpy f32 -> f32: 1 read + 1 write
    double add_bytes_per_s = 0.0;   // ggml_add in place (STREAM add, the triad's traffic): 2 reads + 1 write
};
// Device-memory bandwidth through ggml kernels on the device's own backend, on two f32 tensors of
// `bytes` each. One timed batch = one graph of `ops_per_batch` independent ops of one kind (0 =
// enough that a batch streams >= 8 GiB, 4..32) and one synchronize, so launch and sync costs are
// amortized as in a model's graph.
ggml_bandwidth_result ggml_bandwidth(const std::string & device_name, int n_threads, size_t bytes, double budget_s,
                                     int ops_per_batch = 0);

// FLOP/s of ggml_mul_mat(W[k x m] of `weight_type`, X[k x n] f32) = 2*m*n*k per call.
double ggml_matmul(const std::string & device_name, int n_threads, ggml_type weight_type, int m, int n, int k,
                   double budget_s);

// FLOP/s of the model's matmuls at its own shapes, as a decode step runs them: one graph holding
// every matrix of `shapes` (one layer's set) times X[k x n_cols] f32, the set repeated with its own
// weights until they total >= 512 MiB (≫ L2/LLC: nothing served from a cache), one synchronize per
// timed run; rate = Σ 2·m·n·k / the best run's seconds. Matrices of a type that needs an importance
// matrix to quantize are left out (logged); 0 when the backend cannot run one of the others.
double ggml_matmul_shapes(const std::string & device_name, int n_threads, const std::vector<model::weight_matrix> & shapes,
                          int n_cols, double budget_s);

// Median seconds of computing + synchronizing a one-node graph on 16 floats.
double ggml_launch_overhead(const std::string & device_name, int n_threads, double budget_s);

}  // namespace probes

// Fills c.matmul_model with the rate at the model's shapes for every N in `n_cols` (prefill
// micro-batch sizes and decode W values), served from the same cache as probe() (keyed by the
// shapes and N) unless `reprobe`. Leaves c untouched when `shapes` is empty. Not thread-safe.
void probe_model_matmuls(ceilings & c, const std::string & device_name, int n_threads, bool reprobe,
                         const std::vector<model::weight_matrix> & shapes, std::vector<int> n_cols);

// The ggml device `probe` would use for `device_name` (same rules), as "name|description|type".
struct resolved_device {
    std::string name;         // ggml device name, e.g. "CPU", "CUDA0"
    std::string description;  // e.g. "NVIDIA H100 80GB HBM3"
    std::string backend;      // registry name, e.g. "CPU", "CUDA"
    bool is_cpu = false;
};
resolved_device resolve_device(const std::string & device_name);

}  // namespace im::hardware
