#include "model/info.h"

#include "core/error.h"
#include "core/format.h"
#include "model/quant.h"

#include "gguf.h"

#include <cstdio>
#include <fstream>
#include <memory>

namespace im::model {

namespace {

struct gguf_deleter {
    void operator()(gguf_context * ctx) const { gguf_free(ctx); }
};

int64_t get_int(const gguf_context * ctx, const std::string & key, int64_t fallback) {
    const int64_t id = gguf_find_key(ctx, key.c_str());
    if (id < 0) {
        return fallback;
    }
    switch (gguf_get_kv_type(ctx, id)) {
        case GGUF_TYPE_UINT8:  return gguf_get_val_u8(ctx, id);
        case GGUF_TYPE_INT8:   return gguf_get_val_i8(ctx, id);
        case GGUF_TYPE_UINT16: return gguf_get_val_u16(ctx, id);
        case GGUF_TYPE_INT16:  return gguf_get_val_i16(ctx, id);
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(ctx, id);
        case GGUF_TYPE_INT32:  return gguf_get_val_i32(ctx, id);
        case GGUF_TYPE_UINT64: return static_cast<int64_t>(gguf_get_val_u64(ctx, id));
        case GGUF_TYPE_INT64:  return gguf_get_val_i64(ctx, id);
        default:               return fallback;
    }
}

// Per-layer values stored either as one scalar or as an array (e.g. head_count_kv in some models).
std::vector<int> get_per_layer(const gguf_context * ctx, const std::string & key, int n_layer, int fallback) {
    const int64_t id = gguf_find_key(ctx, key.c_str());
    if (id >= 0 && gguf_get_kv_type(ctx, id) == GGUF_TYPE_ARRAY) {
        std::vector<int> out;
        const size_t n = gguf_get_arr_n(ctx, id);
        const auto type = gguf_get_arr_type(ctx, id);
        const void * data = gguf_get_arr_data(ctx, id);
        for (size_t i = 0; i < n; ++i) {
            out.push_back(type == GGUF_TYPE_UINT32 ? static_cast<int>(static_cast<const uint32_t *>(data)[i])
                                                   : static_cast<const int32_t *>(data)[i]);
        }
        return out;
    }
    return std::vector<int>(static_cast<size_t>(n_layer), static_cast<int>(get_int(ctx, key, fallback)));
}

std::string get_str(const gguf_context * ctx, const char * key) {
    const int64_t id = gguf_find_key(ctx, key);
    return id >= 0 && gguf_get_kv_type(ctx, id) == GGUF_TYPE_STRING ? gguf_get_val_str(ctx, id) : "";
}

// Metadata that llama.cpp trusts and aborts on (GGML_ASSERT, division by zero) when damaged: checked
// here so that a damaged file is an error naming the key, not a crash (issue 16: mutated GGUFs).
void check_hparams(const gguf_context * g, const info & m, const std::string & a) {
    const auto bad = [&](const std::string & key, int64_t v, const std::string & why) {
        throw_runtime("{} is damaged: metadata {} = {} {}; re-download or re-create the file", m.path.string(), key, v, why);
    };
    if (m.n_layer > 512) bad(a + "block_count", m.n_layer, "is above llama.cpp's 512 layers");
    if (m.n_embd > (1 << 20)) bad(a + "embedding_length", m.n_embd, "is implausible");
    if (m.n_head > 65536) bad(a + "attention.head_count", m.n_head, "is implausible");
    if (m.n_ff < 0 || m.n_ff > (1 << 24)) bad(a + "feed_forward_length", m.n_ff, "is implausible");
    for (int kv : m.n_head_kv) {
        if (kv < 0 || kv > m.n_head || (kv > 0 && m.n_head % kv != 0)) {
            bad(a + "attention.head_count_kv", kv, fmt::format("does not divide head_count {}", m.n_head));
        }
    }
    if (m.head_dim_k <= 0 || m.head_dim_k > 65536) bad(a + "attention.key_length", m.head_dim_k, "is implausible");
    if (m.head_dim_v <= 0 || m.head_dim_v > 65536) bad(a + "attention.value_length", m.head_dim_v, "is implausible");
    const int64_t n_rot = get_int(g, a + "rope.dimension_count", m.head_dim_k);
    if (n_rot < 0 || n_rot > m.head_dim_k) {
        bad(a + "rope.dimension_count", n_rot, fmt::format("exceeds the head dimension {}", m.head_dim_k));
    }
    // llama.cpp's graphs for these architectures assert full rotary embeddings.
    if ((m.arch == "llama" || m.arch == "qwen2" || m.arch == "qwen3") && n_rot != m.head_dim_k) {
        bad(a + "rope.dimension_count", n_rot, fmt::format("differs from the head dimension {}", m.head_dim_k));
    }
    if (m.n_ctx_train < 0) bad(a + "context_length", m.n_ctx_train, "is negative");
    if (m.n_vocab <= 0) bad("tokenizer.ggml.tokens", m.n_vocab, "holds no tokens");
}

}  // namespace

std::string info::description() const {
    const double p = static_cast<double>(n_params);
    std::string size = p >= 1e9 ? fmt::format("{:.1f}B", p / 1e9) : fmt::format("{:.0f}M", p / 1e6);
    return fmt::format("{} {} {}", arch, size, ftype_name(file_type));
}

info read_info(const std::filesystem::path & path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw_runtime("model {} is a directory; give the .gguf file inside it", path.string());
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw_runtime("model file {} not found (-m takes a .gguf path or synth:PRESET, e.g. synth:tiny)",
                      path.string());
    }
    info m;
    m.path = path;
    m.file_bytes = std::filesystem::file_size(path, ec);
    {
        std::ifstream in(path, std::ios::binary);
        char magic[4] = {};
        in.read(magic, 4);
        if (!in || std::string(magic, 4) != "GGUF") {
            throw_runtime("{} is not a GGUF model file (its first bytes are not 'GGUF'); convert it with llama.cpp's "
                          "convert_hf_to_gguf.py or pass a .gguf file to -m", path.string());
        }
    }
    gguf_init_params params{};
    params.no_alloc = true;
    params.ctx = nullptr;
    std::unique_ptr<gguf_context, gguf_deleter> ctx(gguf_init_from_file(path.c_str(), params));
    if (!ctx) {
        throw_runtime("{} is a damaged or truncated GGUF file (its header or metadata cannot be read)", path.string());
    }
    const gguf_context * g = ctx.get();

