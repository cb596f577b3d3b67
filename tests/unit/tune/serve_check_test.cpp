#include "core/error.h"
#include "tune/serve.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace im::tune;

namespace {

// A recorded answer: pieces with the baseline's top-2 probabilities.
reference_answer answer(const std::vector<std::tuple<std::string, double, double>> & toks) {
    reference_answer a;
    for (const auto & [piece, p1, p2] : toks) a.push_back({piece, p1, p2});
    return a;
}

// " The cat sat on the mat": a confident start, a near tie at " sat" (0.41 / 0.40), confident after.
const reference_answer k_ref = answer({{" The", 0.90, 0.02},
                                       {" cat", 0.70, 0.10},
                                       {" sat", 0.41, 0.40},
                                       {" on", 0.95, 0.01},
                                       {" the", 0.88, 0.05},
                                       {" mat", 0.60, 0.20}});

}  // namespace

TEST(tune_serve_check, identical_text_does_not_diverge) {
    const auto d = first_divergence(k_ref, " The cat sat on the mat", 0.03);
    EXPECT_FALSE(d.diverged);
    EXPECT_EQ(d.token, -1);
}

TEST(tune_serve_check, first_divergence_index_and_near_tie) {
    // " sat" -> " lay": the baseline's top-2 there differ by 0.01 < 0.03: a tie (the rest is not compared).
    const auto d = first_divergence(k_ref, " The cat lay down quietly", 0.03);
    EXPECT_TRUE(d.diverged);
    EXPECT_EQ(d.byte, 9u);  // " The cat " is 9 bytes, then 's' against 'l'
    EXPECT_EQ(d.token, 2);
    EXPECT_TRUE(d.near_tie);
    EXPECT_NEAR(d.gap, 0.01, 1e-12);
}

TEST(tune_serve_check, clear_change_is_rejected) {
    // " cat" -> " dog": 0.70 against 0.10 — the baseline's choice was clear.
    const auto d = first_divergence(k_ref, " The dog sat on the mat", 0.03);
    EXPECT_TRUE(d.diverged);
    EXPECT_EQ(d.token, 1);
    EXPECT_FALSE(d.near_tie);
    EXPECT_NEAR(d.gap, 0.60, 1e-12);
    const auto c = compare_answers({k_ref, k_ref}, {" The cat sat on the mat", " The dog sat on the mat"}, 0.03);
    EXPECT_FALSE(c.same);
    EXPECT_EQ(c.n_rows, 2);
    EXPECT_EQ(c.n_flips, 1);
    EXPECT_EQ(c.n_near_ties, 0);
    EXPECT_NE(c.detail.find("answer 2, token 2"), std::string::npos) << c.detail;
}

TEST(tune_serve_check, a_longer_token_before_a_boundary_is_judged_there_too) {
    // The candidate took " sate" where the baseline took " sat" then " on": the first differing byte
    // starts the reference's " on", but the divergence is at " sat" (a near tie): accepted.
    const auto d = first_divergence(k_ref, " The cat sate on the mat", 0.03);
    EXPECT_TRUE(d.diverged);
    EXPECT_EQ(d.token, 2);
    EXPECT_TRUE(d.near_tie);
    // Without a tie on either side of the boundary it stays a clear change.
    const auto r2 = answer({{"ab", 0.9, 0.05}, {"cd", 0.9, 0.05}});
    const auto d2 = first_divergence(r2, "abxd", 0.03);
    EXPECT_EQ(d2.token, 1);
    EXPECT_FALSE(d2.near_tie);
}

TEST(tune_serve_check, text_past_or_short_of_the_reference_diverges_where_it_ends) {
    const auto longer = first_divergence(k_ref, " The cat sat on the mat today", 0.03);
    EXPECT_TRUE(longer.diverged);
    EXPECT_EQ(longer.token, 5);  // judged at the last token
    EXPECT_FALSE(longer.near_tie);
    const auto shorter = first_divergence(k_ref, " The cat sat", 0.03);
    EXPECT_TRUE(shorter.diverged);
    EXPECT_EQ(shorter.byte, 12u);
}

TEST(tune_serve_check, all_ties_accepted_and_counted) {
    const auto c = compare_answers({k_ref, k_ref, k_ref}, {" The cat sat on the mat", " The cat lay", " The cat sat on the mat"}, 0.03);
    EXPECT_TRUE(c.same);
    EXPECT_EQ(c.n_flips, 1);
    EXPECT_EQ(c.n_near_ties, 1);
    EXPECT_NE(c.detail.find("all at near ties"), std::string::npos) << c.detail;
    EXPECT_NEAR(near_tie_share({k_ref}, 0.03), 1.0 / 6, 1e-12);
}

