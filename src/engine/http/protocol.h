#pragma once

#include "engine/http/sse.h"

#include <string>
#include <string_view>
#include <vector>
#include <cstdint>

// What goes over the wire for one streamed completion, and what each server-sent event of the
// answer means: OpenAI's /v1/completions and /v1/chat/completions (vLLM, SGLang, llama-server,
// Ollama's /v1) and llama-server's native /completion. No I/O here.
namespace im::engine::http {

enum class api {
    completions,  // POST /v1/completions: choices[0].text
    chat,         // POST /v1/chat/completions: choices[0].delta.content
    llama,        // POST /completion (llama-server): content, tokens, stop, timings
};
// "completions" | "chat" | "llama"; throws im::error (usage) naming --endpoint otherwise.
api parse_api(std::string_view name);
const char * api_name(api a);
// The path the endpoint is served at, e.g. "/v1/completions".
const char * api_path(api a);

struct body_options {
    std::string model;           // "model" field; omitted when empty (llama-server accepts that)
    bool ignore_eos = true;      // "ignore_eos": honour the requested output length
    bool include_usage = true;   // "stream_options": {"include_usage": true} (OpenAI endpoints)
    double temperature = 0.0;    // "temperature"; negative = leave it to the server (0 = greedy)
    int64_t seed = -1;           // "seed"; omitted when negative (tune's probes fix it)
};

// The JSON body of a streaming request for `prompt` asking for `n_predict` tokens
// (`max_tokens` on OpenAI endpoints, `n_predict` on /completion).
std::string request_body(api a, const body_options & o, std::string_view prompt, int n_predict);
// The same with the prompt as token ids (`"prompt": [ids]`, which /v1/completions and /completion
// accept): exact prompt lengths without the server re-tokenizing text. Not for `chat`.
std::string request_body(api a, const body_options & o, const std::vector<int32_t> & prompt_tokens, int n_predict);

// What one event of the answer stream says.
struct stream_chunk {
    std::string text;       // content of this chunk (empty for role-only, usage-only or final chunks)
    int n_token_ids = -1;   // llama-server: number of token ids in the chunk's `tokens`; -1 if absent
    bool done = false;      // `data: [DONE]`
    bool finished = false;  // the answer is complete (finish_reason set, or llama-server's stop:true)
    bool is_error = false;  // an error inside the stream (an `error` event, or an `error` field)
    std::string error_message;
    int usage_completion_tokens = -1;  // `usage` (OpenAI) or tokens_predicted on the final /completion chunk
    int usage_prompt_tokens = -1;
    double timings_prompt_ms = -1;            // llama-server `timings.prompt_ms`
    double timings_predicted_per_second = -1; // llama-server `timings.predicted_per_second`
    bool operator==(const stream_chunk &) const = default;
};

// Interprets one event. Returns false when the event is malformed (not JSON, or JSON of the wrong
// shape); `why` then says what was wrong, in a few words.
bool interpret_event(api a, const sse_event & e, stream_chunk & out, std::string & why);
// The same through a JSON document: what interpret_event falls back to for anything but the common
// shapes, and the reference it must agree with (tests/fuzz/sse_fuzz.cpp, tests/unit/engine).
bool interpret_event_dom(api a, const sse_event & e, stream_chunk & out, std::string & why);

// The server's error text from a non-2xx answer body ({"error":{"message":...}}, {"error":"..."},
// {"message":...}, or the raw text), at most `max_chars` characters, control characters replaced.
std::string error_text(std::string_view body, size_t max_chars = 300);

}  // namespace im::engine::http
