#include "core/error.h"
#include "dataset/analysis.h"
#include "dataset/synth.h"
#include "dataset/vocab.h"
#include "engine/backend.h"
#include "model/synth.h"
#include "support/run.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numeric>

using namespace im::dataset;

namespace {

const vocabulary & qwen2() {
    static const vocabulary v{[] {
        im::engine::init(false);
        return im::model::vocab_dir() / "ggml-vocab-qwen2.gguf";
    }()};
    return v;
}

analysis analyze_fixture(const std::string & name, analyze_options o = {}) {
    o.path = im::test::data_path("dataset/" + name);
    o.n_threads = 2;
    return analyze(o, qwen2().get());
}

}  // namespace

TEST(dataset_stats, percentiles_type7_known_answer) {
    // numpy.percentile([1, 2, 3, 4, 10], [50, 75, 90, 95, 99]) = 3, 4, 7.6, 8.8, 9.76
    const std::vector<int32_t> v{10, 1, 3, 2, 4};
    const auto s = compute_length_stats(v);
    EXPECT_EQ(s.count, 5u);
    EXPECT_DOUBLE_EQ(s.mean, 4.0);
    ASSERT_TRUE(s.std.has_value());
    EXPECT_NEAR(*s.std, 3.5355339059327378, 1e-12);  // sqrt(12.5)
    EXPECT_EQ(s.min, 1);
    EXPECT_EQ(s.max, 10);
    EXPECT_DOUBLE_EQ(s.p50, 3.0);
    EXPECT_DOUBLE_EQ(s.p75, 4.0);
    EXPECT_NEAR(s.p90, 7.6, 1e-12);
    EXPECT_NEAR(s.p95, 8.8, 1e-12);
    EXPECT_NEAR(s.p99, 9.76, 1e-12);
}

TEST(dataset_stats, one_sample_has_no_std) {
    const std::vector<int32_t> v{42};
    const auto s = compute_length_stats(v);
    EXPECT_FALSE(s.std.has_value());
    EXPECT_DOUBLE_EQ(s.p99, 42.0);
}

TEST(dataset_stats, histogram_counts_every_sample_and_coverage_is_cumulative) {
    std::vector<int32_t> v;
    for (int i = 1; i <= 1000; ++i) v.push_back(i * 3);
    v.push_back(100000);  // a far tail lands in the last bin
    const auto s = compute_length_stats(v);
    size_t total = 0;
    for (const auto & b : s.histogram) {
        EXPECT_LT(b.lo_tokens, b.hi_tokens);
        total += b.count;
    }
    EXPECT_EQ(total, v.size());
    EXPECT_EQ(s.histogram.back().hi_tokens, 100001);
    ASSERT_EQ(s.coverage.size(), 14u);  // 16 .. 131072
    EXPECT_EQ(s.coverage.front().tokens, 16);
    EXPECT_EQ(s.coverage.back().tokens, 131072);
    EXPECT_NEAR(s.coverage[0].fraction, 5.0 / 1001, 1e-12);  // 3, 6, 9, 12, 15
    EXPECT_DOUBLE_EQ(s.coverage.back().fraction, 1.0);
}

TEST(dataset_recommend, n_predict_is_the_smallest_power_of_two_meeting_the_target) {
    // Issue 9: p90 = 316.1 gave 2^round(log2 316.1) = 256, covering 81.5% against a 90% target.
    std::vector<int32_t> v;
    for (int i = 0; i < 815; ++i) v.push_back(100 + i % 150);  // <= 256
    for (int i = 0; i < 185; ++i) v.push_back(300 + i % 200);  // 300 .. 499
    EXPECT_EQ(n_predict_for_coverage(v, 0.90), 512);
    EXPECT_GE(coverage_at(v, n_predict_for_coverage(v, 0.90)), 0.90);
    EXPECT_LT(coverage_at(v, n_predict_for_coverage(v, 0.90) / 2), 0.90) << "and no smaller power of two does";
    EXPECT_EQ(n_predict_for_coverage(v, 0.75), 256);
    // Exactly at the target counts: 9 of 10 samples <= 64 is 90%.
    const std::vector<int32_t> ten{1, 2, 3, 4, 5, 6, 7, 8, 64, 1000};
    EXPECT_EQ(n_predict_for_coverage(ten, 0.90), 64);
    EXPECT_EQ(n_predict_for_coverage(ten, 0.91), 1024);
    EXPECT_EQ(n_predict_for_coverage(ten, 0.90, rounding::multiple_128), 128);
    EXPECT_EQ(n_predict_for_coverage(ten, 0.90, rounding::exact), 64);
    EXPECT_EQ(n_predict_for_coverage(ten, 0.95, rounding::exact), 1000);
    EXPECT_EQ(n_predict_for_coverage(ten, 0.95, rounding::multiple_128), 1024);
    EXPECT_EQ(n_predict_for_coverage(std::vector<int32_t>{0, 0}, 0.5), 1);
    EXPECT_EQ(parse_rounding("128"), rounding::multiple_128);
    try {
        parse_rounding("pow3");
        ADD_FAILURE();
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::usage);
        EXPECT_NE(std::string(e.what()).find("--round"), std::string::npos);
    }
}

