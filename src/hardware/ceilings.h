#pragma once

#include <string>

// What one device can do at best: the roof of the roofline (DESIGN §2.4).
namespace im::hardware {

struct ceilings {
    std::string backend;                    // ggml backend registry, e.g. "CPU", "CUDA", "Metal"; "" for a spec
    std::string device;                     // device description, e.g. "NVIDIA H100 80GB HBM3", or the spec's name
    double mem_bw_bytes_per_s = 0.0;        // sustained memory bandwidth, bytes read + written per second
    double matmul_f16_flops_per_s = 0.0;    // dense matmul, f16 weights x f32 activations
    double matmul_quant_flops_per_s = 0.0;  // dense matmul, `quant_type` weights x f32 activations
    std::string quant_type;                 // ggml type name of the quantized probe, e.g. "q4_K"
    double launch_overhead_s = 0.0;         // one trivially small graph: launch + synchronize; 0 = unknown
    std::string source;                     // "measured" | "spec:<datasheet name>" | "user"
    // Detail of the measurement (shown, cached, not used by the classification).
    double mem_read_bytes_per_s = 0.0;      // read-only stream (CPU) / ggml_cpy (GPU)
    double mem_triad_bytes_per_s = 0.0;     // STREAM triad (CPU) / ggml_add (GPU)
    int n_threads = 0;                      // threads the CPU probes used; 0 for GPUs and specs
    std::string probed_at;                  // RFC 3339, empty for specs
};

// The matmul ceiling that applies to weights of ggml type `weight_type_name`: the quantized
// probe's rate when it measured that type, the f16 rate for float weights or when the quantized
// rate is unknown. Specs give one number for both.
double matmul_ceiling_for(const ceilings & c, const std::string & weight_type_name);

}  // namespace im::hardware
