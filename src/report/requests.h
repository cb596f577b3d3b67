#pragma once

#include "engine/llama/session.h"
#include "report/run_context.h"
#include "report/table.h"
#include "workload/requests.h"
#include "workload/shards.h"

#include <string>
#include <vector>

// Request-level results (continuous batching in-process, `serve` over HTTP): one row per load level,
// with throughput over the steady window, latency percentiles, SLO/goodput and the raw samples.
namespace im::report {

// `name` is the SQL table: "continuous" or "serve". `params` is given for in-process runs (engine
// columns filled), null for HTTP. `interrupted` marks every row (and gives an empty table a context
// row), as a stopped run's outputs must say.
table requests_table(const std::string & name, const std::vector<workload::request_run> & runs, const run_context & c,
                     const engine::llama::engine_params * params, bool interrupted = false);

// "Serving under load": one line per load level (throughput, TTFT/TPOT/ITL/E2E percentiles, goodput,
// SLO), then the checks (Little's law, token counts, failures by cause, sampling share).
std::string requests_markdown(const std::vector<workload::request_run> & runs, const workload::slo & objectives);

// `merge`: per level, each shard's trace, schedule origin, requests and own figures, then how the
// shards' clocks were aligned (a warning when their origins are far apart without --start-at).
std::string shards_markdown(const std::vector<workload::merged_run> & levels);
// The merged level's clock note: aligned by --start-at, or started `start_skew` apart ("" when 1 shard).
std::string shard_alignment_note(const workload::merged_run & m);

}  // namespace im::report
