#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace im::model {

// The transformer shape `model synth` writes. Published shapes for presets (DESIGN §6).
struct shape {
    std::string arch;          // "qwen2" or "llama"
    std::string name;          // general.name written into the file
    int n_layer = 0;
    int n_embd = 0;
    int n_ff = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int n_vocab_pad = 0;       // pad the vocabulary's token list to this many rows (0: as the vocab has)
    int n_ctx_train = 0;
    float rope_freq_base = 0;
    float rms_norm_eps = 0;
    bool tied_embeddings = true;
    std::string vocab;         // vocabulary file name in llama.cpp's models/, e.g. "ggml-vocab-qwen2.gguf"

    int head_dim() const { return n_embd / n_head; }
    bool has_qkv_bias() const { return arch == "qwen2"; }
};

// Names of all presets, in the order `model synth --help` lists them.
std::vector<std::string> preset_names();
// The preset's shape; empty when `name` is not a preset.
std::optional<shape> find_preset(const std::string & name);
// Parameters of the tensors synth writes for this shape with n_vocab embedding rows.
uint64_t n_params(const shape & s, int n_vocab);
// Checks a custom shape; throws a usage error naming the flag at fault.
void validate(const shape & s);

}  // namespace im::model
