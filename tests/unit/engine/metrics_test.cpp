#include "engine/http/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace im::engine::http;

TEST(prometheus_text, llama_server_metrics) {
    // as llama-server --metrics writes it (names with colons, HELP/TYPE comments)
    const auto r = parse_metrics(
        "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
        "# TYPE llamacpp:prompt_tokens_total counter\n"
        "llamacpp:prompt_tokens_total 1024\n"
        "# HELP llamacpp:tokens_predicted_total Number of generation tokens processed.\n"
        "# TYPE llamacpp:tokens_predicted_total counter\n"
        "llamacpp:tokens_predicted_total 4096\n"
        "# TYPE llamacpp:predicted_tokens_seconds gauge\n"
        "llamacpp:predicted_tokens_seconds 85.625\n"
        "llamacpp:requests_processing 0\n");
    EXPECT_EQ(r.bad_lines, 0u);
    ASSERT_EQ(r.samples.size(), 4u);
    EXPECT_DOUBLE_EQ(r.samples.at("llamacpp:prompt_tokens_total"), 1024);
    EXPECT_DOUBLE_EQ(r.samples.at("llamacpp:tokens_predicted_total"), 4096);
    EXPECT_DOUBLE_EQ(r.samples.at("llamacpp:predicted_tokens_seconds"), 85.625);
    EXPECT_EQ(r.types.at("llamacpp:prompt_tokens_total"), "counter");
    EXPECT_EQ(r.types.at("llamacpp:predicted_tokens_seconds"), "gauge");
}

TEST(prometheus_text, labels_are_sorted_and_escaped) {
    const auto r = parse_metrics(
        "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3\n"
        "vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 17 1700000000000\n"
        "weird{ b = \"x\\\"y\\\\z\\n\" , a=\"1\", } 2.5e3\r\n"
        "empty{} 1\n");
    EXPECT_EQ(r.bad_lines, 0u);
    EXPECT_DOUBLE_EQ(r.samples.at("vllm:num_requests_running{engine=\"0\",model_name=\"m\"}"), 3);
    EXPECT_DOUBLE_EQ(r.samples.at("vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"}"), 17);
    EXPECT_DOUBLE_EQ(r.samples.at("weird{a=\"1\",b=\"x\\\"y\\\\z\\n\"}"), 2500);
    EXPECT_DOUBLE_EQ(r.samples.at("empty"), 1);
}

TEST(prometheus_text, special_values) {
    const auto r = parse_metrics("a NaN\nb +Inf\nc -Inf\nd -0.5\ne 1e-3\n");
    EXPECT_EQ(r.bad_lines, 0u);
    EXPECT_TRUE(std::isnan(r.samples.at("a")));
    EXPECT_TRUE(std::isinf(r.samples.at("b")) && r.samples.at("b") > 0);
    EXPECT_TRUE(std::isinf(r.samples.at("c")) && r.samples.at("c") < 0);
    EXPECT_DOUBLE_EQ(r.samples.at("d"), -0.5);
    EXPECT_DOUBLE_EQ(r.samples.at("e"), 0.001);
}

TEST(prometheus_text, bad_lines_are_counted_not_fatal) {
    const auto r = parse_metrics(
        "good 1\n"
        "9bad 1\n"             // name starts with a digit
        "novalue\n"            // no value
        "x{a=\"unterminated} 1\n"
        "y{a=1} 2\n"           // unquoted label value
        "z 12abc\n"            // not a number
        "w 1 notatime\n"       // junk after the value
        "\n   \n# just a comment\n"
        "last 2");             // no final newline
    EXPECT_EQ(r.bad_lines, 6u);
    EXPECT_EQ(r.samples.size(), 2u);
    EXPECT_DOUBLE_EQ(r.samples.at("last"), 2);
}

TEST(prometheus_text, diff_before_after) {
    metric_samples before{{"tokens_total", 100}, {"running", 4}, {"gone", 1}};
    metric_samples after{{"tokens_total", 350}, {"running", 1}, {"new_total", 7}};
    const auto d = diff_metrics(before, after);
    EXPECT_DOUBLE_EQ(d.at("tokens_total"), 250);
    EXPECT_DOUBLE_EQ(d.at("running"), -3);
    EXPECT_DOUBLE_EQ(d.at("new_total"), 7);
    EXPECT_EQ(d.count("gone"), 0u);
}