TEST(dataset_recommend, no_scenario_claims_a_coverage_it_misses_and_identical_rows_merge) {
    std::vector<int32_t> out;
    for (int i = 0; i < 1000; ++i) out.push_back(static_cast<int32_t>(std::lround(200.0 * std::pow(1.0024, i))));
    const std::vector<int32_t> prompt(1000, 40);
    const auto recs = recommend(compute_length_stats(prompt), prompt, compute_length_stats(out), out);
    ASSERT_EQ(recs.size(), 3u);
    for (const auto & r : recs) EXPECT_GE(r.coverage, r.target_coverage) << r.scenario;
    EXPECT_EQ(recs[0].n_predict, 2048) << "1024 covers only 68%";
    EXPECT_EQ(recs[1].n_predict, 2048);
    EXPECT_EQ(recs[1].same_as, "conservative");
    EXPECT_EQ(recs[2].n_predict, 4096);
    EXPECT_TRUE(recs[2].same_as.empty());
    analysis a;
    a.recommendations = recs;
    const auto notes = merge_notes(a);
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_EQ(notes[0], "Conservative and Recommended come out identical: 2048, the smallest power of two that covers "
                        "75% of outputs, covers ~97% (97.1%), which meets both targets");
}

TEST(dataset_recommend, n_prompt_is_next_power_of_two_at_least_32) {
    EXPECT_EQ(n_prompt_for_percentile(102), 128);
    EXPECT_EQ(n_prompt_for_percentile(128), 128);
    EXPECT_EQ(n_prompt_for_percentile(128.5), 256);
    EXPECT_EQ(n_prompt_for_percentile(3), 32);
}

TEST(dataset_recommend, reference_scenarios_from_known_lengths) {
    // 11 sorted outputs: 75% needs 9 samples (<= 900), 90% needs 10 (<= 2088), 99% all 11 (<= 5000).
    const std::vector<int32_t> out{100, 200, 300, 400, 500, 600, 700, 800, 900, 2088, 5000};
    const std::vector<int32_t> prompt{40, 50, 60, 65, 70, 70, 75, 80, 85, 90, 95};
    const auto os = compute_length_stats(out);
    const auto ps = compute_length_stats(prompt);
    const auto recs = recommend(ps, prompt, os, out);
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_EQ(recs[0].scenario, "conservative");
    EXPECT_EQ(recs[0].n_predict, 1024);
    EXPECT_NEAR(recs[0].coverage, 9.0 / 11, 1e-12);
    EXPECT_EQ(recs[1].scenario, "recommended");
    EXPECT_EQ(recs[1].n_predict, 4096) << "2048 covers 9 of 11 (82%), short of 90%";
    EXPECT_NEAR(recs[1].coverage, 10.0 / 11, 1e-12);
    EXPECT_EQ(recs[2].scenario, "comprehensive");
    EXPECT_EQ(recs[2].n_predict, 8192);
    EXPECT_NEAR(recs[2].coverage, 1.0, 1e-12);
    for (const auto & r : recs) {
        EXPECT_EQ(r.n_prompt, 128);
        EXPECT_DOUBLE_EQ(r.prompt_coverage, 1.0);
    }
}

// The embedded dataset of `evaluate` and `dataset synth`'s defaults honour the reference's stated
// coverages under DESIGN §2.1's rule, each n_predict the smallest power of two that does.
TEST(dataset_synth, default_distribution_keeps_the_reference_recommendations) {
    const auto o = reference_synth_options();
    std::vector<int32_t> out;
    for (size_t i = 0; i < o.records; ++i) {
        out.push_back(length_quantile(o.output_tokens, (static_cast<double>(i) + 0.5) / static_cast<double>(o.records)));
    }
    for (const auto & [n, target] : {std::pair{1024, 0.75}, std::pair{2048, 0.90}, std::pair{4096, 0.99}}) {
        EXPECT_GE(coverage_at(out, n), target) << n;
        EXPECT_LT(coverage_at(out, n / 2), target) << n / 2;
        EXPECT_EQ(n_predict_for_coverage(out, target), n);
    }
}

