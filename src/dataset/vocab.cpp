#include "dataset/vocab.h"

#include "core/error.h"
#include "engine/backend.h"
#include "model/preset.h"
#include "model/ref.h"
#include "model/synth.h"

#include <limits>

namespace im::dataset {

vocabulary::vocabulary(const std::filesystem::path & path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw_runtime("vocabulary {} not found (-m takes a .gguf model or synth:PRESET, --vocab a ggml-vocab-*.gguf)",
                      path.string());
    }
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    model_ = llama_model_load_from_file(path.c_str(), mp);
    if (!model_) {
        const std::string why = engine::last_llama_errors();
        throw_runtime("cannot load the vocabulary of {}{}{} (-m/--vocab need a GGUF file with a tokenizer)",
                      path.string(), why.empty() ? "" : ": ", why);
    }
    vocab_ = llama_model_get_vocab(model_);
}

vocabulary::~vocabulary() {
    if (model_) llama_model_free(model_);
}

std::string vocabulary::chat_template() const {
    const char * t = llama_model_chat_template(model_, nullptr);
    return t ? t : "";
}

std::filesystem::path vocab_file_for(const std::string & model_ref, const std::string & vocab_file) {
    if (!model_ref.empty() && !vocab_file.empty()) {
        throw_usage("give -m MODEL or --vocab FILE, not both");
    }
    if (!vocab_file.empty()) return vocab_file;
    if (model_ref.empty()) {
        throw_usage("no vocabulary: pass -m MODEL (a .gguf or synth:PRESET) or --vocab FILE (a ggml-vocab-*.gguf)");
    }
    if (const auto sr = model::parse_synth_ref(model_ref)) {
        return model::vocab_dir() / model::find_preset(sr->preset)->vocab;
    }
    return model::resolve(model_ref);
}

int32_t count_tokens(const llama_vocab * vocab, std::string_view text, bool parse_special,
                     std::vector<llama_token> & buf) {
    if (text.empty()) return 0;
    if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
        throw_runtime("a text of {} bytes is too long to tokenize (limit 1 GiB)", text.size());
    }
    // Every token covers at least one byte, so bytes + a few specials always fit: one pass.
    const size_t need = text.size() + 8;
    if (buf.size() < need) buf.resize(need);
    int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), buf.data(),
                               static_cast<int32_t>(buf.size()), false, parse_special);
    if (n < 0 && n != std::numeric_limits<int32_t>::min()) {
        buf.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), buf.data(),
                           static_cast<int32_t>(buf.size()), false, parse_special);
    }
    if (n < 0) throw_runtime("llama_tokenize failed on a text of {} bytes", text.size());
    return n;
}

std::string vocab_type_name(const llama_vocab * vocab) {
    switch (llama_vocab_type(vocab)) {
        case LLAMA_VOCAB_TYPE_NONE: return "none";
        case LLAMA_VOCAB_TYPE_SPM: return "spm";
        case LLAMA_VOCAB_TYPE_BPE: return "bpe";
        case LLAMA_VOCAB_TYPE_WPM: return "wpm";
        case LLAMA_VOCAB_TYPE_UGM: return "ugm";
        case LLAMA_VOCAB_TYPE_RWKV: return "rwkv";
        case LLAMA_VOCAB_TYPE_PLAMO2: return "plamo2";
        default: return "other";
    }
}

}  // namespace im::dataset
