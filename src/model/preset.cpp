#include "model/preset.h"

#include "core/error.h"

namespace im::model {

// Shapes from each model's published config.json (hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, vocab_size, tie_word_embeddings, rope_theta).
static const std::vector<std::pair<std::string, shape>> & presets() {
    static const std::vector<std::pair<std::string, shape>> table = {
        {"tiny",         {"qwen2", "tiny",          2,  256,   512,  4, 2,      0,  32768, 1000000.0f, 1e-6f, true,  "ggml-vocab-qwen2.gguf"}},
        {"qwen2-0.5b",   {"qwen2", "Qwen2-0.5B",   24,  896,  4864, 14, 2,      0,  32768, 1000000.0f, 1e-6f, true,  "ggml-vocab-qwen2.gguf"}},
        {"qwen2-1.5b",   {"qwen2", "Qwen2-1.5B",   28, 1536,  8960, 12, 2,      0,  32768, 1000000.0f, 1e-6f, true,  "ggml-vocab-qwen2.gguf"}},
        {"qwen2-7b",     {"qwen2", "Qwen2-7B",     28, 3584, 18944, 28, 4, 152064,  32768, 1000000.0f, 1e-6f, false, "ggml-vocab-qwen2.gguf"}},
        {"llama-3.2-1b", {"llama", "Llama-3.2-1B", 16, 2048,  8192, 32, 8,      0, 131072,  500000.0f, 1e-5f, true,  "ggml-vocab-llama-bpe.gguf"}},
        {"llama-3.2-3b", {"llama", "Llama-3.2-3B", 28, 3072,  8192, 24, 8,      0, 131072,  500000.0f, 1e-5f, true,  "ggml-vocab-llama-bpe.gguf"}},
        {"llama-3.1-8b", {"llama", "Llama-3.1-8B", 32, 4096, 14336, 32, 8,      0, 131072,  500000.0f, 1e-5f, false, "ggml-vocab-llama-bpe.gguf"}},
    };
    return table;
}

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const auto & [name, s] : presets()) {
        names.push_back(name);
    }
    return names;
}

std::optional<shape> find_preset(const std::string & name) {
    for (const auto & [n, s] : presets()) {
        if (n == name) {
            return s;
        }
    }
    return std::nullopt;
}

uint64_t n_params(const shape & s, int n_vocab) {
    const uint64_t e = static_cast<uint64_t>(s.n_embd);
    const uint64_t kv = static_cast<uint64_t>(s.head_dim()) * static_cast<uint64_t>(s.n_head_kv);
    const uint64_t ff = static_cast<uint64_t>(s.n_ff);
    uint64_t layer = 2 * e * e + 2 * e * kv + 3 * e * ff + 2 * e;  // q, o, k, v, ffn, norms
    if (s.has_qkv_bias()) {
        layer += e + 2 * kv;
    }
    const uint64_t embd = e * static_cast<uint64_t>(n_vocab);
    return static_cast<uint64_t>(s.n_layer) * layer + embd * (s.tied_embeddings ? 1 : 2) + e;
}

void validate(const shape & s) {
    if (s.arch != "qwen2" && s.arch != "llama") {
        throw_usage("--arch: unknown architecture '{}' (supported: qwen2, llama)", s.arch);
    }
    auto check = [](int v, const char * flag, int lo, int hi) {
        if (v < lo || v > hi) {
            throw_usage("{}: {} is out of range ({}..{})", flag, v, lo, hi);
        }
    };
    check(s.n_layer, "--layers", 1, 512);
    check(s.n_embd, "--embd", 32, 65536);
    check(s.n_ff, "--ff", 32, 262144);
    check(s.n_head, "--heads", 1, 1024);
    check(s.n_head_kv, "--kv-heads", 1, 1024);
    if (s.n_embd % s.n_head != 0) {
        throw_usage("--embd {} is not a multiple of --heads {}", s.n_embd, s.n_head);
    }
    if (s.n_head % s.n_head_kv != 0) {
        throw_usage("--heads {} is not a multiple of --kv-heads {}", s.n_head, s.n_head_kv);
    }
    if (s.head_dim() % 2 != 0) {
        throw_usage("head dimension --embd/--heads = {} must be even (RoPE)", s.head_dim());
    }
}

}  // namespace im::model
