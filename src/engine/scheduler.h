#pragma once

#include "engine/request.h"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

// Continuous batching bookkeeping shared by the in-process llama.cpp engine and the fake engine:
// W sequence slots; each step packs one token per decoding sequence plus prompt chunks of admitted
// requests within a token budget (chunked prefill), decoders first so an admitted request is never
// starved. The engines only execute a planned step and report the tokens chosen.
namespace im::engine {

struct scheduler_config {
    int n_slots = 1;           // sequence slots (W)
    int64_t n_ctx_seq = 0;     // KV cells per slot; a request needing more is rejected up front
    int step_tokens = 512;     // tokens per step (prompt chunks + decodes); decoders always fit
};

// One slot's part of a step.
struct step_item {
    int slot = 0;
    uint64_t id = 0;
    int pos = 0;               // position of the first token of this item
    int n = 0;                 // tokens of this item (1 for a decode)
    int prompt_offset = -1;    // >= 0: a prompt chunk starting at this prompt index; -1: a decode
    int32_t token = -1;        // a decode's input token (the last one chosen)
    bool wants_output = false; // the last token's logits are sampled (a decode, or the prompt's last chunk)
};

struct step_plan {
    std::vector<step_item> items;
    std::vector<uint64_t> admitted;  // requests that got a slot in this step
    int n_tokens = 0;
    int n_decoding = 0;
    int n_prefilling = 0;
};

class continuous_scheduler {
  public:
    explicit continuous_scheduler(scheduler_config c);

    // Why `r` can never be served (empty: it can).
    std::optional<std::string> check(const request & r) const;
    // Queues a request (FIFO); it is admitted when a slot is free and its intended time has come.
    void enqueue(request r);
    // Admits what it can at `now_ns` and composes the next step (empty when there is nothing to do).
    step_plan plan(int64_t now_ns);
    // The prompt tokens of an item (prompt chunks only).
    const int32_t * prompt_tokens(const step_item & it) const;

    struct outcome {
        uint64_t id = 0;
        int slot = 0;
        int n_output = 0;      // tokens delivered so far
        bool finished = false; // this token completed the request; its slot is free again
    };
    // Records the tokens chosen for the items that wanted output (in item order; -1 for the others).
    // `eog(token)` ends a request early when EOS is honoured.
    std::vector<outcome> complete(const step_plan & p, const std::vector<int32_t> & chosen, bool honour_eos,
                                  const std::vector<bool> & is_eog);

    // Removes every request (waiting and active); returns their ids and the slots they held (-1: waiting).
    std::vector<std::pair<uint64_t, int>> cancel_all();

    size_t in_flight() const;        // waiting + active
    size_t active() const;
    std::optional<int64_t> next_intended() const;  // earliest intended time of a waiting request
    int64_t kv_cells_used() const;   // positions held by active slots
    const scheduler_config & config() const { return c_; }

  private:
    struct slot {
        bool busy = false;
        request req;
        int n_past = 0;          // tokens in this slot's KV
        int prompt_done = 0;     // prompt tokens processed
        int n_output = 0;
        int32_t last_token = -1;
        uint64_t admit_seq = 0;  // admission order, for fair prompt chunking
    };
    scheduler_config c_;
    std::vector<slot> slots_;
    std::deque<request> waiting_;
    uint64_t admissions_ = 0;
};

}  // namespace im::engine
