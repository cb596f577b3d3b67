#pragma once

#include "engine/llama/session.h"
#include "tune/search.h"

#include <filesystem>
#include <string>
#include <vector>

// The in-process evaluator of `infermeter tune --workload lockstep`: a candidate is a set of engine
// settings; its score is the lockstep generation t/s at W workers (a short sweep row: -p/-n), and its
// greedy tokens are those of a fixed prompt decoded by 2 sequences for a few steps (argmax of the
// logits). Settings that cannot change results are searched; KV cache types, which can, only with
// `kv_types` (reported apart).
namespace im::tune {

// What a candidate's score measures.
enum class workload_kind {
    lockstep,    // generation t/s of one lockstep row (no sampling: llama-batched-bench semantics)
    continuous,  // decode-step t/s of continuous batching with greedy sampling, W requests started together
    serve,       // llama-server's own flags: output t/s of a closed loop over HTTP (tune/serve.h, not in-process)
};
workload_kind workload_from_name(const std::string & name);  // "lockstep" | "continuous" | "serve"; usage error naming --workload
const char * workload_name(workload_kind k);

struct inprocess_config {
    workload_kind workload = workload_kind::lockstep;
    bool backend_sampling = false;  // continuous: the baseline samples in the graph (--backend-sampling)
    std::filesystem::path model_path;
    engine::llama::engine_params base;  // the user's flags: the baseline
    bool kv_unified = false;
    int workers = 8;
    int n_prompt = 128;
    int n_predict = 64;
    int verify_tokens = 16;     // greedy steps compared per sequence
    int repetitions = 3;        // lockstep repetitions per measurement; the best one is the score
    bool kv_types = false;      // also try q8_0 K/V (changes results: reported, not recommended silently)
    bool offloaded = false;     // layers on a GPU (threads and polling matter less; -t is not searched)
};

// The axes for this configuration, each with the baseline's value first: -fa, -ub (<= -b), --kv-unified,
// and on a CPU -t and --poll; with kv_types, -ctk/-ctv; for the continuous workload --backend-sampling
// (greedy sampling in the graph picks the argmax there: the same tokens, the engine settings unchanged).
std::vector<axis> inprocess_axes(const inprocess_config & c);

// Engine settings of a candidate (every axis applied over the baseline).
engine::llama::engine_params params_of(const inprocess_config & c, const candidate & cand, bool * kv_unified,
                                       bool * backend_sampling = nullptr);

// measure: the lockstep generation t/s at c.workers, best of c.repetitions (continuous: the decode-step
// t/s of c.workers requests of -p/-n started together, best of 2 runs after a warmup); same_outputs: the greedy trace
// against the baseline's (computed on first use) through compare_greedy. elapsed_s: a steady clock from this call.
evaluator inprocess_evaluator(const inprocess_config & c);

// Greedy decoding of `n_seq` sequences for `n_steps` after a fixed prompt: every logit row and its
// argmax. With `forced` (a trace's tokens), those tokens are fed back instead of the argmax.
greedy_trace greedy_run(const std::filesystem::path & model_path, const engine::llama::engine_params & p, bool kv_unified,
                        int n_seq, int n_prompt, int n_steps, const std::vector<int32_t> * forced = nullptr);

}  // namespace im::tune