// A random-weight model's answer: every top-2 gap is ~1e-7 (151,936 tokens, near-flat): every divergence
// is a tie, and the share of near ties says so.
TEST(tune_serve_check, flat_distributions_are_decided_by_the_tie_rule) {
    const auto flat = answer({{" stern", 1.3e-5, 1.29e-5}, {" stern", 1.3e-5, 1.28e-5}, {" x", 1.2e-5, 1.19e-5}});
    EXPECT_DOUBLE_EQ(near_tie_share({flat}, 0.03), 1.0);
    const auto c = compare_answers({flat}, {" stern stern y"}, 0.03);
    EXPECT_TRUE(c.same);
    EXPECT_EQ(c.n_near_ties, 1);
}

TEST(tune_serve_check, parses_llama_server_n_probs) {
    // The shape of the pinned llama-server's /completion answer with "n_probs": 2 (not streamed).
    const std::string body = R"({"content":" stern stern","completion_probabilities":[
        {"id":57544,"token":" stern","bytes":[32,115,116,101,114,110],"logprob":-1.0,
         "top_logprobs":[{"id":57544,"token":" stern","bytes":[32,115,116,101,114,110],"logprob":-1.0},
                         {"id":11,"token":",","bytes":[44],"logprob":-2.0}]},
        {"id":57544,"token":" stern","bytes":[32,115,116,101,114,110],"logprob":-0.5,
         "top_logprobs":[{"id":12,"token":"x","bytes":[120],"logprob":-3.0},
                         {"id":57544,"token":" stern","bytes":[32,115,116,101,114,110],"logprob":-0.5}]}]})";
    const auto a = parse_reference(body);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].piece, " stern");
    EXPECT_NEAR(a[0].p1, std::exp(-1.0), 1e-12);
    EXPECT_NEAR(a[0].p2, std::exp(-2.0), 1e-12);
    EXPECT_NEAR(a[1].p1, std::exp(-0.5), 1e-12);  // sorted: the larger first
    EXPECT_THROW(parse_reference(R"({"content":"x"})"), im::error);
}

// The serve workload's axes go through the same coordinate descent: with a scripted scorer every axis
// is tried, the known optimum is found, and the server's command line carries it.
TEST(tune_serve_check, serve_axes_are_searched_by_the_same_driver) {
    serve_config c;
    c.model_path = "/m.gguf";
    c.concurrency = 4;
    c.n_prompt = 16;
    c.n_predict = 16;
    c.fixed_args = {"-ngl", "99"};
    const auto axes = serve_axes(c);
    std::vector<std::string> names;
    for (const auto & a : axes) names.push_back(a.name);
    for (const char * n : {"--backend-sampling", "-fa", "--kv-unified", "-ub", "-b", "-t", "--threads-http"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    }
    double t = 0;
    std::map<std::string, int> tried;  // axis -> non-baseline values measured or checked
    evaluator ev;
    ev.check_baseline = true;
    ev.elapsed_s = [&] { return t; };
    ev.same_outputs = [&](const candidate & cand) {
        // -fa off changes the text where the baseline was sure.
        return cand.at("-fa") == "off" ? output_check{false, 4, 1, 0, 0, "other text"} : output_check{true, 4, 0, 0, 0, "identical"};
    };
    ev.measure = [&](const candidate & cand) {
        t += 5;
        double s = 100;
        if (cand.at("--backend-sampling") == "1") s *= 2;
        if (cand.at("--kv-unified") == "1") s *= 0.5;
        if (cand.at("-fa") == "off") s *= 3;
        measurement m(s);
        m.ttft_p50_ms = 50;
        m.tpot_p50_ms = 400 / s;
        return m;
    };
    search_options o;
    o.budget_s = 1e6;
    const auto r = coordinate_descent(axes, ev, o);
    for (const auto & tr : r.trials) {
        for (const auto & a : axes) {
            if (tr.settings.at(a.name) != r.baseline.at(a.name)) ++tried[a.name];
        }
    }
    for (const auto & a : axes) EXPECT_GE(tried[a.name], 1) << a.name << " was never tried";
    EXPECT_EQ(r.best.at("--backend-sampling"), "1");
    EXPECT_EQ(r.best.at("-fa"), "auto") << "-fa off is faster but changes the text";
    EXPECT_TRUE(r.confirmed);
    EXPECT_NEAR(r.trials.front().tpot_p50_ms, 4, 1e-12);
    const auto front = pareto_front({{4, &r}});
    ASSERT_FALSE(front.empty());
    EXPECT_NEAR(front.front().ms_per_token, 2, 1e-12) << "the measured TPOT, not 1000 x C / t/s";
    EXPECT_NEAR(front.front().ttft_p50_ms, 50, 1e-12);
    const auto cmd = server_command(c, axes, r.best);
    EXPECT_EQ(cmd.rfind("llama-server -m /m.gguf -np 4 -c ", 0), 0u) << cmd;
    EXPECT_NE(cmd.find("-ngl 99 --backend-sampling -fa auto"), std::string::npos) << cmd;
    EXPECT_EQ(cmd.find("--kv-unified"), std::string::npos) << cmd;
}
