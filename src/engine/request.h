#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// The request-level engine interface (DESIGN §2.3 continuous, §2.5): a workload submits requests and
// receives timestamped events. The in-process llama.cpp scheduler (engine/llama/continuous.h), the
// HTTP client (engine/http/) and the deterministic fake engine (engine/fake.h) implement it; the
// request driver (workload/requests.h) is written against it alone.
namespace im::engine {

// One request of a request-level workload.
struct request {
    uint64_t id = 0;                    // unique within a run
    std::vector<int32_t> prompt_tokens; // in-process engines use these
    std::string prompt_text;            // HTTP engines send this (in-process ones ignore it)
    int n_prompt = 0;                   // prompt length in tokens, as the workload counted it
    int n_predict = 0;                  // output tokens asked for (ignore-EOS unless the engine honours EOS)
    int64_t t_intended_ns = 0;          // when the workload meant to send it (engine clock); TTFT starts here
};

// Why a request failed (DESIGN §2.5: failures are counted by cause, never hidden).
enum class failure {
    none,
    rejected,        // the engine refused it up front (e.g. longer than a slot); message says why
    refused,         // connection refused
    timeout,         // no complete answer within --request-timeout
    http_status,     // a 4xx/5xx answer
    cut_stream,      // the stream ended before the answer was complete
    malformed,       // an event or body that could not be parsed
    error_event,     // the server sent an error inside the stream
    cancelled,       // stopped by SIGINT before it finished
    engine_error,    // the engine itself failed (llama_decode error)
};
const char * failure_name(failure f);
// The failure failure_name() names; nullopt for any other text.
std::optional<failure> failure_from_name(const std::string & name);

enum class event_kind {
    sent,      // handed to the transport (HTTP: request written; in-process: same as admitted)
    admitted,  // the engine started working on it (in-process: got a sequence slot and began prefill)
    tokens,    // n_tokens output tokens arrived (in-process: one per step; HTTP: one content chunk)
    finished,  // complete; n_tokens = tokens delivered in total
    failed,    // see cause/message; no further events for this id
};

struct event {
    uint64_t id = 0;
    event_kind kind = event_kind::tokens;
    int64_t t_ns = 0;           // engine clock; HTTP: when the bytes arrived
    int n_tokens = 0;           // tokens: in this chunk; finished: total delivered
    std::string text;           // tokens: the chunk's text where the engine has it
    failure cause = failure::none;
    std::string message;        // failed: the detail (status line, server's error text, ...)
    // finished: the server's own figures where it reports them (HTTP `usage`, llama-server `timings`);
    // -1 when unknown.
    int usage_completion_tokens = -1;
    int usage_prompt_tokens = -1;
    double server_ttft_ms = -1;       // llama-server timings.prompt_ms
    double server_gen_tps = -1;       // llama-server timings.predicted_per_second
    int endpoint = 0;                 // HTTP: index of the --url the request went to (0 in-process)
};

// An event of `kind` for request `id` at `t_ns` carrying `n_tokens`.
inline event make_event(uint64_t id, event_kind kind, int64_t t_ns, int n_tokens = 0) {
    event e;
    e.id = id;
    e.kind = kind;
    e.t_ns = t_ns;
    e.n_tokens = n_tokens;
    return e;
}

// A `failed` event for request `id` at `t_ns`.
inline event make_failure(uint64_t id, int64_t t_ns, failure cause, std::string message) {
    event e = make_event(id, event_kind::failed, t_ns);
    e.cause = cause;
    e.message = std::move(message);
    return e;
}

// Per decode step of an in-process engine (for --trace and the sampling-cost breakdown).
struct step_stats {
    int64_t t_start_ns = 0;
    int64_t t_decode_ns = 0;    // llama_decode + synchronize
    int64_t t_sample_ns = 0;    // sampling every sequence that produced logits
    int n_tokens = 0;           // tokens in the batch (prompt chunks + one per decoding sequence)
    int n_decoding = 0;         // sequences that decoded one token
    int n_prefilling = 0;       // sequences with a prompt chunk in the batch
    int64_t kv_cells_used = 0;  // cells held by live sequences after the step
};

class request_engine {
  public:
    virtual ~request_engine() = default;
    // The engine's clock in ns (steady clock; the fake engine's virtual clock).
    virtual int64_t now_ns() const = 0;
    // Hands a request over. The engine starts it when it can, never before t_intended_ns.
    // A request the engine can never serve fails (event failed, cause rejected) at the next poll.
    virtual void submit(request r) = 0;
    // Works until at least one event is ready or the clock passes `deadline_ns`, then appends the
    // events to `out` in time order. With nothing in flight it waits until the deadline.
    virtual void poll(int64_t deadline_ns, std::vector<event> & out) = 0;
    // Requests submitted and neither finished nor failed.
    virtual size_t in_flight() const = 0;
    // Fails every request in flight with `failure::cancelled` (SIGINT drain); events at the next poll.
    virtual void cancel_all() = 0;
    // Per-step figures since the last call (in-process engines; empty for HTTP).
    virtual std::vector<step_stats> take_steps() { return {}; }
    // One line describing the engine (for reports), e.g. "llama.cpp in-process, 8 slots, CPU sampling".
    virtual std::string describe() const = 0;
};

}  // namespace im::engine
