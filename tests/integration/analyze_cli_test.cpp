#include "model/synth.h"
#include "support/run.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

using im::test::data_path;
using im::test::run_infermeter;

namespace {

std::string vocab() { return (im::model::vocab_dir() / "ggml-vocab-qwen2.gguf").string(); }

std::string fixture(const std::string & name) { return data_path("dataset/" + name).string(); }

std::vector<std::string> analyze_args(const std::string & dataset, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"analyze", "--dataset", dataset, "--vocab", vocab()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// The error is one line, the last on stderr (progress lines may precede it).
bool one_line_error(const std::string & err) {
    const size_t at = err.find("infermeter: error: ");
    return at != std::string::npos && (at == 0 || err[at - 1] == '\n') && err.find('\n', at) == err.size() - 1;
}

}  // namespace

TEST(analyze_cli, help_names_every_flag) {
    const auto r = run_infermeter({"analyze", "--help"});
    EXPECT_EQ(r.exit_code, 0);
    for (const char * flag : {"--dataset", "--model", "--vocab", "--format", "--prompt-field", "--output-field",
                              "--chat-template", "--max-bad-records", "--threads", "--output", "--export", "--round"}) {
        EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
    }
    const auto s = run_infermeter({"dataset", "synth", "--help"});
    EXPECT_EQ(s.exit_code, 0);
    for (const char * flag : {"--output", "--prompt-tokens", "--output-tokens", "--records", "--seed", "--vocab"}) {
        EXPECT_NE(s.out.find(flag), std::string::npos) << flag;
    }
}

TEST(analyze_cli, markdown_has_the_reference_sections) {
    const auto r = run_infermeter(analyze_args(fixture("alpaca.jsonl")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char * s : {"## Recommended Parameters", "**Prompt Length (`--n-prompt`):** 32 tokens",
                           "**Output Length (`--n-predict`):**", "### Rationale", "## Parameter Options",
                           "| Scenario | n-prompt | n-predict | Coverage | Use Case |",
                           // 3 outputs of at most 4 tokens: every scenario is 4, merged into one row with a note
                           "| **Conservative / Recommended / Comprehensive** | 32 | 4 | 100% of outputs (targets 75%, 90%, 99%) |",
                           "*Note:* Conservative, Recommended and Comprehensive come out identical: 4, the smallest power "
                           "of two that covers 75% of outputs, covers 100%, which meets all their targets.",
                           "## Token Length Statistics", "│"}) {
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    }
    EXPECT_EQ(r.out.find("analyze:"), std::string::npos) << "progress belongs on stderr";
}

TEST(analyze_cli, round_picks_the_granularity_and_coverage_stays_at_or_above_target) {
    for (const char * round : {"pow2", "128", "exact"}) {
        const auto r = run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"-o", "json", "--round", round}));
        ASSERT_EQ(r.exit_code, 0) << round << r.err;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["rounding"], round);
        for (const auto & x : j["recommendations"]) {
            EXPECT_GE(x["coverage"].get<double>(), x["target_coverage"].get<double>()) << round << x.dump();
            const int n = x["n_predict"];
            if (std::string(round) == "128") {
                EXPECT_EQ(n % 128, 0) << n;
            } else if (std::string(round) == "pow2") {
                EXPECT_EQ(n & (n - 1), 0) << n;
            }
        }
    }
    const auto bad = run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"--round", "64"}));
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--round"), std::string::npos) << bad.err;
}

TEST(analyze_cli, json_to_stdout_and_export_by_extension) {
    const auto dir = im::test::temp_dir("analyze-export");
    const auto md = (dir / "a.md").string();
    const auto r = run_infermeter(analyze_args(fixture("sharegpt.json"), {"-o", "json", "--export", md}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["dataset"]["format"], "sharegpt");
    EXPECT_EQ(j["dataset"]["records"], 3);
    EXPECT_EQ(j["prompt_tokens"]["count"], 3);
    EXPECT_EQ(j["recommendations"][1]["scenario"], "recommended");
    std::ifstream f(md);
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    EXPECT_NE(text.find("## Parameter Options"), std::string::npos);
    const auto bad = run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"--export", (dir / "a.txt").string()}));
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find(".md or .json"), std::string::npos) << bad.err;
}