TEST(dataset_synth, distribution_specs) {
    const auto n = parse_distribution("normal:mean=70,sd=25,min=4", "--prompt-tokens");
    EXPECT_EQ(n.min_tokens, 4);
    EXPECT_EQ(length_quantile(n, 0.5), 70);
    EXPECT_EQ(length_quantile(n, 0.9), 102);  // 70 + 1.2816 * 25
    const auto l = parse_distribution("lognormal:median=900,p90=2088", "--output-tokens");
    EXPECT_EQ(length_quantile(l, 0.5), 900);
    EXPECT_EQ(length_quantile(l, 0.9), 2088);
    EXPECT_EQ(length_quantile(parse_distribution("fixed:128", "x"), 0.3), 128);
    const auto u = parse_distribution("uniform:10,20", "x");
    EXPECT_EQ(length_quantile(u, 0.0001), 10);
    EXPECT_EQ(length_quantile(u, 0.9999), 20);
    for (const char * bad : {"normal:mean=70", "gamma:k=1", "uniform:5", "fixed:x", "lognormal:median=9,p90=3",
                             "normal:mean=1,sd=1,min=5,max=2", "normal:mean=1,sd=1,speed=3", "fixed"}) {
        try {
            parse_distribution(bad, "--output-tokens");
            ADD_FAILURE() << bad;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage);
            EXPECT_NE(std::string(e.what()).find("--output-tokens"), std::string::npos) << e.what();
        }
    }
}

TEST(dataset_analyze, alpaca_token_counts_with_qwen2) {
    const auto a = analyze_fixture("alpaca.jsonl");
    EXPECT_EQ(a.format, "alpaca");
    EXPECT_EQ(a.records, 3u);
    ASSERT_EQ(a.output_lengths.size(), 3u);
    std::vector<llama_token> buf;
    EXPECT_EQ(a.output_lengths[0], count_tokens(qwen2().get(), "Hello world", false, buf));
    EXPECT_EQ(a.output_lengths[0], 2);  // "Hello", " world"
    EXPECT_EQ(a.prompt_lengths[1], count_tokens(qwen2().get(), "Translate to French.\nGood morning", false, buf));
    EXPECT_EQ(a.recommendations.size(), 3u);
    EXPECT_EQ(a.recommendations[1].n_prompt, 32);
    EXPECT_FALSE(a.rationale.empty());
}

TEST(dataset_analyze, gzip_gives_the_same_lengths) {
    const auto plain = analyze_fixture("alpaca.jsonl");
    const auto gz = analyze_fixture("alpaca.jsonl.gz");
    EXPECT_EQ(plain.prompt_lengths, gz.prompt_lengths);
    EXPECT_EQ(plain.output_lengths, gz.output_lengths);
}

TEST(dataset_analyze, sharegpt_each_assistant_turn_is_a_sample) {
    const auto a = analyze_fixture("sharegpt.json");
    EXPECT_EQ(a.records, 3u);
    EXPECT_EQ(a.records_without_output, 1u);
    ASSERT_EQ(a.output_lengths.size(), 3u);
    std::vector<llama_token> buf;
    const auto n = [&](const char * t) { return count_tokens(qwen2().get(), t, false, buf); };
    EXPECT_EQ(a.prompt_lengths[0], n("You are terse.") + n("Hi"));
    EXPECT_EQ(a.output_lengths[0], n("Hello"));
    // the second turn's prompt is everything before it, the first answer included
    EXPECT_EQ(a.prompt_lengths[1], n("You are terse.") + n("Hi") + n("Hello") + n("Bye"));
    EXPECT_EQ(a.output_lengths[1], n("Goodbye"));
}

TEST(dataset_analyze, chat_template_counts_template_tokens) {
    analyze_options o;
    o.chat_template = true;
    o.chat_template_text = qwen2().chat_template();
    if (o.chat_template_text.empty()) GTEST_SKIP() << "this ggml-vocab-qwen2.gguf has no chat template";
    const auto with = analyze_fixture("openai.jsonl", o);
    const auto without = analyze_fixture("openai.jsonl");
    ASSERT_EQ(with.prompt_lengths.size(), 2u);
    EXPECT_GT(with.prompt_lengths[0], without.prompt_lengths[0] + 4);  // <|im_start|>system\n ... markers
    EXPECT_EQ(with.output_lengths, without.output_lengths);
}

