#include "cli/http_flags.h"

#include "core/error.h"
#include "core/ranges.h"

#include <cstdlib>

namespace im::cli {

void add_http_flags(CLI::App * cmd, http_flags & f) {
    cmd->add_option("--url", f.urls, "Server base URL(s), comma-separated or repeated; spread by --balance")
        ->delimiter(',');
    cmd->add_option("--balance", f.balance,
                    "Spreading over several --url: round-robin, or least-outstanding (at send time, to the URL "
                    "with the fewest requests in flight)")
        ->capture_default_str();
    cmd->add_option("--endpoint", f.endpoint,
                    "completions (/v1/completions, default), chat (/v1/chat/completions) or llama (/completion)");
    cmd->add_option("--model", f.model, "The \"model\" field of each request (llama-server needs none)");
    cmd->add_option("--api-key-env", f.api_key_env,
                    "Name of the environment variable holding the API key (sent as a Bearer token, never shown)");
    cmd->add_option("--header", f.headers, "Extra request header 'Name: value' (repeatable)");
    cmd->add_option("--client-threads", f.client_threads,
                    "Client threads, or auto: one per 256 concurrent streams, at most half the cores")
        ->capture_default_str();
    cmd->add_flag("--http2", f.http2, "Use HTTP/2 (prior knowledge over http://)");
    cmd->add_flag("--http1.1", f.http1, "Never use HTTP/2");
    cmd->add_option("--request-timeout", f.request_timeout_s, "Seconds for a whole answer before it fails as timeout")
        ->capture_default_str();
    cmd->add_option("--connect-timeout", f.connect_timeout_s, "Seconds to connect before a request fails as timeout")
        ->capture_default_str();
    cmd->add_flag("--insecure", f.insecure, "Do not verify TLS certificates (self-signed test servers)");
    cmd->add_flag("--no-ignore-eos", f.no_ignore_eos, "Do not send \"ignore_eos\" (for servers that reject it)");
    cmd->add_flag("--no-usage", f.no_usage, "Do not ask for stream_options.include_usage");
    cmd->add_option("--temperature", f.temperature, "Sampling temperature sent (negative: leave it to the server)")
        ->capture_default_str();
    cmd->add_option("--max-line-bytes", f.max_line_bytes, "Longest SSE line accepted before the stream is malformed")
        ->capture_default_str();
    cmd->add_flag("--token-prompts", f.token_prompts,
                  "Send prompts as token ids (exact lengths; the server must use the same vocabulary as -m/--vocab)");
    cmd->add_option("--metrics-url", f.metrics_url,
                    "Prometheus /metrics to scrape around each load level (default: the first --url's /metrics; none: off)");
}

engine::http::client_options client_options_from(const http_flags & f, int max_streams) {
    engine::http::client_options o;
    o.urls = f.urls;
    if (!f.endpoint.empty()) o.endpoint = engine::http::parse_api(f.endpoint);
    o.body.model = f.model;
    o.body.ignore_eos = !f.no_ignore_eos;
    o.body.include_usage = !f.no_usage;
    o.body.temperature = f.temperature;
    o.headers = f.headers;
    if (!f.api_key_env.empty()) {
        const char * key = std::getenv(f.api_key_env.c_str());
        if (!key || !*key) throw_usage("--api-key-env {}: that environment variable is not set or empty", f.api_key_env);
        o.api_key = key;
    }
    if (f.http1 && f.http2) throw_usage("--http2 and --http1.1 exclude each other");
    o.version = f.http2 ? engine::http::http_version::http2
              : f.http1 ? engine::http::http_version::http1
                        : engine::http::http_version::any;
    if (!(f.request_timeout_s > 0) || !(f.connect_timeout_s > 0)) {
        throw_usage("--request-timeout and --connect-timeout must be positive (seconds)");
    }
    o.request_timeout_ms = int64_t(f.request_timeout_s * 1000);
    o.connect_timeout_ms = int64_t(f.connect_timeout_s * 1000);
    o.verify_tls = !f.insecure;
    if (f.client_threads == "auto") {
        o.client_threads = engine::http::auto_client_threads(max_streams);
    } else {
        const auto n = parse_int_list(f.client_threads, "--client-threads", 1, 256);
        if (n.size() != 1) throw_usage("--client-threads takes one number or auto (got '{}')", f.client_threads);
        o.client_threads = n.front();
    }
    o.spread = engine::http::parse_balance(f.balance);
    o.max_line_bytes = f.max_line_bytes;
    o.prefer_token_ids = f.token_prompts;
    return o;
}

std::string metrics_url_from(const http_flags & f) {
    if (f.metrics_url == "none") return "";
    if (!f.metrics_url.empty()) return f.metrics_url;
    if (f.urls.empty()) return "";
    const std::string & u = f.urls.front();
    const size_t scheme = u.find("://");
    if (scheme == std::string::npos) return "";
    const size_t path = u.find('/', scheme + 3);
    return u.substr(0, path) + "/metrics";
}

}  // namespace im::cli
