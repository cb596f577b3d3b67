#pragma once

#include "core/error.h"
#include "engine/backend.h"
#include "model/info.h"

#include "ggml.h"
#include "llama.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

// In-process llama.cpp: a loaded model and contexts on it, configured like llama-bench.
namespace im::engine::llama {

enum class flash_attn { auto_, on, off };

// Engine settings shared by bench, parallel and evaluate; names follow llama-bench's flags.
struct engine_params {
    int n_threads = 0;            // -t; 0: physical cores as llama-bench counts them
    int n_gpu_layers = 99;        // -ngl
    llama_split_mode split_mode = LLAMA_SPLIT_MODE_LAYER;  // -sm
    int main_gpu = 0;             // -mg
    // -ts: proportion of the layers (rows with -sm row) per device, in llama.cpp's device order; empty:
    // llama.cpp's default, in proportion to each device's free memory. At most llama_max_devices().
    std::vector<float> tensor_split;
    // --rpc: ggml-rpc-server endpoints ("host:port"), registered once per process before a model
    // loads; their devices come first in llama.cpp's device order.
    std::vector<std::string> rpc;
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
// "3/1" (llama-bench's "/" separator, shortest number form); "0" for llama.cpp's default split.
std::string tensor_split_name(const std::vector<float> & ts);
// "host:port,host:port"; empty without --rpc.
std::string rpc_name(const std::vector<std::string> & endpoints);

// One device's share of a loaded model (and of a context on it): the layers it holds and the bytes of
// its buffers, from llama.cpp's load log (llama.h has no query for the placement; docs/scale-out.md).
struct device_use {
    std::string name;             // ggml's device name: "CPU", "CUDA0", "RPC0"
    std::string description;      // "127.0.0.1:50052" for RPC, the GPU or CPU model otherwise
    std::string type;             // "cpu", "gpu", "igpu", "accel"; "rpc" for an RPC server's device
    std::vector<int> layers;      // repeating layers it holds, ascending
    bool input = false;           // the input layer (token embeddings; llama.cpp keeps it on the CPU)
    bool output = false;          // the output layer
    uint64_t model_bytes = 0;     // weight buffers ("model buffer size")
    uint64_t kv_bytes = 0;        // KV cache buffers of the context, 0 without one
    uint64_t compute_bytes = 0;   // compute buffers of the context, 0 without one
    uint64_t memory_free = 0;     // as the device reports it when described
    uint64_t memory_total = 0;
};

// The devices llama.cpp offloads layers to under `p` (llama_prepare_model_devices' default selection:
// --rpc servers first, then GPUs, integrated GPUs only without a GPU; -sm none keeps the -mg one).
// Registers p.rpc first (engine::add_rpc_servers). Empty when nothing is offloaded (-ngl 0, CPU only).
std::vector<device_info> offload_devices(const engine_params & p);

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
    // Which device holds which layers and how many weight bytes, in llama.cpp's device order, CPU last.
    const std::vector<device_use> & placement() const { return placement_; }

  private:
    llama_model * model_ = nullptr;
    im::model::info info_;
    std::vector<device_use> placement_;
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
    // Per buffer (type) name, as logged: "CPU", "CUDA0", "RPC0[127.0.0.1:50052]".
    std::vector<std::pair<std::string, uint64_t>> kv_by_buffer;
    std::vector<std::pair<std::string, uint64_t>> compute_by_buffer;
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

// Parses llama.cpp's model load log ("layer N assigned to device D", "B model buffer size = X MiB")
// into per-device rows; `n_layer` tells the output layer (index n_layer) from the repeating ones.
// `buffer_device` maps a buffer name to its device name (device_of_buffer on a live process).
std::vector<device_use> parse_placement_log(const std::vector<std::string> & lines, int n_layer,
                                            const std::function<std::string(const std::string &)> & buffer_device);
// The ggml device a buffer (type) name belongs to: the device whose buffer type has that name, "CPU" for
// host buffers (CPU_Mapped, CPU_REPACK, CUDA_Host), else the device whose name prefixes it, else the
// buffer name itself (e.g. CUDA_Split, spread over several GPUs).
std::string device_of_buffer(const std::string & buffer);
// The model's placement with a context's KV and compute buffers added (ctx may be null), and each
// device's free/total memory now.
std::vector<device_use> devices_in_use(const model & m, const allocation * ctx = nullptr);
// One line: "RPC0 (127.0.0.1:50052): layers 0-11, 12.5 MiB weights, 1.0 MiB KV; CPU: input, 8.3 MiB weights".
std::string describe_devices(const std::vector<device_use> & devices);
// "0-11", "0-3, 8", "none".
std::string layer_ranges(const std::vector<int> & layers);

}  // namespace im::engine::llama
