#pragma once

#include "engine/llama/session.h"
#include "predict/split.h"
#include "workload/bench.h"
#include "workload/lockstep.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

// Split analysis of an in-process run over several devices (issue 12; docs/scale-out.md "Split
// analysis", docs/metrics.md): what crosses between devices per step (predict::plan_split on the model's
// shape and llama.cpp's placement), the links probed (hardware::probe_links) and each measured step's
// transfer time, share and the rest of the difference to a single-device run of the same step.
namespace im::workload {

struct split_analysis {
    std::string split_mode;                     // "layer", "row"
    std::vector<std::string> devices;           // "RPC0 (127.0.0.1:50052): layers 0-13" per device holding part of the model
    predict::split_plan plan;
    std::vector<predict::link_rate> links;
    std::vector<predict::split_attribution> steps;  // per measured step, in run order
    std::string baseline_source;                // the file the single-device step times came from; empty: none
};

// The plan and the probed links for a loaded model, or nothing when no layer sits off the host (a
// CPU-only run without --rpc: no probe, no section). Probes while `m` is loaded: an RPC server serves
// one client, this process. The placement comes from llama.cpp's log; when the log named no layers,
// from -ts (or each device's free memory) as llama.cpp divides them, and the plan says it is an estimate.
// A probe or plan that fails is a warning and nothing: the run goes on without the section.
std::optional<split_analysis> analyze_split(const engine::llama::model & m, const engine::llama::engine_params & p);

// Single-device step times of an earlier run (its `-o json` output of bench or parallel), keyed like
// split_analysis::steps ("tg16", "pp32", "decode W=2", "prefill W=2"); none for an empty path. A usage
// error naming --split-baseline when the file cannot be read or holds no such rows.
std::vector<std::pair<std::string, double>> read_split_baseline(const std::filesystem::path & path);

// The attribution of each measured step (for split_analysis::steps): bench's pp (n_prompt tokens, one
// output) and tg (one token) tests, pp+tg tests left out; lockstep's prefill (W x n_prompt tokens, W
// outputs) and decode step (W tokens, W outputs) per W, from the mean times.
std::vector<predict::split_attribution> attribute_bench(const split_analysis & s, const std::vector<bench_result> & results,
                                                        const std::vector<std::pair<std::string, double>> & baseline = {});
std::vector<predict::split_attribution> attribute_lockstep(const split_analysis & s, const std::vector<lockstep_row> & rows,
                                                           int n_ubatch,
                                                           const std::vector<std::pair<std::string, double>> & baseline = {});

}  // namespace im::workload
