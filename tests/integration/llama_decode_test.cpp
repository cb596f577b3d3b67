#include "engine/backend.h"
#include "engine/llama/session.h"
#include "model/synth.h"
#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>

using namespace im;

// A synthesized model loads in llama.cpp and generates text: greedy decoding from random weights
// never picks a control, end-of-generation or byte token, because synth zeroes their rows (DESIGN §6).
TEST(llama_decode, tiny_generates_only_text_tokens) {
    const auto path = test::tiny_model();
    engine::llama::engine_params p;
    engine::llama::model m(path, p);
    engine::llama::context ctx(m, p, {512, 1, false});
    const llama_vocab * vocab = m.vocab();
    std::vector<llama_token> prompt(16);
    const char * text = "The quick brown fox jumps over the lazy dog because";
    const int n = llama_tokenize(vocab, text, static_cast<int32_t>(strlen(text)), prompt.data(), 16, true, false);
    ASSERT_GT(n, 0);
    prompt.resize(static_cast<size_t>(n));
    ASSERT_EQ(llama_decode(ctx.get(), llama_batch_get_one(prompt.data(), n)), 0);
    llama_sampler * greedy = llama_sampler_init_greedy();
    std::string out;
    for (int i = 0; i < 64; ++i) {
        llama_token t = llama_sampler_sample(greedy, ctx.get(), -1);
        EXPECT_FALSE(llama_vocab_is_eog(vocab, t)) << "step " << i;
        EXPECT_EQ(llama_vocab_get_attr(vocab, t) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_BYTE), 0) << t;
        char piece[256];
        const int len = llama_token_to_piece(vocab, t, piece, sizeof(piece), 0, false);
        ASSERT_GT(len, 0);
        out.append(piece, static_cast<size_t>(len));
        ASSERT_EQ(llama_decode(ctx.get(), llama_batch_get_one(&t, 1)), 0);
    }
    llama_sampler_free(greedy);
    EXPECT_GT(out.size(), 64u);
}

// The Qwen2 vocabulary has 1,452 of 151,936 tokens that are not text on their own (DESIGN §6).
TEST(llama_decode, qwen2_vocabulary_has_1452_non_text_tokens) {
    engine::init(false);
    EXPECT_EQ(model::non_text_tokens(model::vocab_dir() / "ggml-vocab-qwen2.gguf").size(), 1452u);
}

// The anchors are built from the same llama.cpp and run on a synthesized model.
TEST(llama_decode, llama_bench_runs_on_synthesized_tiny) {
    const auto path = test::tiny_model();
    const auto r = test::run_program(test::bin_path("llama-bench"),
                                     {"-m", path.string(), "-p", "16", "-n", "4", "-r", "1", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["model_n_params"], 40077568);
    EXPECT_GT(j[1]["avg_ts"].get<double>(), 0);
}
