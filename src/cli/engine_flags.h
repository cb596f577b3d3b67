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
    std::string flash_attn = "auto";
    std::string n_batch = "2048";
    std::string n_ubatch = "512";
    std::string type_k = "f16";
    std::string type_v = "f16";
    std::string mmap = "1";
    std::string poll = "50";
};

// Rewrites llama-bench's multi-letter short flags (-ngl, -fa, -ub, -ctk, -ctv, -sm, -mg, -pg) and
// batched-bench's (-npp, -ntg, -npl, -kvu) to their long names before CLI11 parses argv.
std::vector<std::string> expand_short_aliases(int argc, char ** argv);

void add_engine_flags(CLI::App * cmd, engine_flags & f);

// The cartesian product, model-level settings outermost so a model loads as few times as possible.
std::vector<engine::llama::engine_params> expand(const engine_flags & f);
// Exactly one configuration; a usage error naming the flag when a list was given.
engine::llama::engine_params single(const engine_flags & f, const std::string & command);

}  // namespace im::cli
