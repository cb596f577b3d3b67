#include "model/synth.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "model/quant.h"

#include "ggml.h"
#include "gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef INFERMETER_VOCAB_DIR
#define INFERMETER_VOCAB_DIR ""
#endif

namespace im::model {

namespace {

struct gguf_deleter {
    void operator()(gguf_context * ctx) const { gguf_free(ctx); }
};
using gguf_ptr = std::unique_ptr<gguf_context, gguf_deleter>;

struct ggml_deleter {
    void operator()(ggml_context * ctx) const { ggml_free(ctx); }
};

enum class fill { normal, ones, zeros };

struct tensor_spec {
    std::string name;
    int64_t ne0 = 0;  // row length
    int64_t ne1 = 1;  // rows
    fill init = fill::normal;
    bool is_vocab_rows = false;  // rows indexed by token id: zero the non-text ones
};

std::vector<tensor_spec> tensor_list(const shape & s, int n_vocab) {
    const int64_t e = s.n_embd;
    const int64_t kv = static_cast<int64_t>(s.head_dim()) * s.n_head_kv;
    std::vector<tensor_spec> t;
    t.push_back({"token_embd.weight", e, n_vocab, fill::normal, true});
    for (int il = 0; il < s.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        t.push_back({p + "attn_norm.weight", e, 1, fill::ones});
        t.push_back({p + "attn_q.weight", e, e});
        t.push_back({p + "attn_k.weight", e, kv});
        t.push_back({p + "attn_v.weight", e, kv});
        if (s.has_qkv_bias()) {
            t.push_back({p + "attn_q.bias", e, 1, fill::zeros});
            t.push_back({p + "attn_k.bias", kv, 1, fill::zeros});
            t.push_back({p + "attn_v.bias", kv, 1, fill::zeros});
        }
        t.push_back({p + "attn_output.weight", e, e});
        t.push_back({p + "ffn_norm.weight", e, 1, fill::ones});
        t.push_back({p + "ffn_gate.weight", e, s.n_ff});
        t.push_back({p + "ffn_up.weight", e, s.n_ff});
        t.push_back({p + "ffn_down.weight", s.n_ff, e});
    }
    t.push_back({"output_norm.weight", e, 1, fill::ones});
    if (!s.tied_embeddings) {
        t.push_back({"output.weight", e, n_vocab, fill::normal, true});
    }
    return t;
}

// xoshiro256** (Blackman & Vigna): fast, good enough for random weights; seeded per row block
// so the output does not depend on the number of threads.
struct xoshiro {
    uint64_t s[4];
    explicit xoshiro(uint64_t seed) {
        for (auto & v : s) {  // splitmix64
            seed += 0x9e3779b97f4a7c15ULL;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            v = z ^ (z >> 31);
        }
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
        const uint64_t result = rotl(s[1] * 5, 7) * 9;
        const uint64_t t = s[1] << 17;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }
};

// Approximately normal with std 0.02: the sum of four uniform 16-bit draws (Irwin–Hall), centred
// and scaled; one 64-bit draw per value.
void fill_normal(float * out, int64_t n, xoshiro & rng) {
    constexpr double scale = 0.02 / (65536.0 * 0.5773502691896258);  // uniform[0,65536) has std 65536/sqrt(12)
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t r = rng.next();
        const double sum = static_cast<double>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
        out[i] = static_cast<float>((sum - 2.0 * 65535.0) * scale);
    }
}

ggml_type direct_type(llama_ftype ftype) {
    switch (ftype) {
        case LLAMA_FTYPE_ALL_F32:     return GGML_TYPE_F32;
        case LLAMA_FTYPE_MOSTLY_F16:  return GGML_TYPE_F16;
        case LLAMA_FTYPE_MOSTLY_BF16: return GGML_TYPE_BF16;
        case LLAMA_FTYPE_MOSTLY_Q8_0: return GGML_TYPE_Q8_0;
        default:                      return GGML_TYPE_COUNT;
    }
}

bool valid_utf8(const std::string & s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        const size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : SIZE_MAX;
        if (n == SIZE_MAX || i + n >= s.size()) {
            return false;
        }
        for (size_t k = 1; k <= n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) {
                return false;
            }
        }
        i += n + 1;
    }
    return true;
}

