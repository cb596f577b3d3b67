#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
    double mem_read_bytes_per_s = 0.0;      // read-only reduction (CPU: sum of two arrays; GPU: ggml_sum)
    double mem_copy_bytes_per_s = 0.0;      // copy, bytes read + written (CPU: loop; GPU: ggml_cpy)
    double mem_triad_bytes_per_s = 0.0;     // CPU: STREAM triad; GPU: ggml_add in place (same 2 reads + 1 write)
    std::string mem_bw_kind;                // which of "read", "copy", "triad" gave mem_bw_bytes_per_s
    int64_t mem_probe_bytes = 0;            // bytes per array/tensor the bandwidth probe streamed
    int n_threads = 0;                      // threads the CPU probes used; 0 for GPUs and specs
    std::string probed_at;                  // RFC 3339, empty for specs

    // Matmul rate at the model's own weight shapes and types (block 0's matrices), per N columns:
    // N = the prefill micro-batch (min(n_ubatch, prompt tokens)) and N = W for decode. Empty when
    // not probed (specs, or no model shapes known).
    struct matmul_at_n {
        int n_cols = 0;
        double flops_per_s = 0.0;  // Σ 2·m·n·k / Σ seconds over the layer's matrices
    };
    std::vector<matmul_at_n> matmul_model;
    std::string matmul_model_shapes;  // e.g. "attn_q q4_K 896x896, ffn_down q6_K 4864x896"
};

// The rate probed at the model's shapes for `n_cols` columns, or 0 when that N was not probed.
double matmul_model_rate(const ceilings & c, int n_cols);

// The matmul ceiling that applies to weights of ggml type `weight_type_name`: the quantized
// probe's rate when it measured that type, the f16 rate for float weights or when the quantized
// rate is unknown. Specs give one number for both.
double matmul_ceiling_for(const ceilings & c, const std::string & weight_type_name);

}  // namespace im::hardware
