#pragma once

#include "ggml.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace im::model {

// One weight matrix of a layer as ggml_mul_mat sees it: y[m x n] = W[k x m]^T x[k x n].
struct weight_matrix {
    std::string name;  // tensor name without "blk.0.", e.g. "attn_q.weight"
    ggml_type type = GGML_TYPE_F32;
    int64_t k = 0;     // ne0: input width
    int64_t m = 0;     // ne1: output width
};

// What a GGUF file says about the model, read from its metadata without loading weights.
struct info {
    std::filesystem::path path;
    std::string arch;
    std::string name;
    int n_layer = 0;
    int n_embd = 0;
    int n_ff = 0;
    int n_head = 0;
    std::vector<int> n_head_kv;  // per layer (all equal for the architectures synth writes)
    int head_dim_k = 0;
    int head_dim_v = 0;
    int n_vocab = 0;
    int n_ctx_train = 0;
    int file_type = -1;          // general.file_type (llama_ftype), -1 when absent
    uint64_t size_bytes = 0;     // bytes of all tensors: what llama-bench prints as model_size
    uint64_t file_bytes = 0;
    uint64_t n_params = 0;       // elements of all tensors: llama-bench's model_n_params
    bool tied_embeddings = true; // no separate output.weight
    std::vector<weight_matrix> layer_matmuls;  // block 0's 2-D weights (attention and FFN), file order

    // llama-bench's model_type: "qwen2 1.5B Q4_K - Medium" style description is llama.cpp's; ours is
    // "<arch> <params> <file type>", e.g. "qwen2 1.5B Q4_K_M".
    std::string description() const;
    int n_embd_k_gqa(int layer) const { return head_dim_k * n_head_kv[layer]; }
    int n_embd_v_gqa(int layer) const { return head_dim_v * n_head_kv[layer]; }
};

// Reads and checks a GGUF file. Throws a runtime error naming the path when it is missing, not
// GGUF, truncated, or of an architecture whose attention shape this reader does not know.
info read_info(const std::filesystem::path & path);

// KV cache bytes per token (DESIGN §2.3): Σ_layers row_size(type_k, n_embd_k_gqa) + row_size(type_v, n_embd_v_gqa).
uint64_t kv_bytes_per_token(const info & m, ggml_type type_k, ggml_type type_v);

// Cache types by llama-bench's names ("f16", "q8_0", "q4_0", "bf16", "f32", "q4_1", "q5_0", "q5_1", "iq4_nl").
ggml_type cache_type_from_name(const std::string & name, const std::string & flag);

}  // namespace im::model
