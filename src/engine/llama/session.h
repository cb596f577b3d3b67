#pragma once

#include "core/error.h"
#include "model/info.h"

#include "ggml.h"
#include "llama.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

// In-process llama.cpp: a loaded model and contexts on it, configured like llama-bench.
namespace im::engine::llama {

enum class flash_attn { auto_, on, off };

// Engine settings shared by bench, parallel and evaluate; names follow llama-bench's flags.
struct engine_params {
    int n_threads = 0;            // -t; 0: physical cores as llama-bench counts them
    int n_gpu_layers = 99;        // -ngl
    llama_split_mode split_mode = LLAMA_SPLIT_MODE_LAYER;  // -sm
    int main_gpu = 0;             // -mg
    flash_attn fa = flash_attn::auto_;  // -fa
    int n_batch = 2048;           // -b
    int n_ubatch = 512;           // -ub
    ggml_type type_k = GGML_TYPE_F16;  // -ctk
    ggml_type type_v = GGML_TYPE_F16;  // -ctv
    bool use_mmap = true;         // --mmap
    int poll = 50;                // --poll: ggml threadpool polling level (llama-bench's default)
};

int default_threads();
std::string flash_attn_name(flash_attn fa);
std::string split_mode_name(llama_split_mode sm);

// A model loaded with the engine's model-level settings (ngl, split mode, mmap).
class model {
  public:
    // Loads the weights; `no_alloc` only reads metadata and simulates allocations (for planning).
    model(const std::filesystem::path & path, const engine_params & p, bool no_alloc = false);
    ~model();
    model(const model &) = delete;
    model & operator=(const model &) = delete;

    llama_model * get() const { return model_; }
    const llama_vocab * vocab() const { return llama_model_get_vocab(model_); }
    const im::model::info & info() const { return info_; }
    uint64_t size_bytes() const { return llama_model_size(model_); }
    uint64_t n_params() const { return llama_model_n_params(model_); }
    // llama.cpp's own description, e.g. "qwen2 1.5B Q4_K - Medium" (llama-bench's model_type).
    std::string type_desc() const;
    // True when the model-level settings match (the same model object can serve both).
    static bool same_load(const engine_params & a, const engine_params & b);

  private:
    llama_model * model_ = nullptr;
    im::model::info info_;
};

struct context_request {
    uint32_t n_ctx = 0;
    uint32_t n_seq_max = 1;
    bool kv_unified = false;
    // Attach a ggml threadpool of n_threads polling threads, as llama-bench does. batched-bench does
    // not (ggml then runs the CPU part of each graph without one); the lockstep sweep follows it,
    // which matters on GPUs, where polling CPU threads compete with the thread launching kernels.
    bool own_threadpool = true;
    // Backend sampling (llama.cpp's [EXPERIMENTAL] sampler chains in the graph), one per sequence;
    // the caller keeps the chains alive for the context's lifetime.
    const llama_sampler_seq_config * samplers = nullptr;
    size_t n_samplers = 0;
};

// What llama.cpp reported allocating for a context (read back from its log).
struct allocation {
    uint32_t n_ctx = 0;           // llama_n_ctx
    uint32_t n_ctx_seq = 0;       // llama_n_ctx_seq
    uint64_t kv_bytes = 0;        // "llama_kv_cache: size = ..." (0 when not reported)
    uint64_t compute_bytes = 0;   // sum of "compute buffer size = ..." over backends
};

// True for the refusal of the `ulimit -v` check that model and context loads run first: the
// environment's limit (a runtime failure), unlike llama.cpp refusing a flag combination.
bool is_address_space_refusal(const im::error & e);

// A context, with its own ggml threadpool attached when asked (llama-bench's way).
class context {
  public:
    context(const model & m, const engine_params & p, const context_request & r);
    ~context();
    context(const context &) = delete;
    context & operator=(const context &) = delete;

    llama_context * get() const { return ctx_; }
    const allocation & alloc() const { return alloc_; }
    int n_threads() const { return n_threads_; }
    // Empties the KV cache (all sequences).
    void clear();

  private:
    llama_context * ctx_ = nullptr;
    ggml_threadpool * threadpool_ = nullptr;
    allocation alloc_;
    int n_threads_ = 0;
};

// Parses llama.cpp's allocation log lines (KV cache size, compute buffer sizes) into `a`.
void parse_allocation_log(const std::vector<std::string> & lines, allocation & a);

}  // namespace im::engine::llama
