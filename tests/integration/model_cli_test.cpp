#include "support/run.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

using im::test::run_infermeter;

TEST(cli, version_names_llama_commit_and_backends) {
    const auto r = run_infermeter({"--version"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("infermeter 0."), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("llama.cpp 80fb11a"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CPU"), std::string::npos) << r.out;
}

TEST(cli, every_command_has_help) {
    for (std::vector<std::string> cmd : {std::vector<std::string>{}, {"model"}, {"model", "synth"}, {"model", "info"},
                                         {"bench"}, {"parallel"}, {"analyze"}, {"dataset"}, {"roofline"}, {"evaluate"},
                                         {"history"}}) {
        cmd.push_back("--help");
        const auto r = run_infermeter(cmd);
        EXPECT_EQ(r.exit_code, 0) << cmd.front() << ": " << r.err;
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
    }
}

TEST(cli, unknown_command_and_flag_are_usage_errors) {
    EXPECT_EQ(run_infermeter({"frobnicate"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"model", "info", "--no-such-flag", "x"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({}).exit_code, 2);
}

TEST(model_cli, missing_file_is_a_clear_error) {
    const auto r = run_infermeter({"model", "info", "/nonexistent/model.gguf"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(model_cli, non_gguf_file_is_a_clear_error) {
    const auto dir = im::test::temp_dir("nongguf");
    const auto path = dir / "notes.gguf";
    std::ofstream(path) << "this is not a model\n";
    const auto r = run_infermeter({"model", "info", path.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("not a GGUF"), std::string::npos) << r.err;
}

TEST(model_cli, truncated_gguf_is_a_clear_error) {
    const auto tiny = im::test::tiny_model();
    const auto dir = im::test::temp_dir("truncated");
    const auto path = dir / "truncated.gguf";
    std::filesystem::copy_file(tiny, path);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
    auto r = run_infermeter({"model", "info", path.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
    // cut inside the metadata
    std::filesystem::resize_file(path, 100);
    r = run_infermeter({"model", "info", path.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(path.string()), std::string::npos) << r.err;
}

TEST(model_cli, unknown_preset_is_a_usage_error) {
    auto r = run_infermeter({"model", "synth", "--preset", "gpt-9"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("gpt-9"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("qwen2-1.5b"), std::string::npos) << "lists the presets: " << r.err;
    r = run_infermeter({"model", "info", "synth:gpt-9"});
    EXPECT_EQ(r.exit_code, 2);
    r = run_infermeter({"model", "synth", "--preset", "tiny", "--quant", "q9"});
    EXPECT_EQ(r.exit_code, 2);
    r = run_infermeter({"model", "synth", "--layers", "2", "--embd", "250", "--ff", "512", "--heads", "4"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST(model_cli, tiny_info_json) {
    const auto r = run_infermeter({"model", "info", "synth:tiny", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["architecture"], "qwen2");
    EXPECT_EQ(j["n_layer"], 2);
    EXPECT_EQ(j["n_embd"], 256);
    EXPECT_EQ(j["n_head_kv"], 2);
    EXPECT_EQ(j["head_dim"], 64);
    EXPECT_EQ(j["n_vocab"], 151936);
    EXPECT_EQ(j["file_type"], "Q4_K_M");
    EXPECT_EQ(j["kv_bytes_per_token"]["f16"], 2 * 2 * 128 * 2);
}

// The reference model: 934.69 MiB and 1.54 B params at Q4_K_M (DESIGN §6).
TEST(model_cli, qwen2_1_5b_q4_k_m_matches_the_reference) {
    const auto r = run_infermeter({"model", "info", "synth:qwen2-1.5b-q4_k_m"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("934.69 MiB"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("1.54 B"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("f16 28,672 B"), std::string::npos) << r.out;
}
