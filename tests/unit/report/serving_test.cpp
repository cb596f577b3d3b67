#include "engine/fake.h"
#include "report/requests.h"
#include "report/serving.h"
#include "workload/requests.h"

#include <gtest/gtest.h>

using namespace im;

namespace {

// A closed-loop level on the fake engine: step = 10 ms + 1 ms per decoding sequence, so TPOT ≈ 10 + C ms.
workload::request_run level(int c) {
    engine::fake_config fc;
    fc.slots.n_slots = c;
    fc.slots.n_ctx_seq = 4096;
    fc.step_base_ns = 10'000'000;
    fc.per_decode_ns = 1'000'000;
    fc.per_prompt_token_ns = 0;
    fc.sample_ns = 500'000;
    engine::fake_engine eng(fc);
    workload::request_workload w;
    w.concurrency = c;
    w.n_requests = 4 * c;
    w.objectives = workload::parse_slo("ttft=1s,tpot=14.5ms");
    return workload::run_requests(eng, w, [](uint64_t) {
        engine::request r;
        r.prompt_tokens.assign(8, 1);
        r.n_prompt = 8;
        r.n_predict = 20;
        return r;
    });
}

}  // namespace

// The SLO-driven Interactive choice is the highest concurrency whose p99 TPOT meets the objective:
// with 0.5 ms of sampling per sequence, TPOT = 10 + 1.5·C ms: C = 2 (13 ms) meets 14.5 ms, C = 4 (16 ms) does not.
TEST(serving_report, interactive_choice_is_slo_driven_and_sentences_match_numbers) {
    report::serving_result s;
    s.objectives = workload::parse_slo("ttft=1s,tpot=14.5ms");
    for (int c : {1, 2, 4}) s.levels.push_back(level(c));
    EXPECT_TRUE(s.levels[1].metrics.slo_met);
    EXPECT_FALSE(s.levels[2].metrics.slo_met);
    const auto choice = report::interactive_choice(s);
    ASSERT_TRUE(choice.found);
    EXPECT_EQ(choice.concurrency, 2);
    EXPECT_NE(choice.sentence.find("2 concurrent requests meet p99 TTFT <= 1000 ms, p99 TPOT <= 14.5 ms"), std::string::npos)
        << choice.sentence;
    const auto md = report::serving_markdown(s);
    EXPECT_NE(md.find("| C=4 | 16 / 0 |"), std::string::npos) << md;
    EXPECT_NE(md.find("missed"), std::string::npos);
    const auto html = report::serving_html(s);
    EXPECT_EQ(std::count(html.begin(), html.end(), '<') > 0, true);
    size_t charts = 0;
    for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++charts;
    EXPECT_EQ(charts, 3u);
    // No load meets an impossible objective: the closest point is named.
    s.objectives = workload::parse_slo("ttft=1ms,tpot=1ms");
    for (auto & l : s.levels) l.metrics.slo_met = false;
    const auto none = report::interactive_choice(s);
    EXPECT_FALSE(none.found);
    EXPECT_NE(none.sentence.find("the closest, C=1"), std::string::npos) << none.sentence;
}

TEST(serving_report, table_has_one_row_per_run_with_samples) {
    std::vector<workload::request_run> runs{level(1), level(2)};
    const auto t = report::requests_table("continuous", runs, report::run_context{}, nullptr);
    ASSERT_EQ(t.rows.size(), 2u);
    EXPECT_EQ(std::get<int64_t>(t.get(1, "concurrency")), 2);
    EXPECT_EQ(std::get<std::vector<double>>(t.get(1, "samples_ttft_ms")).size(), 8u);
    EXPECT_GT(std::get<double>(t.get(0, "sample_share")), 0.0);
}

// The sampling-cost sentence states a cost only when CPU sampling is measurably slower (>= 2%); a run
// where sampling came out faster (the machine's spread) must not print a negative cost.
TEST(serving_report, sampling_cost_sentence_never_states_a_negative_cost) {
    report::serving_result s;
    s.compare_workers = 4;
    s.compare_n_prompt = 128;
    s.compare_n_predict = 32;
    s.lockstep_gen_tps = 17.2;
    s.no_sample = level(4);
    s.cpu_sampling = level(4);
    s.no_sample->metrics.decode_tps = 17.0;
    s.cpu_sampling->metrics.decode_tps = 18.0;  // faster: noise, not a gain from sampling
    auto md = report::serving_markdown(s);
    EXPECT_EQ(md.find("costs -"), std::string::npos) << md;
    EXPECT_NE(md.find("costs no measurable share of the generation rate at 4 sequences"), std::string::npos) << md;
    EXPECT_NE(md.find("differ by +5.9%"), std::string::npos) << md;
    s.cpu_sampling->metrics.decode_tps = 8.5;  // half the rate: a real cost
    md = report::serving_markdown(s);
    EXPECT_NE(md.find("Sampling on the CPU costs 50.0% of the generation rate at 4 sequences"), std::string::npos) << md;
    EXPECT_NE(md.find("overstate"), std::string::npos);
}