    uint64_t data_end = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
        const size_t size = gguf_get_tensor_size(g, i);
        const int64_t * ne = gguf_get_tensor_ne(g, i);
        m.size_bytes += size;
        m.n_params += static_cast<uint64_t>(ne[0] * ne[1] * ne[2] * ne[3]);
        data_end = std::max<uint64_t>(data_end, gguf_get_data_offset(g) + gguf_get_tensor_offset(g, i) + size);
        const std::string name = gguf_get_tensor_name(g, i);
        if (name == "output.weight") {
            m.tied_embeddings = false;
        }
        // Block 0's matrices stand for every layer's matmuls (the probe's shapes, DESIGN §2.4).
        if (name.rfind("blk.0.", 0) == 0 && ne[1] > 1 && ne[2] == 1 && ne[3] == 1 &&
            name.find("norm") == std::string::npos) {
            m.layer_matmuls.push_back({name.substr(6), gguf_get_tensor_type(g, i), ne[0], ne[1]});
        }
    }
    if (data_end > m.file_bytes) {
        throw_runtime("{} is truncated: its tensors need {} bytes but the file has {} (re-download or re-create it)",
                      path.string(), data_end, m.file_bytes);
    }

    m.arch = get_str(g, "general.architecture");
    if (m.arch.empty()) {
        throw_runtime("{} has no general.architecture key: not a llama.cpp model file", path.string());
    }
    m.name = get_str(g, "general.name");
    const std::string a = m.arch + ".";
    m.n_layer = static_cast<int>(get_int(g, a + "block_count", 0));
    m.n_embd = static_cast<int>(get_int(g, a + "embedding_length", 0));
    m.n_ff = get_per_layer(g, a + "feed_forward_length", std::max(m.n_layer, 1), 0).front();
    m.n_head = get_per_layer(g, a + "attention.head_count", std::max(m.n_layer, 1), 0).front();
    m.n_head_kv = get_per_layer(g, a + "attention.head_count_kv", m.n_layer, m.n_head);
    m.n_ctx_train = static_cast<int>(get_int(g, a + "context_length", 0));
    m.file_type = static_cast<int>(get_int(g, "general.file_type", -1));
    if (m.n_layer <= 0 || m.n_embd <= 0 || m.n_head <= 0) {
        throw_runtime("{}: architecture '{}' lacks block_count/embedding_length/head_count; infermeter cannot "
                      "describe it", path.string(), m.arch);
    }
    m.head_dim_k = static_cast<int>(get_int(g, a + "attention.key_length", m.n_embd / m.n_head));
    m.head_dim_v = static_cast<int>(get_int(g, a + "attention.value_length", m.n_embd / m.n_head));
    const int64_t tok = gguf_find_key(g, "tokenizer.ggml.tokens");
    m.n_vocab = tok >= 0 ? static_cast<int>(gguf_get_arr_n(g, tok)) : static_cast<int>(get_int(g, a + "vocab_size", 0));
    check_hparams(g, m, a);
    return m;
}

uint64_t kv_bytes_per_token(const info & m, ggml_type type_k, ggml_type type_v) {
    uint64_t total = 0;
    for (int il = 0; il < m.n_layer; ++il) {
        total += ggml_row_size(type_k, m.n_embd_k_gqa(il)) + ggml_row_size(type_v, m.n_embd_v_gqa(il));
    }
    return total;
}

ggml_type cache_type_from_name(const std::string & name, const std::string & flag) {
    static const std::pair<const char *, ggml_type> types[] = {
        {"f32", GGML_TYPE_F32},   {"f16", GGML_TYPE_F16},   {"bf16", GGML_TYPE_BF16}, {"q8_0", GGML_TYPE_Q8_0},
        {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1}, {"q5_0", GGML_TYPE_Q5_0}, {"q5_1", GGML_TYPE_Q5_1},
        {"iq4_nl", GGML_TYPE_IQ4_NL},
    };
    for (const auto & [n, t] : types) {
        if (name == n) {
            return t;
        }
    }
    throw_usage("{}: unknown cache type '{}' (f16, bf16, f32, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl)", flag, name);
}

}  // namespace im::model