TEST(analyze_cli, broken_line_is_skipped_and_reported) {
    const auto r = run_infermeter(analyze_args(fixture("broken.jsonl"), {"--max-bad-records", "0.25"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("skipped 2 malformed records: line 3 (not valid JSON), line 7"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("2 malformed"), std::string::npos);
}

TEST(analyze_cli, too_many_bad_records_fail_naming_count_and_lines) {
    const auto r = run_infermeter(analyze_args(fixture("broken.jsonl")));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("2 of 10 records"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("line 3"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("line 7"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--max-bad-records"), std::string::npos) << r.err;
    EXPECT_TRUE(one_line_error(r.err)) << r.err;
    EXPECT_TRUE(r.out.empty());
}

TEST(analyze_cli, missing_fields_name_the_fields_found_and_the_flags) {
    const auto r = run_infermeter(analyze_args(fixture("custom.jsonl")));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("q, a, meta"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--prompt-field"), std::string::npos) << r.err;
    EXPECT_TRUE(one_line_error(r.err)) << r.err;
    const auto ok = run_infermeter(analyze_args(fixture("custom.jsonl"), {"--prompt-field", "q", "--output-field", "a"}));
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(analyze_cli, empty_and_nonexistent_files_are_clear_errors) {
    const auto e = run_infermeter(analyze_args(fixture("empty.jsonl")));
    EXPECT_EQ(e.exit_code, 1);
    EXPECT_NE(e.err.find("no records"), std::string::npos) << e.err;
    const auto n = run_infermeter(analyze_args("/nonexistent/data.jsonl"));
    EXPECT_EQ(n.exit_code, 1);
    EXPECT_NE(n.err.find("/nonexistent/data.jsonl"), std::string::npos) << n.err;
    EXPECT_NE(n.err.find("not found"), std::string::npos) << n.err;
    EXPECT_TRUE(one_line_error(n.err)) << n.err;
}

TEST(analyze_cli, vocabulary_and_flag_errors) {
    const auto none = run_infermeter({"analyze", "--dataset", fixture("alpaca.jsonl")});
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_NE(none.err.find("--vocab"), std::string::npos) << none.err;
    const auto missing = run_infermeter({"analyze", "--dataset", fixture("alpaca.jsonl"), "--vocab", "/nope.gguf"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("/nope.gguf"), std::string::npos) << missing.err;
    const auto not_gguf = run_infermeter({"analyze", "--dataset", fixture("alpaca.jsonl"), "--vocab", fixture("alpaca.jsonl")});
    EXPECT_EQ(not_gguf.exit_code, 1) << not_gguf.err;
    EXPECT_EQ(run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"--format", "yaml"})).exit_code, 2);
    EXPECT_EQ(run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"--max-bad-records", "3"})).exit_code, 2);
    EXPECT_EQ(run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"-o", "html"})).exit_code, 2);
    EXPECT_EQ(run_infermeter(analyze_args(fixture("alpaca.jsonl"), {"--prompt-field", "x"})).exit_code, 2);
}

TEST(analyze_cli, synth_model_reference_uses_the_preset_vocabulary_without_synthesizing) {
    const auto r = run_infermeter({"analyze", "--dataset", fixture("alpaca.jsonl"), "-m", "synth:qwen2-7b", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("synthesizing"), std::string::npos) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["tokenizer"]["vocab"], "ggml-vocab-qwen2.gguf");
}

