#include "core/error.h"
#include "tune/search.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

using namespace im::tune;

namespace {

// A scripted engine (issue 11: "the deterministic fake engine"): a score per candidate from a table of
// per-axis factors, a clock that advances 10 s per measurement, and one value that changes the tokens.
struct fake {
    std::map<std::string, std::map<std::string, double>> factor;
    std::string changes_tokens;  // "axis=value"
    double t = 0;
    int measured = 0;
    std::vector<double> noise;  // multiplies successive measurements when set (cycled)

    evaluator make() {
        evaluator ev;
        ev.elapsed_s = [this] { return t; };
        ev.measure = [this](const candidate & c) {
            t += 10;
            double s = 100;
            for (const auto & [k, v] : c) s *= factor[k].count(v) ? factor[k][v] : 1.0;
            if (!noise.empty()) s *= noise[static_cast<size_t>(measured) % noise.size()];
            ++measured;
            return s;
        };
        ev.same_outputs = [this](const candidate & c) {
            for (const auto & [k, v] : c) {
                if (k + "=" + v == changes_tokens) return output_check{false, 1, 1, 0, 0, "other greedy tokens"};
            }
            return output_check{true, 1, 0, 0, 0, "identical tokens"};
        };
        return ev;
    }
};

const std::vector<axis> k_axes{{"-fa", {"auto", "on", "off"}}, {"-ub", {"512", "128", "2048"}},
                               {"--kv-unified", {"0", "1"}, true}, {"-ctk", {"f16", "q8_0"}}};

fake standard() {
    fake f;
    f.factor["-fa"] = {{"on", 1.5}, {"off", 0.5}};
    f.factor["-ub"] = {{"128", 0.9}, {"2048", 1.1}};
    f.factor["--kv-unified"] = {{"1", 0.25}};
    f.factor["-ctk"] = {{"q8_0", 2.0}};  // faster, but changes the tokens
    f.changes_tokens = "-ctk=q8_0";
    return f;
}

}  // namespace

TEST(tune_search, finds_the_known_optimum_and_rejects_a_result_changing_setting) {
    auto f = standard();
    search_options o;
    o.budget_s = 1e6;
    const auto r = coordinate_descent(k_axes, f.make(), o);
    EXPECT_EQ(r.best.at("-fa"), "on");
    EXPECT_EQ(r.best.at("-ub"), "2048");
    EXPECT_EQ(r.best.at("--kv-unified"), "0");
    EXPECT_EQ(r.best.at("-ctk"), "f16") << "q8_0 is faster but changes the greedy tokens";
    EXPECT_TRUE(r.confirmed);
    EXPECT_NEAR(r.confirmed_gain, 1.5 * 1.1 - 1, 1e-9);
    EXPECT_NEAR(r.best_score, 165, 1e-9);
    bool saw_rejection = false;
    for (const auto & t : r.trials) {
        if (t.changed == "-ctk=q8_0") {
            EXPECT_TRUE(t.rejected);
            EXPECT_EQ(t.score, 0);
            saw_rejection = true;
        }
    }
    EXPECT_TRUE(saw_rejection);
    // The costliest measured setting: the unified KV cache (a quarter of the throughput).
    ASSERT_NE(r.costliest(), nullptr);
    EXPECT_EQ(r.costliest()->changed, "--kv-unified=1");
    EXPECT_FALSE(r.budget_exhausted);
    EXPECT_EQ(r.passes, 2);  // the second pass changes nothing
    // Each candidate measured once: 1 baseline + 2 + 2 + 1 (+ -ctk rejected, not measured) in pass 1, then
    // pass 2 revisits only new combinations; plus 2 x 3 confirmation runs.
    std::map<candidate, int> seen;
    for (const auto & t : r.trials) EXPECT_EQ(++seen[t.settings], 1);
    EXPECT_EQ(command_flags(k_axes, r.best, r.baseline, true), "-fa on -ub 2048");
    EXPECT_EQ(command_flags(k_axes, r.best, r.baseline, false), "-fa on -ub 2048 -ctk f16");
}

TEST(tune_search, the_budget_stops_the_search_and_the_best_so_far_stands) {
    auto f = standard();
    search_options o;
    o.budget_s = 25;  // the baseline and two candidates (10 s each)
    const auto r = coordinate_descent(k_axes, f.make(), o);
    EXPECT_TRUE(r.budget_exhausted);
    EXPECT_EQ(r.trials.size(), 3u);
    EXPECT_EQ(r.best.at("-fa"), "on");
    EXPECT_EQ(r.best.at("-ub"), "512");  // never reached
}

TEST(tune_search, a_gain_that_does_not_survive_confirmation_is_dropped) {
    fake f;
    f.factor["-fa"] = {{"on", 1.02}};
    // The search's one measurement of -fa on is lucky; the alternating confirmation is not.
    std::vector<axis> axes{{"-fa", {"auto", "on"}}};
    search_options o;
    o.budget_s = 1e6;
    auto ev = f.make();
    int calls = 0;
    const auto inner = ev.measure;
    ev.measure = [&](const candidate & c) {
        ++calls;
        const double s = inner(c).score;
        // Calls 3.. are the confirmation (baseline, best alternating): the best reads 5% low there.
        return calls >= 3 && c.at("-fa") == "on" ? s * 0.95 : s;
    };
    const auto r = coordinate_descent(axes, ev, o);
    EXPECT_FALSE(r.confirmed);
    EXPECT_EQ(r.best, r.baseline);
    EXPECT_EQ(r.confirm_best.size(), 3u);
    EXPECT_LT(r.confirmed_gain, 0);
}

