#pragma once

#include "workload/lockstep.h"
#include "workload/requests.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

// What `serve` adds to the request-level report (docs/serve.md): the in-process comparison that
// attributes the gap between a server and its engine, the per-endpoint breakdown of several --urls,
// and `vllm bench serve`'s result field names (--format vllm).
namespace im::report {

// One load level of `serve --compare-in-process`: the same workload over HTTP and in-process.
struct serve_comparison_level {
    workload::request_run http;
    std::optional<workload::request_run> lockstep;          // the lockstep engine at W = concurrency, -p/-n
    std::optional<workload::request_run> no_sample, cpu_sampling, backend_sampling;
    std::string lockstep_note;           // why lockstep did not run (open loop, ...)
    std::string backend_sampling_error;  // why backend sampling did not run
    bool server_backend_sampling = false;  // the launched server ran with --backend-sampling
};

// The rows' "mode" of each in-process run in the serve table (HTTP rows keep "serve").
inline constexpr const char * mode_lockstep = "in-process lockstep";
inline constexpr const char * mode_no_sample = "in-process continuous, no sampling";
inline constexpr const char * mode_cpu = "in-process continuous, CPU sampling";
inline constexpr const char * mode_backend = "in-process continuous, backend sampling";

// A lockstep row as a request-level run: W requests started together, every one's first token at
// the end of the shared prefill (TTFT = T_PP), TPOT = T_TG / n_predict, output t/s over T_PP + T_TG,
// decode t/s = the row's generation t/s.
workload::request_run lockstep_as_run(const workload::lockstep_row & row, const workload::request_workload & w);

// One table per level: each engine's output t/s and latency against continuous batching without
// sampling, then where the gap goes (sampling; server scheduling, streaming and transport).
std::string serve_comparison_markdown(const std::vector<serve_comparison_level> & levels);

// How unevenly one level's measured requests went over n_endpoints --urls (docs/metrics.md): the
// busiest endpoint's request count over the mean, and the slowest endpoint's TPOT p50 over the
// fastest's (endpoints without a successful request left out). 0 where undefined (one endpoint, no
// requests); indexes of the endpoints named.
struct endpoint_balance {
    double requests_max_over_mean = 0;
    double tpot_p50_slowest_over_fastest = 0;
    int busiest = 0, slowest = 0;
};
endpoint_balance endpoint_imbalance(const workload::request_run & r, size_t n_endpoints);

// Per --url: requests, their share, failures, TTFT/TPOT/E2E percentiles and output t/s of each
// endpoint at each level (records carry the index of their endpoint), then the imbalance of each
// level. `balance` names how requests were spread ("round-robin"). Empty with one URL.
std::string per_endpoint_markdown(const std::vector<workload::request_run> & runs, const std::vector<std::string> & urls,
                                  const std::string & balance);

// `vllm bench serve`'s result dict for one level (vLLM's definitions: duration from the first
// measured request's start to the last one's end; throughputs over it; ms statistics with population
// std; ttfts/itls in seconds). generated_texts are not kept and not written.
// `interrupted` is infermeter's own key (vLLM readers ignore it): true while the run is incomplete;
// so are `shard` and `n_shards`, written for a --shard run.
nlohmann::ordered_json vllm_result(const workload::request_run & r, const std::string & model_id, const std::string & date,
                                   bool interrupted);
// One level: its dict; several: an array of them, in order.
std::string vllm_json(const std::vector<workload::request_run> & runs, const std::string & model_id, const std::string & date,
                      bool interrupted);

}  // namespace im::report