TEST(analyze_cli, gzip_csv_and_non_utf8_inputs) {
    const auto gz = run_infermeter(analyze_args(fixture("alpaca.jsonl.gz"), {"-o", "json"}));
    ASSERT_EQ(gz.exit_code, 0) << gz.err;
    EXPECT_EQ(nlohmann::json::parse(gz.out)["dataset"]["records"], 3);
    const auto csv = run_infermeter(analyze_args(fixture("fields.csv"), {"-o", "json"}));
    ASSERT_EQ(csv.exit_code, 0) << csv.err;
    EXPECT_EQ(nlohmann::json::parse(csv.out)["dataset"]["records"], 3);
    const auto u = run_infermeter(analyze_args(fixture("non_utf8.jsonl"), {"-o", "json"}));
    ASSERT_EQ(u.exit_code, 0) << u.err;
    EXPECT_EQ(nlohmann::json::parse(u.out)["dataset"]["utf8_replaced_records"], 1);
    EXPECT_NE(u.err.find("U+FFFD"), std::string::npos) << u.err;
}

TEST(analyze_cli, ten_megabyte_single_record) {
    const auto dir = im::test::temp_dir("analyze-big");
    const auto path = dir / "big.jsonl";
    {
        std::ofstream f(path);
        f << "{\"instruction\": \"Summarize this.\", \"input\": \"\", \"output\": \"";
        const std::string words[] = {"the ", "model ", "reads ", "a ", "long ", "record ", "and ", "counts "};
        size_t n = 0;
        for (size_t i = 0; n < 10'000'000; ++i) {
            f << words[i % 8];
            n += words[i % 8].size();
        }
        f << "\"}\n{\"instruction\": \"Short.\", \"input\": \"\", \"output\": \"ok\"}\n";
    }
    const auto r = run_infermeter(analyze_args(path.string(), {"-o", "json"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["dataset"]["records"], 2);
    EXPECT_GT(j["output_tokens"]["max"].get<int64_t>(), 1'500'000);
    EXPECT_EQ(j["recommendations"][2]["n_predict"].get<int64_t>() > 0, true);
}

TEST(analyze_cli, dataset_synth_round_trip_reproduces_the_reference_recommendations) {
    const auto dir = im::test::temp_dir("synth-ref");
    const auto path = (dir / "ref.jsonl").string();
    const auto s = run_infermeter({"dataset", "synth", "-o", path, "--vocab", vocab()});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_EQ(s.out, path + "\n");
    const auto r = run_infermeter(analyze_args(path, {"-o", "json"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["dataset"]["records"], 2000);
    EXPECT_NEAR(j["prompt_tokens"]["mean"].get<double>(), 70.0, 0.7);
    EXPECT_NEAR(j["output_tokens"]["p90"].get<double>(), 1280.0, 13.0);
    const auto & rec = j["recommendations"];
    EXPECT_EQ(rec[0]["n_predict"], 1024);
    EXPECT_EQ(rec[1]["n_predict"], 2048);
    EXPECT_EQ(rec[2]["n_predict"], 4096);
    for (const auto & x : rec) {
        EXPECT_EQ(x["n_prompt"], 128);
        EXPECT_GE(x["coverage"].get<double>(), x["target_coverage"].get<double>()) << x.dump();
        EXPECT_TRUE(x["same_as"].is_null()) << x.dump();
    }
    // Each is the smallest power of two meeting its target: half of it falls short.
    const auto & cov = j["output_tokens"]["coverage"];
    const auto coverage_of = [&](int tokens) {
        for (const auto & c : cov) {
            if (c["tokens"] == tokens) return c["fraction"].get<double>();
        }
        return -1.0;
    };
    EXPECT_LT(coverage_of(512), 0.75);
    EXPECT_LT(coverage_of(1024), 0.90);
    EXPECT_LT(coverage_of(2048), 0.99);
    const auto rationale = j["rationale"].dump();
    EXPECT_NE(rationale.find("Instructions average ~70 tokens; 128 provides comfortable headroom"), std::string::npos)
        << rationale;
    EXPECT_NE(rationale.find("2048 tokens covers ~"), std::string::npos) << rationale;

    const auto bad = run_infermeter({"dataset", "synth", "-o", path, "--vocab", vocab(), "--output-tokens", "gamma:1"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--output-tokens"), std::string::npos) << bad.err;
}