TEST(tune_search, a_baseline_that_cannot_run_is_an_error_and_a_failing_candidate_is_reported) {
    fake f;
    auto ev = f.make();
    ev.measure = [](const candidate & c) -> double {
        if (c.at("-ub") == "128") throw im::error(im::error_kind::runtime, "llama_decode failed");
        return 100;
    };
    search_options o;
    const auto r = coordinate_descent({{"-ub", {"512", "128"}}}, ev, o);
    ASSERT_EQ(r.trials.size(), 2u);
    EXPECT_EQ(r.trials[1].failed, "llama_decode failed");
    EXPECT_EQ(r.best, r.baseline);
    ev.measure = [](const candidate &) -> double { throw im::error(im::error_kind::runtime, "no memory"); };
    EXPECT_THROW(coordinate_descent({{"-ub", {"512", "128"}}}, ev, o), im::error);
}

namespace {

// Two rows of 6 logits each; the baseline's argmax is token 0 in both.
greedy_trace trace(std::vector<float> logits) {
    greedy_trace t;
    t.n_vocab = 6;
    t.logits = std::move(logits);
    for (size_t r = 0; r * 6 < t.logits.size(); ++r) {
        const auto b = t.logits.begin() + static_cast<std::ptrdiff_t>(r * 6);
        t.tokens.push_back(static_cast<int32_t>(std::max_element(b, b + 6) - b));
    }
    return t;
}

}  // namespace

// The output check: identical runs pass; rounding noise that flips a near tie passes and says so; a flip
// where the baseline's choice was clear, or logits moved far beyond rounding, is rejected.
TEST(tune_search, greedy_check_tells_near_ties_from_changed_results) {
    const auto base = trace({5.0f, 4.999f, 1, 0, -1, -2, 6, 2, 1, 0, -1, -3});
    const auto same = compare_greedy(base, base);
    EXPECT_TRUE(same.same);
    EXPECT_EQ(same.n_flips, 0);
    EXPECT_NE(same.detail.find("identical tokens"), std::string::npos) << same.detail;

    // Row 0: token 1 overtakes token 0 by 0.002 with every logit nudged by ~0.002: a near tie.
    const auto tie = compare_greedy(base, trace({4.998f, 5.0f, 1.002f, 0.002f, -0.998f, -1.998f, 6.001f, 2, 1, 0, -1, -3}));
    EXPECT_TRUE(tie.same) << tie.detail;
    EXPECT_EQ(tie.n_flips, 1);
    EXPECT_EQ(tie.n_near_ties, 1);
    EXPECT_NE(tie.detail.find("1 of 2 tokens flipped at near ties"), std::string::npos) << tie.detail;

    // Row 1: token 1 wins where the baseline led by 4 with small noise elsewhere: a changed result.
    const auto flip = compare_greedy(base, trace({5.0f, 4.999f, 1, 0, -1, -2, 6, 6.5f, 1, 0, -1, -3}));
    EXPECT_FALSE(flip.same);
    EXPECT_NE(flip.detail.find("where the baseline's choice was clear (row 1"), std::string::npos) << flip.detail;

    // Same tokens, but every logit moved by ~10% of the row's spread: not rounding.
    auto moved = base.logits;
    for (size_t i = 0; i < moved.size(); ++i) moved[i] += (i % 2 ? 0.25f : -0.25f);
    moved[1] = 4.5f;  // keep row 0's argmax
    const auto far = compare_greedy(base, trace(moved));
    EXPECT_EQ(far.n_flips, 0);
    EXPECT_FALSE(far.same);
    EXPECT_NE(far.detail.find("not rounding"), std::string::npos) << far.detail;
    EXPECT_THROW(compare_greedy(base, trace({1, 2, 3, 4, 5, 6})), std::exception);
}

// The Pareto front across worker counts: a point survives when nothing has both more aggregate t/s and
// less time per token per stream; rejected and failed trials are never points.
TEST(tune_search, pareto_front_keeps_the_undominated_points) {
    search_result w1, w8, w64;
    w1.trials = {{{{"-fa", "on"}}, "", 100, false, "", ""},    // 10 ms/token
                 {{{"-fa", "off"}}, "-fa=off", 90, false, "", ""}};  // dominated by fa on
    w8.trials = {{{{"-fa", "on"}}, "", 400, false, "", ""},    // 20 ms/token
                 {{{"-fa", "off"}}, "-fa=off", 0, true, "other greedy tokens", ""}};
    w64.trials = {{{{"-fa", "on"}}, "", 1600, false, "", ""},  // 40 ms/token
                  {{{"-fa", "off"}}, "-fa=off", 320, false, "", ""}};  // 200 ms/token, less throughput: dominated
    const auto f = pareto_front({{1, &w1}, {8, &w8}, {64, &w64}});
    ASSERT_EQ(f.size(), 3u);
    EXPECT_EQ(f[0].workers, 1);
    EXPECT_DOUBLE_EQ(f[0].ms_per_token, 10);
    EXPECT_EQ(f[1].workers, 8);
    EXPECT_DOUBLE_EQ(f[1].aggregate_tps, 400);
    EXPECT_EQ(f[2].workers, 64);
    EXPECT_EQ(f[2].settings.at("-fa"), "on");
    EXPECT_DOUBLE_EQ(f[2].ms_per_token, 40);
}
