#pragma once

#include "report/table.h"

#include <cstdint>
#include <string>
#include <vector>

namespace im::engine::llama {
class model;
}

// What every result records about where and with what it was measured (STYLE: one result model).
namespace im::report {

constexpr int schema_version = 1;

struct run_context {
    std::string infermeter_version;
    std::string build_commit;     // llama.cpp, 7 hex digits (llama-bench's build_commit)
    std::string llama_commit;     // full hash
    std::string backends;         // "CPU", "CUDA", ...
    std::string cpu_info;
    std::string gpu_info;
    // Which device holds which layers and how many weight bytes (engine::llama::describe_devices);
    // empty for HTTP runs.
    std::string devices;
    std::string model_filename;
    std::string model_type;       // llama.cpp's description, e.g. "qwen2 1.5B Q4_K - Medium"
    uint64_t model_size = 0;      // bytes
    uint64_t model_n_params = 0;
    std::string test_time;        // RFC 3339
    std::string command_line;
};

// Describes this build and machine; model fields from `m` when given.
run_context make_run_context(const engine::llama::model * m, const std::string & command_line);

// The context fields every table starts with, and how to fill them.
std::vector<field> context_fields();
void fill_context(const table & t, std::vector<value> & row, const run_context & c);
// An interrupted table with no row gets one, of context fields with `interrupted` (and `partial` where
// the table has it) set, so the mark reaches every format.
void mark_empty_interrupted(table & t, const run_context & c, bool interrupted);

}  // namespace im::report
