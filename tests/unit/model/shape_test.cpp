#include "model/info.h"
#include "model/preset.h"
#include "model/quant.h"
#include "model/ref.h"
#include "core/error.h"

#include <gtest/gtest.h>

using namespace im::model;

static info info_of(const shape & s) {
    info m;
    m.arch = s.arch;
    m.n_layer = s.n_layer;
    m.n_embd = s.n_embd;
    m.n_head = s.n_head;
    m.n_head_kv.assign(static_cast<size_t>(s.n_layer), s.n_head_kv);
    m.head_dim_k = m.head_dim_v = s.head_dim();
    return m;
}

TEST(model_shape, qwen2_1_5b_matches_the_reference) {
    const auto s = find_preset("qwen2-1.5b");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->n_layer, 28);
    EXPECT_EQ(s->n_embd, 1536);
    EXPECT_EQ(s->n_ff, 8960);
    EXPECT_EQ(s->head_dim(), 128);
    // 1.54 B params with the 151,936-token Qwen2 vocabulary
    EXPECT_EQ(n_params(*s, 151936), 1543714304u);
    // 28,672 B of f16 KV per token (reference); q8_0 packs 32 values in 34 bytes
    EXPECT_EQ(kv_bytes_per_token(info_of(*s), GGML_TYPE_F16, GGML_TYPE_F16), 28672u);
    EXPECT_EQ(kv_bytes_per_token(info_of(*s), GGML_TYPE_Q8_0, GGML_TYPE_Q8_0), 28u * 2u * 272u);
}

TEST(model_shape, llama_3_2_1b_kv_bytes) {
    const auto s = find_preset("llama-3.2-1b");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->head_dim(), 64);
    EXPECT_EQ(kv_bytes_per_token(info_of(*s), GGML_TYPE_F16, GGML_TYPE_F16), 32768u);  // 16 × 2 × 512 × 2 B
    EXPECT_EQ(n_params(*s, 128256), 1235814400u);  // Llama 3.2 1B: 1.24 B
}

TEST(model_shape, every_preset_is_valid) {
    for (const auto & name : preset_names()) {
        const auto s = find_preset(name);
        ASSERT_TRUE(s) << name;
        EXPECT_NO_THROW(validate(*s)) << name;
    }
    EXPECT_FALSE(find_preset("gpt-5"));
}

TEST(model_shape, custom_shape_errors_name_the_flag) {
    shape s = *find_preset("tiny");
    s.n_head = 3;
    try {
        validate(s);
        FAIL();
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::usage);
        EXPECT_NE(std::string(e.what()).find("--heads"), std::string::npos);
    }
    s = *find_preset("tiny");
    s.arch = "mamba";
    EXPECT_THROW(validate(s), im::error);
}

TEST(model_ref, synth_references) {
    auto r = parse_synth_ref("synth:qwen2-1.5b-q4_k_m");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->preset, "qwen2-1.5b");
    EXPECT_EQ(r->ftype, LLAMA_FTYPE_MOSTLY_Q4_K_M);
    r = parse_synth_ref("synth:llama-3.2-1b");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->preset, "llama-3.2-1b");
    EXPECT_EQ(r->quant, "q4_k_m");
    r = parse_synth_ref("synth:tiny-F16");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->ftype, LLAMA_FTYPE_MOSTLY_F16);
    EXPECT_FALSE(parse_synth_ref("/models/x.gguf"));
    EXPECT_THROW(parse_synth_ref("synth:nope"), im::error);
    EXPECT_THROW(parse_synth_ref("synth:tiny-q9_z"), im::error);
}

TEST(model_quant, names_round_trip) {
    for (const auto & n : ftype_names()) {
        const auto t = ftype_from_name(n);
        ASSERT_TRUE(t) << n;
        std::string upper = ftype_name(*t);
        for (auto & c : upper) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        EXPECT_EQ(upper, n);
    }
    EXPECT_EQ(ftype_name(15), "Q4_K_M");
}
