#pragma once

#include "dataset/reader.h"

#include "llama.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

// Token-length analysis of a dataset and the n-prompt / n-predict it recommends (DESIGN §2.1).
namespace im::dataset {

constexpr int analysis_schema_version = 1;

// Granularity of n_predict (--round): powers of two (llama-bench's habit), multiples of 128, or
// the exact length.
enum class rounding { pow2, multiple_128, exact };

struct analyze_options {
    std::filesystem::path path;
    format fmt = format::auto_;
    std::string prompt_field, output_field;  // both or neither
    bool chat_template = false;              // count prompts with the chat template applied
    std::string chat_template_text;          // the template (vocabulary::chat_template()); required with chat_template
    double max_bad_fraction = 0.01;          // more malformed records than this fraction: runtime error
    int n_threads = 0;                       // tokenizing threads; 0: all cores
    std::string tokenizer_name;              // what reports call the vocabulary (its file); default: "vocab"
    rounding round = rounding::pow2;         // granularity of the recommended n_predict (--round)
};

// One histogram bin: lengths in [lo_tokens, hi_tokens).
struct histogram_bin {
    int64_t lo_tokens = 0;
    int64_t hi_tokens = 0;
    size_t count = 0;
};

// Fraction of samples whose length is <= tokens.
struct coverage_point {
    int64_t tokens = 0;
    double fraction = 0.0;
};

// Distribution of one token length. Percentiles are type 7 (linear between closest ranks), so they
// may be fractional; std is empty with fewer than two samples.
struct length_stats {
    size_t count = 0;
    double mean = 0.0;
    std::optional<double> std;
    int64_t min = 0, max = 0;
    double p50 = 0, p75 = 0, p90 = 0, p95 = 0, p99 = 0;
    std::vector<histogram_bin> histogram;
    std::vector<coverage_point> coverage;  // powers of two 16 .. 131072
};

// Statistics of `lengths` (any order). An empty input gives count 0 and nothing else.
length_stats compute_length_stats(std::span<const int32_t> lengths);

// Fraction of `lengths` that are <= limit (0 for an empty input).
double coverage_at(std::span<const int32_t> lengths, int64_t limit);

// "pow2" | "128" | "exact"; throws a usage error naming --round otherwise.
rounding parse_rounding(const std::string & name);
const char * rounding_name(rounding r);

// DESIGN §2.1: the smallest n_predict of the given granularity whose coverage of `lengths` is
// >= target (0 < target <= 1), at least 1 (128 for multiple_128). Needs at least one length.
int n_predict_for_coverage(std::span<const int32_t> lengths, double target, rounding r = rounding::pow2);
// DESIGN §2.1: n_prompt = 2^ceil(log2(P_90)), at least 32.
int n_prompt_for_percentile(double p_90);

struct recommendation {
    std::string scenario;    // "conservative", "recommended", "comprehensive"
    double target_coverage;  // 0.75, 0.90, 0.99
    int n_prompt;
    int n_predict;
    double coverage;         // actual fraction of outputs <= n_predict; >= target_coverage
    double prompt_coverage;  // actual fraction of prompts <= n_prompt
    std::string same_as;     // the first earlier scenario with the same n_prompt and n_predict, or empty
};

// The three scenarios from the two distributions, n_predict rounded as `r`. Needs at least one sample.
std::vector<recommendation> recommend(const length_stats & prompt, std::span<const int32_t> prompt_lengths,
                                      const length_stats & output, std::span<const int32_t> output_lengths,
                                      rounding r = rounding::pow2);

struct analysis {
    // dataset
    std::filesystem::path path;
    std::string format;              // --format value that reads it: "alpaca", "sharegpt", ...
    std::string format_description;  // "alpaca (jsonl)"
    size_t records = 0;              // records read well
    size_t bad_records = 0;          // skipped as malformed
    std::vector<size_t> bad_lines;   // the first five, 1-based
    std::vector<std::string> bad_reasons;  // why, for bad_lines
    size_t records_without_output = 0;     // conversations with no assistant turn after a prompt
    size_t utf8_records = 0;         // records whose invalid UTF-8 was replaced by U+FFFD
    uint64_t bytes = 0;              // bytes read (decompressed)
    uint64_t file_bytes = 0;         // size on disk
    bool interrupted = false;        // stopped by SIGINT: statistics of what was read
    // tokenizer
    std::string tokenizer_name;
    std::string tokenizer_type;      // "bpe", "spm", ...
    int n_vocab = 0;
    bool chat_template = false;
    // results; one entry per (prompt, output) sample: each assistant turn of each record
    length_stats prompt_tokens, output_tokens;
    std::vector<recommendation> recommendations;  // conservative, recommended, comprehensive
    rounding round = rounding::pow2;              // how their n_predict was rounded
    std::vector<std::string> rationale;
    std::vector<int32_t> prompt_lengths, output_lengths;  // raw, in file order, pairwise aligned
    int n_threads = 0;
    double seconds = 0;
    double bytes_per_s = 0;          // decompressed dataset bytes per second, end to end
};

// Reads, tokenizes (on opts.n_threads threads; thread-safe use of `vocab`) and summarizes the
// dataset. Throws im::error (DESIGN §5): missing/unreadable file, unknown schema (naming the fields
// found and --prompt-field/--output-field), no samples, more bad records than max_bad_fraction
// (naming how many and the first lines). Stops early on SIGINT and marks the result interrupted.
analysis analyze(const analyze_options & opts, const llama_vocab * vocab);

// Rationale lines for the recommended scenario, generated from the numbers.
std::vector<std::string> rationale_for(const analysis & a);

// The JSON other tools read (schema_version 1): dataset, tokenizer, prompt_tokens, output_tokens,
// recommendations, rationale, timing.
nlohmann::ordered_json to_json(const analysis & a);

// Notes for scenarios that came out identical (same n_prompt and n_predict), one per group.
std::vector<std::string> merge_notes(const analysis & a);

// The reference's "Recommended Parameters", "Rationale" and "Parameter Options" sections (identical
// scenarios merged into one row, with a note), then the token length statistics and terminal
// histograms (Unicode block characters). with_title: start with the "# Dataset Analysis" H1 (false
// inside a report that has its own).
std::string to_markdown(const analysis & a, bool with_title = true);

// Single-thread llama_tokenize over every text of the dataset, read into memory first (untimed):
// the raw tokenizer rate bench/analyze.sh compares analyze against.
struct tokenizer_rate {
    uint64_t text_bytes = 0;
    uint64_t tokens = 0;
    double seconds = 0;
};
tokenizer_rate measure_tokenizer(const analyze_options & opts, const llama_vocab * vocab);

}  // namespace im::dataset
