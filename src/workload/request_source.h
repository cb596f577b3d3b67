#pragma once

#include "dataset/synth.h"
#include "engine/request.h"

#include "llama.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

// Where a request-level workload's prompts and output lengths come from (DESIGN §2.3): fixed -p/-n,
// a dataset's records (real prompt text tokenized with the model's vocabulary; output length = the
// record's output token count), or length distributions. Every prompt starts with a unique prefix so
// no prefix cache can flatter the numbers.
namespace im::workload {

struct dataset_sample {
    std::string prompt_text;
    std::vector<int32_t> prompt_tokens;  // tokenized (no special tokens); empty without a vocabulary
    int n_output = 0;                    // the record's output, in tokens
};

struct length_source {
    enum class kind { fixed, dataset, distribution };
    kind shape = kind::fixed;
    int n_prompt = 128, n_predict = 128;             // fixed
    std::vector<dataset_sample> samples;             // dataset
    std::string dataset_name;
    dataset::length_distribution prompt_dist, output_dist;  // distribution
    std::string describe() const;  // "fixed 128 prompt / 256 output tokens", "dataset x.jsonl (2,000 samples)", ...
};

// Reads up to `max_samples` (prompt, output) samples from a dataset with the analyze readers; every
// assistant turn is one sample, its prompt everything before it. Malformed records are skipped and
// counted (`bad`); throws a runtime error naming the file when none is usable.
std::vector<dataset_sample> load_samples(const std::filesystem::path & path, const llama_vocab * vocab, size_t max_samples,
                                         size_t & bad);

class request_source {
  public:
    // `vocab` tokenizes dataset prompts and the unique prefixes; it must outlive the source.
    request_source(length_source lengths, const llama_vocab * vocab, uint64_t seed);
    // Request i: prompt tokens (BOS first if the vocabulary adds one, then the unique prefix), the
    // prompt's text where known, n_prompt and n_predict.
    engine::request make(uint64_t i) const;
    const length_source & lengths() const { return lengths_; }
    // Longest prompt + output any request of this source can need (for sizing slots).
    int64_t max_tokens_per_request() const;

  private:
    length_source lengths_;
    const llama_vocab * vocab_;
    uint64_t seed_;
    int32_t n_vocab_ = 0;
    bool add_bos_ = false;
    int32_t bos_ = -1;
};

}  // namespace im::workload
