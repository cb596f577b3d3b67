#pragma once

#include "engine/http/client.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

// The HTTP client's flags for `serve` (docs/serve.md): where to send, what to send, how to connect.
namespace im::cli {

struct http_flags {
    std::vector<std::string> urls;       // --url (list or repeated)
    std::string endpoint;                // --endpoint completions|chat|llama (empty: from the URL, else completions)
    std::string model;                   // --model
    std::string api_key_env;             // --api-key-env VAR: the variable's name; its value is read at run time
    std::vector<std::string> headers;    // --header
    std::string client_threads = "auto"; // --client-threads N|auto (auto: engine::http::auto_client_threads)
    std::string balance = "round-robin"; // --balance round-robin|least-outstanding
    bool http2 = false;                  // --http2
    bool http1 = false;                  // --http1.1
    double request_timeout_s = 600;      // --request-timeout
    double connect_timeout_s = 10;       // --connect-timeout
    bool insecure = false;               // --insecure (TLS verification off)
    bool no_ignore_eos = false;          // --no-ignore-eos
    bool no_usage = false;               // --no-usage (no stream_options.include_usage)
    double temperature = 0;              // --temperature (negative: the server's default)
    size_t max_line_bytes = engine::http::sse_parser::default_max_line_bytes;  // --max-line-bytes
    bool token_prompts = false;          // --token-prompts
    std::string metrics_url;             // --metrics-url (default: <first --url's origin>/metrics; "none": off)
};

void add_http_flags(CLI::App * cmd, http_flags & f);

// The client options; reads the API key from the environment (usage error naming --api-key-env when
// the variable is unset or empty). Validation of URLs and values happens in http_engine.
// `max_streams`: the most requests the workload keeps in flight, for --client-threads auto.
engine::http::client_options client_options_from(const http_flags & f, int max_streams);

// --metrics-url, or the first URL's scheme://host:port + "/metrics"; empty for "none".
std::string metrics_url_from(const http_flags & f);

}  // namespace im::cli
