#pragma once

#include <CLI/CLI.hpp>

// One function per subcommand: each adds its flags to the root app and a callback that runs it.
// Callbacks throw im::error; only main.cpp catches.
namespace im::cli {

void add_model(CLI::App & root);     // model synth | model info
void add_dataset(CLI::App & root);   // dataset synth
void add_analyze(CLI::App & root);   // dataset token lengths -> n-prompt / n-predict
void add_bench(CLI::App & root);     // single request pp/tg (llama-bench semantics)
void add_parallel(CLI::App & root);  // lockstep worker sweep
void add_roofline(CLI::App & root);  // hardware ceilings and bottleneck
void add_evaluate(CLI::App & root);  // the whole pipeline and the report
void add_history(CLI::App & root);   // history | compare
void add_serve(CLI::App & root);     // an OpenAI-compatible HTTP server under load
void add_merge(CLI::App & root);     // the shards of `serve --shard K/N` merged into one result
void add_tune(CLI::App & root);      // the engine settings that are fastest here

// Options every command shares; set before any callback runs.
struct global_options {
    bool verbose = false;  // llama.cpp's own log on stderr
    bool quiet = false;    // no progress or info on stderr
    std::string command_line;  // argv joined, recorded with every result
};
global_options & globals();

// Loads backends and llama.cpp with the global verbosity; warns about debug/sanitizer builds.
void init_engine();

}  // namespace im::cli
