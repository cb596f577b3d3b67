#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// A deterministic HTTP/1.1 server on plain sockets for testing the HTTP client against hostile and
// well-behaved servers. The first path segment picks the behaviour, the rest the answer's format:
// POST /<mode>/v1/completions, /<mode>/v1/chat/completions or /<mode>/completion (llama-server).
//   ok           N chunks (N = max_tokens / n_predict of the request) on a fixed schedule, then usage
//                and [DONE] (llama: a final chunk with stop:true, tokens_predicted and timings).
//                Each chunk's text is "<index>@<server send time ns>;" (steady clock), so a client on
//                the same machine can measure its observation delay per chunk.
//   error500     500 with {"error":{"code":500,"message":"injected failure","type":"server_error"}}
//   ratelimit    429 with Retry-After: 7 and {"error":{"message":"rate limited"}}
//   cut          2 chunks, then the connection closes inside the chunked body
//   cut_eof      a close-delimited body (no chunked encoding): 2 chunks, then a clean close, no [DONE]
//   stall        2 chunks, then silence until the client gives up
//   malformed    2 chunks, then an event whose data is truncated JSON
//   error_event  2 chunks, then llama-server's mid-stream {"error":{...}} event, then the normal end
//   sse_error    2 chunks, then `event: error` with {"message":"overloaded"}
//   hugeline     one `data:` line of `huge_line_bytes` (20 MB by default), then [DONE]
//   drip         the `ok` answer written one byte at a time, `drip_interval_us` apart
//   json         a 200 answer with Content-Type application/json (a server that ignored stream:true)
// GET /metrics answers Prometheus text with faultserver:requests_total and :chunks_sent_total.
// Anything else: 404. The server keeps connections alive between answers.
namespace im::test {

struct fault_server_options {
    int64_t chunk_interval_us = 2000;   // ok: chunk i is due at request time + i · interval
    int64_t drip_interval_us = 100;     // drip: between bytes
    size_t huge_line_bytes = size_t(20) << 20;
    bool record_sends = false;          // keep every chunk's send time (sends())
};

struct chunk_send {
    uint64_t request = 0;  // the server's request counter
    int index = 0;
    int64_t t_sent_ns = 0;
};

class fault_server {
  public:
    // Listens on 127.0.0.1 on a free port and serves on its own thread until destroyed.
    explicit fault_server(fault_server_options o = {});
    ~fault_server();
    fault_server(const fault_server &) = delete;
    fault_server & operator=(const fault_server &) = delete;

    int port() const { return port_; }
    // "http://127.0.0.1:<port>/<mode>": a base URL for the client (it appends the endpoint path).
    std::string url(const std::string & mode) const;
    uint64_t requests() const { return requests_.load(); }
    uint64_t chunks_sent() const { return chunks_sent_.load(); }
    std::vector<chunk_send> sends() const;
    // The header lines of the last request received (e.g. "Authorization: Bearer ...").
    std::vector<std::string> last_headers() const;
    // Stops serving and closes every connection (also done by the destructor).
    void stop();

    // A port on 127.0.0.1 where nothing listens (bound, then closed): connecting is refused.
    static int unused_port();

    struct impl;

  private:
    std::unique_ptr<impl> impl_;
    int port_ = 0;
    std::atomic<uint64_t> requests_{0};
    std::atomic<uint64_t> chunks_sent_{0};
    std::thread thread_;
};

}  // namespace im::test