void copy_vocab(gguf_context * dst, const gguf_context * vocab, int n_vocab_pad) {
    gguf_set_kv(dst, vocab);
    const int64_t tok_id = gguf_find_key(vocab, "tokenizer.ggml.tokens");
    const int n_have = static_cast<int>(gguf_get_arr_n(vocab, tok_id));
    if (n_vocab_pad <= n_have) {
        return;
    }
    // Pad the token list as convert_hf_to_gguf.py does for models whose embedding has more rows than
    // the tokenizer has tokens: "[PAD<i>]" of type UNUSED.
    std::vector<std::string> names;
    for (int i = 0; i < n_have; ++i) names.emplace_back(gguf_get_arr_str(vocab, tok_id, static_cast<size_t>(i)));
    for (int i = n_have; i < n_vocab_pad; ++i) names.push_back("[PAD" + std::to_string(i) + "]");
    std::vector<const char *> ptrs;
    for (const auto & n : names) ptrs.push_back(n.c_str());
    gguf_set_arr_str(dst, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());

    const int64_t type_id = gguf_find_key(vocab, "tokenizer.ggml.token_type");
    if (type_id >= 0) {
        const auto * types = static_cast<const int32_t *>(gguf_get_arr_data(vocab, type_id));
        std::vector<int32_t> t(types, types + n_have);
        t.resize(static_cast<size_t>(n_vocab_pad), 5 /* UNUSED */);
        gguf_set_arr_data(dst, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, t.data(), t.size());
    }
    const int64_t score_id = gguf_find_key(vocab, "tokenizer.ggml.scores");
    if (score_id >= 0) {
        const auto * scores = static_cast<const float *>(gguf_get_arr_data(vocab, score_id));
        std::vector<float> sc(scores, scores + n_have);
        sc.resize(static_cast<size_t>(n_vocab_pad), 0.0f);
        gguf_set_arr_data(dst, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, sc.data(), sc.size());
    }
}

void set_hparams(gguf_context * g, const shape & s, llama_ftype ftype, int n_vocab) {
    const std::string a = s.arch + ".";
    gguf_set_val_str(g, "general.architecture", s.arch.c_str());
    gguf_set_val_str(g, "general.name", (s.name + " (infermeter synth, random weights)").c_str());
    gguf_set_val_u32(g, "general.file_type", static_cast<uint32_t>(ftype));
    gguf_set_val_u32(g, "general.quantization_version", GGML_QNT_VERSION);
    gguf_set_val_u32(g, (a + "context_length").c_str(), static_cast<uint32_t>(s.n_ctx_train));
    gguf_set_val_u32(g, (a + "embedding_length").c_str(), static_cast<uint32_t>(s.n_embd));
    gguf_set_val_u32(g, (a + "block_count").c_str(), static_cast<uint32_t>(s.n_layer));
    gguf_set_val_u32(g, (a + "feed_forward_length").c_str(), static_cast<uint32_t>(s.n_ff));
    gguf_set_val_u32(g, (a + "attention.head_count").c_str(), static_cast<uint32_t>(s.n_head));
    gguf_set_val_u32(g, (a + "attention.head_count_kv").c_str(), static_cast<uint32_t>(s.n_head_kv));
    gguf_set_val_f32(g, (a + "rope.freq_base").c_str(), s.rope_freq_base);
    gguf_set_val_f32(g, (a + "attention.layer_norm_rms_epsilon").c_str(), s.rms_norm_eps);
    gguf_set_val_u32(g, (a + "rope.dimension_count").c_str(), static_cast<uint32_t>(s.head_dim()));
    gguf_set_val_u32(g, (a + "vocab_size").c_str(), static_cast<uint32_t>(n_vocab));
}

