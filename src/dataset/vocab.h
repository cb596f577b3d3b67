#pragma once

#include "llama.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

// A model's vocabulary on its own, for counting tokens. Needs engine::init() first.
namespace im::dataset {

// The vocabulary of a GGUF loaded with vocab_only: a 7B model or a bare ggml-vocab-*.gguf costs
// only its metadata. The llama_vocab it hands out is safe to tokenize with from several threads.
class vocabulary {
  public:
    // Throws a runtime error naming the path (and -m/--vocab) when it is missing or not a GGUF.
    explicit vocabulary(const std::filesystem::path & path);
    ~vocabulary();
    vocabulary(const vocabulary &) = delete;
    vocabulary & operator=(const vocabulary &) = delete;

    const llama_vocab * get() const { return vocab_; }
    const std::filesystem::path & path() const { return path_; }
    // The file's default chat template (tokenizer.chat_template); empty when it has none.
    std::string chat_template() const;

  private:
    std::filesystem::path path_;
    llama_model * model_ = nullptr;
    const llama_vocab * vocab_ = nullptr;
};

// The vocabulary file for what the user passed: --vocab FILE as given; -m synth:PRESET[-QUANT] the
// preset's ggml-vocab file (nothing is synthesized); -m MODEL.gguf the model itself. Throws a usage
// error when neither or both are given.
std::filesystem::path vocab_file_for(const std::string & model_ref, const std::string & vocab_file);

// Number of tokens in `text` with no BOS/EOS added; `parse_special` turns special-token text (a chat
// template's markers) into their single tokens. `buf` is scratch reused between calls.
// Thread-safe for one vocabulary (DESIGN §7).
int32_t count_tokens(const llama_vocab * vocab, std::string_view text, bool parse_special,
                     std::vector<llama_token> & buf);

// "bpe", "spm", "wpm", "ugm", "rwkv", "plamo2" or "none".
std::string vocab_type_name(const llama_vocab * vocab);

}  // namespace im::dataset
