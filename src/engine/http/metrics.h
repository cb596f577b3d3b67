#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

// Server telemetry: the Prometheus text exposition format (version 0.0.4) that llama-server
// (`--metrics`), vLLM and SGLang serve at /metrics, read before and after a load level and diffed.
namespace im::engine::http {

// Samples by key: the metric name, plus its labels sorted by name when it has any, e.g.
// `llamacpp:tokens_predicted_total` or `vllm:num_requests_running{model_name="m"}`.
using metric_samples = std::map<std::string, double>;

struct metrics_text {
    metric_samples samples;
    std::map<std::string, std::string> types;  // `# TYPE` per metric family: counter, gauge, histogram, ...
    size_t bad_lines = 0;                      // lines that are not comments, blank or samples
};

// Parses the text format; lines it cannot read are counted, never fatal. NaN, +Inf and -Inf are
// values like any other; a trailing timestamp is ignored.
metrics_text parse_metrics(std::string_view text);

// after − before for every key present in both; keys only in `after` are reported at their value
// (a series that appeared during the level). Counters give what the level added, gauges their change.
metric_samples diff_metrics(const metric_samples & before, const metric_samples & after);

// GETs `url` (e.g. http://127.0.0.1:8080/metrics) and parses it. `headers` and a Bearer `api_key`
// go with the request (the key is never printed). Throws im::error (runtime) naming the URL and
// --metrics-url when the server cannot be reached or does not answer 200.
metrics_text scrape_metrics(const std::string & url, int64_t timeout_ms = 5000,
                            const std::vector<std::string> & headers = {}, const std::string & api_key = "");

}  // namespace im::engine::http
