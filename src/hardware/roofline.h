#pragma once

#include "hardware/ceilings.h"
#include "hardware/system.h"
#include "model/info.h"

#include "ggml.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

// Bytes and FLOPs a model moves per token, and where measured throughput sits under the roof
// (DESIGN §2.4). Roofline model: Williams, Waterman & Patterson, "Roofline: an insightful visual
// performance model for multicore architectures", CACM 52(4), 2009.
namespace im::hardware {

// What one token costs, from the model's shape and file.
struct model_cost {
    std::string model;                 // model description, e.g. "qwen2 1.5B Q4_K_M"
    std::string weight_type;           // dominant ggml weight type, e.g. "q4_K" (from general.file_type)
    uint64_t weight_bytes_per_step = 0;  // weights streamed once per decode step; tied embeddings once
    uint64_t n_params = 0;             // all tensor elements
    uint64_t matmul_params = 0;        // parameters that take part in a matmul per token (untied token
                                       // embeddings are a row lookup, not a matmul)
    uint64_t kv_bytes_per_token = 0;   // DESIGN §2.3, for the cache types given
    int n_layer = 0;
    int attn_width = 0;                // n_head * head_dim: Q·K and A·V width per layer
    std::string type_k, type_v;        // cache type names
};

model_cost cost_of(const model::info & m, ggml_type type_k, ggml_type type_v);

// One decode step of `workers` sequences whose KV depth averages `mean_depth_tokens`:
// bytes = weights + workers * depth * kv_bytes_per_token (each sequence reads its own KV once).
double decode_step_bytes(const model_cost & c, int workers, double mean_depth_tokens);
// FLOPs = workers * (2 * matmul_params + 4 * n_layer * depth * n_head * head_dim): a multiply-add
// per weight, and Q·K^T plus A·V over `depth` cached positions per head (Kaplan et al., "Scaling
// laws for neural language models", 2020, table 1, forward pass).
double decode_step_flops(const model_cost & c, int workers, double mean_depth_tokens);
// Prefill of `workers` prompts of `n_prompt` tokens each, causal: 2 * matmul_params per token plus
// attention over positions 0..n-1 (Σ i = n(n-1)/2 per sequence).
double prefill_flops(const model_cost & c, int n_prompt, int workers = 1);
// Prefill traffic: weights once per micro-batch of `n_ubatch` tokens (llama.cpp streams all weights
// for each ubatch) + the KV written and read back.
double prefill_bytes(const model_cost & c, int n_prompt, int workers = 1, int n_ubatch = 512);

// Best tokens/s a roofline allows for decode at `workers` sequences: workers / max(bytes / bw,
// flops / matmul ceiling). Launch overhead is left out on purpose: it is what the gap measures.
double ideal_decode_tokens_per_s(const model_cost & c, const ceilings & ceil, int workers, double mean_depth_tokens);

// A measured throughput to explain.
struct observation {
    std::string phase = "decode";    // "decode" | "prefill"
    int workers = 1;
    double tokens_per_s = 0.0;       // all sequences together (generation t/s or prompt t/s)
    double mean_depth_tokens = 0.0;  // decode: mean KV depth per sequence over the run
    int n_prompt = 0;                // prefill: prompt tokens per sequence
    int n_ubatch = 512;              // prefill: the run's physical batch (-ub); weights stream once per ubatch
};

// Columns of one prefill micro-batch: min(n_ubatch, workers * n_prompt) (llama.cpp splits the
// batch into ubatches of at most n_ubatch tokens).
int prefill_ubatch_tokens(const observation & o);

// Parses one --observed value: comma-separated key=value with keys workers (w), gen_tps (tg_tps),
// pp_tps (prompt_tps), depth, n_prompt (p), n_gen (n), n_ubatch (ub; default `default_n_ubatch`). gen_tps gives a decode observation whose depth
// is `depth`, else n_prompt + n_gen/2; pp_tps gives a prefill observation (needs n_prompt). Both may
// appear. Throws a usage error naming --observed.
std::vector<observation> parse_observation(const std::string & text, int default_n_ubatch = 512);

enum class bound { bandwidth, compute, kernel, overhead };
const char * bound_name(bound b);  // "bandwidth-bound" | "compute-bound" | "kernel-bound" | "overhead-bound"

// A phase is bandwidth-bound when achieved bandwidth >= this fraction of the ceiling, compute-bound
// when achieved FLOP/s >= this fraction of the matmul ceiling (the larger fraction wins when both
// are), overhead-bound otherwise. docs/roofline.md explains the choice.
constexpr double bound_threshold = 0.6;

struct verdict {
    observation obs;
    double step_s = 0.0;                   // measured seconds per step (decode) or per prefill
    double bytes_per_step = 0.0;
    double flops_per_step = 0.0;
    double achieved_bw_bytes_per_s = 0.0;
    double bw_fraction = 0.0;              // of ceilings::mem_bw_bytes_per_s
    double achieved_flops_per_s = 0.0;
    double flops_fraction = 0.0;           // of matmul_ceiling_flops_per_s
    double matmul_ceiling_flops_per_s = 0.0;  // the model-shape rate at this phase's N when probed, else
                                              // the generic rate for the weight type
    std::string matmul_ceiling;            // which matmul ceiling that is, in words
    double roof_step_s = 0.0;              // max(bytes / bw, flops / matmul ceiling)
    double unexplained_s = 0.0;            // step_s - roof_step_s (>= 0 when the ceilings are right)
    bound kind = bound::overhead;
    double kernel_bw_fraction = 0;         // weight bandwidth the model-shape matmul probe at this N streamed / bw ceiling
    double ideal_tokens_per_s = 0.0;       // roofline bound for this W (and phase)
    std::vector<std::string> sentences;    // plain-language explanation generated from the numbers
};

// A fraction of a ceiling as text: "45%", or, above 100%, "above the <ceiling> ceiling" (a measured
// phase faster than its ceiling means the ceiling is wrong; no percentage > 100% is printed).
std::string fraction_of_ceiling(double fraction, const std::string & ceiling);

// Whether the ceilings come from a backend that launches kernels (GPU-like); false for the CPU
// backend and for specs and --device-spec values, which name no backend.
bool has_kernel_launches(const ceilings & c);

// Classifies one observation. Throws a usage error when the observation has no throughput, and a
// runtime error when the ceilings are missing (bandwidth or matmul rate 0).
verdict classify(const model_cost & c, const ceilings & ceil, const observation & obs);

struct roofline_report {
    system_info system;
    ceilings ceil;
    model_cost cost;
    double curve_depth_tokens = 0.0;                   // depth the ideal curve is drawn at
    std::vector<verdict> verdicts;
    std::vector<std::pair<int, double>> ideal_curve;   // W -> ideal generation t/s
    std::vector<std::string> summary;                  // plain sentences over all verdicts
};

// Classifies every observation, draws the ideal curve for `curve_workers` at `curve_depth_tokens`,
// and writes the summary.
roofline_report make_report(const system_info & sys, const ceilings & ceil, const model_cost & c,
                            const std::vector<observation> & observations, const std::vector<int> & curve_workers,
                            double curve_depth_tokens);

nlohmann::ordered_json to_json(const roofline_report & r);
// A section for the evaluate report: "### Interpretation" with the ceilings, the model's cost, a
// per-phase table, the measured vs ideal curve and the sentences.
std::string to_markdown(const roofline_report & r);

// Dominant weight type of a llama_ftype (general.file_type): GGML_TYPE_Q4_K for Q4_K_M, F16 for
// F16...; GGML_TYPE_COUNT when unknown.
ggml_type weight_type_of_ftype(int file_type);

}  // namespace im::hardware
