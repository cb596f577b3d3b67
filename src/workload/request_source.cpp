#include "workload/request_source.h"

#include "core/error.h"
#include "core/format.h"
#include "dataset/reader.h"
#include "dataset/source.h"
#include "dataset/vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <random>

namespace im::workload {

std::string length_source::describe() const {
    switch (shape) {
        case kind::fixed: return fmt::format("fixed {} prompt / {} output tokens", n_prompt, n_predict);
        case kind::dataset:
            return fmt::format("dataset {} ({} samples; its prompts and output lengths)", dataset_name,
                               fmtx::thousands(static_cast<int64_t>(samples.size())));
        case kind::distribution: return fmt::format("prompts {}, outputs {}", prompt_dist.spec, output_dist.spec);
    }
    return "?";
}

namespace {

std::string lower_extension(std::filesystem::path p) {
    auto lower = [](std::string s) {
        for (auto & c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    std::string ext = lower(p.extension().string());
    if (ext == ".gz") ext = lower(p.stem().extension().string());
    return ext;
}

std::vector<int32_t> tokenize(const llama_vocab * vocab, const std::string & text) {
    std::vector<int32_t> out(text.size() + 8);
    int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                               static_cast<int32_t>(out.size()), false, false);
    if (n < 0) {
        out.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                           static_cast<int32_t>(out.size()), false, false);
    }
    out.resize(static_cast<size_t>(std::max(0, n)));
    return out;
}

}  // namespace

std::vector<dataset_sample> load_samples(const std::filesystem::path & path, const llama_vocab * vocab, size_t max_samples,
                                         size_t & bad) {
    bad = 0;
    dataset::reader_options ro;
    ro.name = path.string();
    ro.extension = lower_extension(path);
    dataset::record_reader reader(dataset::open_file(path), ro);
    std::vector<dataset_sample> out;
    dataset::read_result r;
    std::vector<llama_token> buf;
    while (out.size() < max_samples && reader.next(r)) {
        if (!r.ok) {
            ++bad;
            continue;
        }
        std::string prompt;
        for (size_t i = 0; i < r.conv.size() && out.size() < max_samples; ++i) {
            const auto & m = r.conv[i];
            if (m.speaker == dataset::role::assistant && i > 0) {
                dataset_sample s;
                s.prompt_text = prompt;
                if (vocab) {
                    s.prompt_tokens = tokenize(vocab, prompt);
                    s.n_output = dataset::count_tokens(vocab, m.content, false, buf);
                } else {
                    s.n_output = static_cast<int>(m.content.size() / 4);  // no vocabulary: ~4 bytes per token
                }
                if (s.n_output > 0 && !s.prompt_text.empty()) out.push_back(std::move(s));
            }
            prompt += (prompt.empty() ? "" : "\n") + m.content;
        }
    }
    if (out.empty()) {
        throw_runtime("--dataset {}: no usable sample (a non-empty prompt followed by a non-empty output); {} records were "
                      "malformed", path.string(), bad);
    }
    return out;
}

request_source::request_source(length_source lengths, const llama_vocab * vocab, uint64_t seed)
    : lengths_(std::move(lengths)), vocab_(vocab), seed_(seed) {
    if (vocab_) {
        n_vocab_ = llama_vocab_n_tokens(vocab_);
        add_bos_ = llama_vocab_get_add_bos(vocab_);
        bos_ = llama_vocab_bos(vocab_);
    }
}

int64_t request_source::max_tokens_per_request() const {
    switch (lengths_.shape) {
        case length_source::kind::fixed: return int64_t{lengths_.n_prompt} + lengths_.n_predict;
        case length_source::kind::distribution: return lengths_.prompt_dist.max_tokens + lengths_.output_dist.max_tokens + 4;
        case length_source::kind::dataset: {
            int64_t m = 0;
            for (const auto & s : lengths_.samples) m = std::max<int64_t>(m, static_cast<int64_t>(s.prompt_tokens.size()) + 4 + s.n_output);
            return m;
        }
    }
    return 0;
}

engine::request request_source::make(uint64_t i) const {
    engine::request r;
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + i);
    const auto random_token = [&] {
        return n_vocab_ > 0 ? static_cast<int32_t>(rng() % static_cast<uint64_t>(n_vocab_)) : 0;
    };
    // Unique prefix: the request index in base n_vocab as the first two tokens after BOS.
    const auto prefix = [&](std::vector<int32_t> & toks) {
        if (add_bos_ && bos_ >= 0) toks.push_back(bos_);
        if (n_vocab_ > 0) {
            toks.push_back(static_cast<int32_t>(i % static_cast<uint64_t>(n_vocab_)));
            toks.push_back(static_cast<int32_t>((i / static_cast<uint64_t>(n_vocab_)) % static_cast<uint64_t>(n_vocab_)));
        }
    };
    int n_prompt = lengths_.n_prompt, n_predict = lengths_.n_predict;
    if (lengths_.shape == length_source::kind::distribution) {
        std::uniform_real_distribution<double> u(0.0, 1.0);
        n_prompt = std::max(1, dataset::length_quantile(lengths_.prompt_dist, std::clamp(u(rng), 1e-9, 1 - 1e-9)));
        n_predict = std::max(1, dataset::length_quantile(lengths_.output_dist, std::clamp(u(rng), 1e-9, 1 - 1e-9)));
    }
    if (lengths_.shape == length_source::kind::dataset) {
        const auto & s = lengths_.samples[i % lengths_.samples.size()];
        r.prompt_text = fmt::format("[request {}] {}", i, s.prompt_text);
        if (vocab_) r.prompt_tokens = tokenize(vocab_, r.prompt_text);
        if (add_bos_ && bos_ >= 0) r.prompt_tokens.insert(r.prompt_tokens.begin(), bos_);
        r.n_prompt = static_cast<int>(r.prompt_tokens.size());
        r.n_predict = s.n_output;
        return r;
    }
    // Fixed or drawn lengths: random token ids after the unique prefix (llama-bench's prompts), n_prompt in all.
    r.prompt_tokens.reserve(static_cast<size_t>(n_prompt));
    prefix(r.prompt_tokens);
    if (static_cast<int>(r.prompt_tokens.size()) > n_prompt) r.prompt_tokens.resize(static_cast<size_t>(n_prompt));
    while (static_cast<int>(r.prompt_tokens.size()) < n_prompt) r.prompt_tokens.push_back(random_token());
    r.n_prompt = n_prompt;
    r.n_predict = n_predict;
    if (vocab_) {
        // The same prompt as text, for engines that send text (HTTP); its token count may differ slightly.
        std::string text;
        char piece[256];
        for (size_t k = add_bos_ ? 1 : 0; k < r.prompt_tokens.size(); ++k) {
            const int32_t n = llama_token_to_piece(vocab_, r.prompt_tokens[k], piece, sizeof piece, 0, false);
            if (n > 0) text.append(piece, static_cast<size_t>(n));
        }
        r.prompt_text = std::move(text);
    }
    return r;
}

}  // namespace im::workload