// Streams one GGUF: metadata first, then each tensor generated, converted and written block by
// block, so memory stays flat whatever the model size.
void write_gguf(const std::filesystem::path & path, const shape & s, const gguf_context * vocab, llama_ftype ftype,
                ggml_type weight_type, const std::vector<int> & zero_rows, uint64_t seed, int n_threads,
                const progress_fn & progress) {
    const int n_vocab = std::max(s.n_vocab_pad,
                                 static_cast<int>(gguf_get_arr_n(vocab, gguf_find_key(vocab, "tokenizer.ggml.tokens"))));
    gguf_ptr g(gguf_init_empty());
    copy_vocab(g.get(), vocab, s.n_vocab_pad);
    set_hparams(g.get(), s, ftype, n_vocab);

    const auto specs = tensor_list(s, n_vocab);
    ggml_init_params ip{ggml_tensor_overhead() * (specs.size() + 1), nullptr, true};
    std::unique_ptr<ggml_context, ggml_deleter> meta(ggml_init(ip));
    std::vector<ggml_type> types;
    for (const auto & t : specs) {
        const ggml_type type = t.ne1 == 1 ? GGML_TYPE_F32 : weight_type;
        ggml_tensor * tensor = t.ne1 == 1 ? ggml_new_tensor_1d(meta.get(), type, t.ne0)
                                          : ggml_new_tensor_2d(meta.get(), type, t.ne0, t.ne1);
        ggml_set_name(tensor, t.name.c_str());
        gguf_add_tensor(g.get(), tensor);
        types.push_back(type);
    }

    FILE * f = std::fopen(path.c_str(), "wb");
    if (!f) {
        throw_runtime("cannot write {}: {}", path.string(), std::strerror(errno));
    }
    std::unique_ptr<FILE, int (*)(FILE *)> guard(f, std::fclose);
    std::vector<uint8_t> meta_buf(gguf_get_meta_size(g.get()));
    gguf_get_meta_data(g.get(), meta_buf.data());
    bool ok = std::fwrite(meta_buf.data(), 1, meta_buf.size(), f) == meta_buf.size();

    std::vector<char> is_zero(static_cast<size_t>(n_vocab), 0);
    for (int id : zero_rows) is_zero[static_cast<size_t>(id)] = 1;

    uint64_t total_elems = 0, done_elems = 0;
    for (const auto & t : specs) total_elems += static_cast<uint64_t>(t.ne0 * t.ne1);

    const size_t data_offset = gguf_get_data_offset(g.get());
    std::vector<float> src;
    std::vector<uint8_t> dst;
    for (size_t ti = 0; ti < specs.size() && ok; ++ti) {
        if (interrupt::requested()) {
            throw error(error_kind::interrupted, "model synthesis interrupted; nothing was kept");
        }
        const auto & t = specs[ti];
        // pad to the tensor's offset (alignment)
        const auto want = static_cast<long>(data_offset + gguf_get_tensor_offset(g.get(), static_cast<int64_t>(ti)));
        const long pos = std::ftell(f);
        if (pos < want) {
            std::vector<uint8_t> pad(static_cast<size_t>(want - pos), 0);
            ok = std::fwrite(pad.data(), 1, pad.size(), f) == pad.size();
        }
        const size_t row_bytes = ggml_row_size(types[ti], t.ne0);
        const int64_t rows_per_block = std::max<int64_t>(1, (16 << 20) / t.ne0);
        for (int64_t r0 = 0; r0 < t.ne1 && ok; r0 += rows_per_block) {
            const int64_t nr = std::min(rows_per_block, t.ne1 - r0);
            src.resize(static_cast<size_t>(nr * t.ne0));
            dst.resize(static_cast<size_t>(nr) * row_bytes);
            const int nt = std::max(1, std::min<int>(n_threads, static_cast<int>(nr)));
            std::vector<std::thread> workers;
            for (int w = 0; w < nt; ++w) {
                workers.emplace_back([&, w] {
                    const int64_t a = nr * w / nt, b = nr * (w + 1) / nt;
                    for (int64_t r = a; r < b; ++r) {
                        float * row = src.data() + r * t.ne0;
                        const int64_t row_id = r0 + r;
                        if (t.init == fill::ones) {
                            std::fill(row, row + t.ne0, 1.0f);
                        } else if (t.init == fill::zeros || (t.is_vocab_rows && is_zero[static_cast<size_t>(row_id)])) {
                            std::fill(row, row + t.ne0, 0.0f);
                        } else {
                            xoshiro rng(seed ^ (static_cast<uint64_t>(ti) << 40) ^ static_cast<uint64_t>(row_id));
                            fill_normal(row, t.ne0, rng);
                        }
                    }
                    if (b > a) {
                        ggml_quantize_chunk(types[ti], src.data() + a * t.ne0, dst.data() + static_cast<size_t>(a) * row_bytes,
                                            0, b - a, t.ne0, nullptr);
                    }
                });
            }
            for (auto & w : workers) w.join();
            ok = std::fwrite(dst.data(), 1, dst.size(), f) == dst.size();
            done_elems += static_cast<uint64_t>(nr * t.ne0);
            if (progress) progress("writing weights", static_cast<double>(done_elems) / static_cast<double>(total_elems));
        }
    }
    ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    ok = std::fclose(guard.release()) == 0 && ok;
    if (!ok) {
        throw_runtime("cannot write {}: disk full or I/O error", path.string());
    }
}

}  // namespace

std::filesystem::path vocab_dir() {
    if (const char * env = std::getenv("INFERMETER_VOCAB_DIR"); env && *env) {
        return env;
    }
    return INFERMETER_VOCAB_DIR;
}