TEST(dataset_analyze, too_many_bad_records_name_count_and_lines) {
    try {
        analyze_fixture("broken.jsonl");
        FAIL();
    } catch (const im::error & e) {
        const std::string m = e.what();
        EXPECT_EQ(e.kind(), im::error_kind::runtime);
        EXPECT_NE(m.find("2 of 10 records"), std::string::npos) << m;
        EXPECT_NE(m.find("line 3 (not valid JSON)"), std::string::npos) << m;
        EXPECT_NE(m.find("line 7"), std::string::npos) << m;
        EXPECT_NE(m.find("--max-bad-records"), std::string::npos) << m;
    }
    analyze_options o;
    o.max_bad_fraction = 0.25;
    const auto a = analyze_fixture("broken.jsonl", o);
    EXPECT_EQ(a.bad_records, 2u);
    EXPECT_EQ(a.bad_lines, (std::vector<size_t>{3, 7}));
    EXPECT_EQ(a.records, 8u);
}

TEST(dataset_analyze, empty_file_is_a_clear_error) {
    try {
        analyze_fixture("empty.jsonl");
        FAIL();
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("no records"), std::string::npos) << e.what();
    }
}

TEST(dataset_analyze, json_shape) {
    const auto j = to_json(analyze_fixture("sharegpt.json"));
    EXPECT_EQ(j["schema_version"], 1);
    for (const char * k : {"path", "format", "records", "bad_records"}) EXPECT_TRUE(j["dataset"].contains(k)) << k;
    for (const char * side : {"prompt_tokens", "output_tokens"}) {
        for (const char * k : {"count", "mean", "std", "min", "p50", "p75", "p90", "p95", "p99", "max", "histogram"}) {
            EXPECT_TRUE(j[side].contains(k)) << side << "." << k;
        }
    }
    ASSERT_EQ(j["recommendations"].size(), 3u);
    EXPECT_EQ(j["recommendations"][0]["scenario"], "conservative");
    for (const char * k : {"scenario", "n_prompt", "n_predict", "coverage"}) {
        EXPECT_TRUE(j["recommendations"][2].contains(k)) << k;
    }
    EXPECT_EQ(j["tokenizer"]["n_vocab"], llama_vocab_n_tokens(qwen2().get()));
}

TEST(dataset_synth, round_trip_mean_within_one_percent) {
    auto o = reference_synth_options();
    o.records = 300;
    o.out = im::test::temp_dir("synth-rt") / "ref.jsonl";
    const auto r = synthesize(o, qwen2().get());
    EXPECT_EQ(r.texts_off, 0u);
    analyze_options ao;
    ao.path = o.out;
    const auto a = analyze(ao, qwen2().get());
    ASSERT_EQ(a.records, 300u);
    EXPECT_NEAR(a.prompt_tokens.mean, r.mean_prompt_tokens, 0.01 * r.mean_prompt_tokens);
    EXPECT_NEAR(a.output_tokens.mean, r.mean_output_tokens, 0.01 * r.mean_output_tokens);
    EXPECT_NEAR(a.prompt_tokens.mean, 70.0, 0.05 * 70);
    // Lengths at evenly spaced quantiles: the file's percentiles are the distribution's.
    EXPECT_NEAR(a.output_tokens.p90, 1280, 0.02 * 1280);
    ASSERT_EQ(a.recommendations.size(), 3u);
    EXPECT_EQ(a.recommendations[0].n_predict, 1024);
    EXPECT_EQ(a.recommendations[1].n_predict, 2048);
    EXPECT_EQ(a.recommendations[2].n_predict, 4096);
    for (const auto & r : a.recommendations) EXPECT_GE(r.coverage, r.target_coverage) << r.scenario;
    EXPECT_EQ(a.recommendations[1].n_prompt, 128);
}

TEST(dataset_synth, same_seed_same_file) {
    auto o = reference_synth_options();
    o.records = 20;
    o.prompt_tokens = parse_distribution("fixed:16", "x");
    o.output_tokens = parse_distribution("uniform:1,50", "x");
    const auto dir = im::test::temp_dir("synth-seed");
    o.out = dir / "a.jsonl";
    o.n_threads = 1;
    synthesize(o, qwen2().get());
    o.out = dir / "b.jsonl";
    o.n_threads = 2;
    synthesize(o, qwen2().get());
    std::ifstream fa(dir / "a.jsonl"), fb(dir / "b.jsonl");
    const std::string a((std::istreambuf_iterator<char>(fa)), {}), b((std::istreambuf_iterator<char>(fb)), {});
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, b);
}
