#pragma once

#include "engine/llama/session.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

// llama-bench's engine flags, shared by bench, parallel and evaluate. Every flag takes a list
// ("1,2,4") or range ("1-8*2") where the command sweeps (bench); others take one value.
namespace im::cli {

struct engine_flags {
    std::string threads;          // -t (empty: physical cores)
    std::string n_gpu_layers = "99";
    std::string split_mode = "layer";
    std::string main_gpu = "0";
    std::string tensor_split;     // -ts; empty: llama.cpp's split by free memory
    std::string rpc;              // --rpc host:port,...; one list per process, not swept
    std::string flash_attn = "auto";
    std::string n_batch = "2048";
    std::string n_ubatch = "512";
    std::string type_k = "f16";
    std::string type_v = "f16";
    std::string mmap = "1";
    std::string poll = "50";
};

// -ts values: per-device proportions separated by '/' or ';' ("3/1"), ',' between the values of a sweep
// ("3/1,1/1"), as llama-bench reads them. A list of plain numbers without '/' ("3,1") is one split, as
// llama-server reads it (as a llama-bench sweep it would be single-device splits that all place the
// model alike). "0" alone is llama.cpp's default (by free memory). Each value finite and >= 0, not all
// 0, at most llama_max_devices() of them; a usage error naming -ts otherwise.
std::vector<std::vector<float>> parse_tensor_split(const std::string & text);
// --rpc "host:port[,host:port...]": host non-empty (a name or IPv4 address: ggml's RPC client splits at
// the first ':'), port 1..65535, no repeats, at most GGML_RPC_MAX_SERVERS; a usage error naming --rpc.
std::vector<std::string> parse_rpc_endpoints(const std::string & text);

// Rewrites llama-bench's multi-letter short flags (-ngl, -fa, -ub, -ctk, -ctv, -sm, -mg, -ts, -rpc, -pg) and
// batched-bench's (-npp, -ntg, -npl, -kvu) to their long names before CLI11 parses argv.
std::vector<std::string> expand_short_aliases(int argc, char ** argv);

void add_engine_flags(CLI::App * cmd, engine_flags & f);

// The cartesian product, model-level settings outermost so a model loads as few times as possible.
std::vector<engine::llama::engine_params> expand(const engine_flags & f);
// Exactly one configuration; a usage error naming the flag when a list was given.
engine::llama::engine_params single(const engine_flags & f, const std::string & command);

// On stderr, where layers sit off the CPU (GPUs, --rpc servers): which device holds which layers.
void note_devices(const engine::llama::model & m);

// --split-baseline FILE: single-device step times for the split analysis (bench, parallel).
void add_split_baseline_flag(CLI::App * cmd, std::string & path);

}  // namespace im::cli
