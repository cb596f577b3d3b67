#include "workload/batch.h"

#include <algorithm>
#include <cstdlib>

namespace im::workload::batch {

void fill_prompts(llama_batch & b, int workers, int n_tokens, int32_t n_vocab, int pos0, int first_seq) {
    int idx = 0;
    for (int j = 0; j < workers; ++j) {
        for (int i = 0; i < n_tokens; ++i, ++idx) {
            b.token[idx] = std::rand() % n_vocab;
            b.pos[idx] = pos0 + i;
            b.n_seq_id[idx] = 1;
            b.seq_id[idx][0] = first_seq + j;
            b.logits[idx] = i == n_tokens - 1;
        }
    }
    b.n_tokens = idx;
}

void fill_step(llama_batch & b, int workers, int pos, int32_t n_vocab) {
    for (int j = 0; j < workers; ++j) {
        b.token[j] = std::rand() % n_vocab;
        b.pos[j] = pos;
        b.n_seq_id[j] = 1;
        b.seq_id[j][0] = j;
        b.logits[j] = 1;
    }
    b.n_tokens = workers;
}

bool decode_chunks(llama_context * ctx, const llama_batch & b, int n_batch) {
    for (int32_t i = 0; i < b.n_tokens; i += n_batch) {
        const int32_t n = std::min(n_batch, b.n_tokens - i);
        llama_batch view = {n, b.token + i, nullptr, b.pos + i, b.n_seq_id + i, b.seq_id + i, b.logits + i};
        if (llama_decode(ctx, view) != 0) return false;
    }
    return true;
}

}  // namespace im::workload::batch
