#pragma once

#include "report/run_context.h"
#include "report/table.h"
#include "workload/bench.h"
#include "workload/lockstep.h"

#include <string>
#include <vector>

// Tables and Markdown views of bench and parallel results. The tables feed csv/json/jsonl/sql and
// the SQLite store; the Markdown views are the reference's "Single Request Performance" and
// "Parallel Workload Performance" sections.
namespace im::report {

struct config_summary {
    std::string model_name;     // general.name
    std::string quantization;   // "Q4_K_M"
    uint64_t model_size = 0;
    uint64_t model_n_params = 0;
    std::string hardware;       // CPU model and GPUs
    std::string backends;
    int n_threads = 0;
    std::string devices;        // run_context::devices
    engine::llama::engine_params params;
};

// The engine settings every in-process table records (llama-bench's names), and how to fill them.
std::vector<field> engine_fields();
void fill_engine(const table & t, std::vector<value> & row, const engine::llama::engine_params & p, int n_threads);

// Every row carries `interrupted` (the run was stopped, or had not finished when the table was
// written) and `partial` (this row holds fewer repetitions or decode steps than asked). An
// interrupted table with no measured row gets one row of context fields marked interrupted, so that
// no output of an interrupted run is an empty, unmarked `[]`.
table bench_table(const std::vector<workload::bench_result> & results, const run_context & c, bool interrupted = false);
table parallel_table(const workload::lockstep_result & r, const workload::lockstep_config & cfg, const run_context & c);
// The Markdown note every interrupted view ends with.
std::string interrupted_note();

// "### Test Configuration" block.
std::string config_markdown(const config_summary & s);
// "| Test | Prompt Tokens | Output Tokens | Throughput (t/s) |" with "1,187.01 ± 2.05" numbers; columns
// for engine settings that vary across results are added in front.
std::string bench_markdown(const std::vector<workload::bench_result> & results);
// One line: per test, warmup runs (and whether they settled), repetitions, the 95% interval relative
// to the median and whether the ±1% target was met (docs/metrics.md). Empty for no results.
std::string bench_repetitions_note(const std::vector<workload::bench_result> & results);
// Context and KV lines, the reference's table, and the efficiency block.
std::string parallel_markdown(const workload::lockstep_result & r, const workload::lockstep_config & cfg,
                              uint64_t kv_bytes_per_token, bool with_efficiency = true);
// "Efficiency = Speedup / Number of Workers" and one line per W, as a code block.
std::string efficiency_block(const workload::lockstep_result & r);
// The --plan view: per W, n_ctx, cells per sequence, KV MiB, estimated total and whether it fits.
std::string plan_markdown(const std::vector<workload::memory_plan> & plan);
nlohmann::ordered_json plan_json(const std::vector<workload::memory_plan> & plan);

}  // namespace im::report