std::vector<int> non_text_tokens(const std::filesystem::path & vocab_path) {
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(vocab_path.c_str(), mp);
    if (!model) {
        throw_runtime("cannot load the vocabulary {} (--vocab names a ggml-vocab-*.gguf file)", vocab_path.string());
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n = llama_vocab_n_tokens(vocab);
    std::vector<int> out;
    std::vector<char> buf(256);
    constexpr int non_text = LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN | LLAMA_TOKEN_ATTR_UNUSED |
                             LLAMA_TOKEN_ATTR_BYTE;
    for (llama_token t = 0; t < n; ++t) {
        bool zero = (llama_vocab_get_attr(vocab, t) & non_text) != 0 || llama_vocab_is_eog(vocab, t);
        if (!zero) {
            int len = llama_token_to_piece(vocab, t, buf.data(), static_cast<int32_t>(buf.size()), 0, false);
            if (len < 0) {
                buf.resize(static_cast<size_t>(-len));
                len = llama_token_to_piece(vocab, t, buf.data(), static_cast<int32_t>(buf.size()), 0, false);
            }
            zero = len <= 0 || !valid_utf8(std::string(buf.data(), static_cast<size_t>(len)));
        }
        if (zero) {
            out.push_back(t);
        }
    }
    llama_model_free(model);
    return out;
}

synth_result synthesize(const synth_options & opts, const progress_fn & progress) {
    validate(opts.s);
    const int64_t t0 = clock::now_ns();
    const std::filesystem::path vocab_path = opts.vocab_path.empty() ? vocab_dir() / opts.s.vocab : opts.vocab_path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(vocab_path, ec)) {
        throw_runtime("vocabulary {} not found: pass --vocab FILE or set INFERMETER_VOCAB_DIR to llama.cpp's models/ "
                      "folder", vocab_path.string());
    }
    gguf_init_params ip{true, nullptr};
    gguf_ptr vocab(gguf_init_from_file(vocab_path.c_str(), ip));
    if (!vocab || gguf_find_key(vocab.get(), "tokenizer.ggml.tokens") < 0) {
        throw_runtime("{} is not a llama.cpp vocabulary file (no tokenizer.ggml.tokens)", vocab_path.string());
    }
    if (progress) progress("reading vocabulary", 0.0);
    std::vector<int> zero_rows = non_text_tokens(vocab_path);
    const int n_have = static_cast<int>(gguf_get_arr_n(vocab.get(), gguf_find_key(vocab.get(), "tokenizer.ggml.tokens")));
    for (int i = n_have; i < opts.s.n_vocab_pad; ++i) zero_rows.push_back(i);

    const int n_threads = opts.n_threads > 0 ? opts.n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // A temporary beside the output (or in the temp folder for a device), renamed or copied through
    // when complete: an interrupted or failed synthesis leaves nothing behind.
    fs::output_file out(opts.out, opts.out_hint);
    const std::filesystem::path tmp_out = out.temp_path();
    synth_result res;
    res.path = opts.out;
    res.n_rows_zeroed = static_cast<int>(zero_rows.size());
    res.n_vocab = std::max(n_have, opts.s.n_vocab_pad);

    const ggml_type direct = direct_type(opts.ftype);
    if (direct != GGML_TYPE_COUNT) {
        write_gguf(tmp_out, opts.s, vocab.get(), opts.ftype, direct, zero_rows, opts.seed, n_threads, progress);
    } else {
        // k-quants and friends: llama.cpp decides the per-tensor types; requantizing from Q8_0 gives
        // the same file as from F16 (DESIGN §6) with half the temporary disk.
        const std::filesystem::path q8 = out.extra_temp(".q8_0");
        write_gguf(q8, opts.s, vocab.get(), LLAMA_FTYPE_MOSTLY_Q8_0, GGML_TYPE_Q8_0, zero_rows, opts.seed, n_threads,
                   progress);
        res.temp_bytes = std::filesystem::file_size(q8, ec);
        if (progress) progress("quantizing to " + ftype_name(opts.ftype), 0.0);
        llama_model_quantize_params qp = llama_model_quantize_default_params();
        qp.ftype = opts.ftype;
        qp.allow_requantize = true;
        qp.nthread = n_threads;
        if (llama_model_quantize(q8.c_str(), tmp_out.c_str(), &qp) != 0) {
            throw_runtime("llama_model_quantize failed writing {} (file type {}; see --verbose)", opts.out.string(),
                          ftype_name(opts.ftype));
        }
        std::filesystem::remove(q8, ec);
    }
    out.commit();
    res.seconds = static_cast<double>(clock::now_ns() - t0) / 1e9;
    return res;
}

}  // namespace im::model
