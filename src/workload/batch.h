#pragma once

#include "llama.h"

#include <cstdint>

// The llama_batch plumbing the lockstep sweep and the step probes share (batched-bench's shapes).
namespace im::workload::batch {

// A batch of up to n tokens, one sequence id each; freed with the holder.
struct holder {
    llama_batch batch;
    explicit holder(int n) : batch(llama_batch_init(n, 0, 1)) {}
    ~holder() { llama_batch_free(batch); }
    holder(const holder &) = delete;
    holder & operator=(const holder &) = delete;
};

// Sequences first_seq .. first_seq+workers-1 each get positions [pos0, pos0+n_tokens) of random tokens;
// logits for each sequence's last token only.
void fill_prompts(llama_batch & b, int workers, int n_tokens, int32_t n_vocab, int pos0 = 0, int first_seq = 0);

// One decode step: a random token at `pos` for each of sequences 0 .. workers-1, logits for all.
void fill_step(llama_batch & b, int workers, int pos, int32_t n_vocab);

// Decodes the batch in n_batch chunks without synchronizing in between (batched-bench's decode_helper).
bool decode_chunks(llama_context * ctx, const llama_batch & b, int n_batch);

}  // namespace im::workload::batch
