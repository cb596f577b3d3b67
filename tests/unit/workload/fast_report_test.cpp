#include "predict/step_model.h"
#include "report/measurements.h"
#include "workload/fast.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace im;

namespace {

// t(W, d) = a + b·W + c·W·d; from W = 11 on the per-sequence cost is 30% higher; `slow16` makes W = 16 run
// 20% above that (a W the fit across W misses).
double step_s(int w, double d, bool slow16) {
    const double k = w == 16 && slow16 ? 1.56 : w >= 11 ? 1.3 : 1.0;
    return 1e-3 + k * (2e-4 * w + 2e-8 * w * d);
}

// A fast_result as run_fast assembles it, from scripted probes instead of llama.cpp (p = 128, n = 4096).
workload::fast_result scripted_fast(const std::vector<int> & sweep, bool slow16) {
    const int p = 128, n = 4096;
    const double mid = p + (n - 1) / 2;
    workload::fast_result f;
    for (int w : sweep) {
        for (double d : {128.0, mid, 4223.0}) f.probes.steps.push_back({w, d, step_s(w, d, slow16)});
    }
    f.probes.depths = {128, static_cast<int>(mid), 4223};
    f.probes.switches = predict::locate_switches(f.probes.steps, {}, 0.05, mid, [&](int w) {
        return std::optional<predict::probed_step>{{{w, mid, step_s(w, mid, slow16)}, 0.01}};
    });
    for (const auto & sw : f.probes.switches.switches) {
        for (const auto & pr : sw.probes) f.probes.steps.push_back(pr.probe.sample);
    }
    f.steps = f.probes.switches.fit;
    f.changes = predict::regime_changes(f.steps, p + n / 2.0);
    const std::vector<predict::prefill_sample> pre{{128, 0.01}, {256, 0.02}};
    f.prefill = predict::fit_prefill(pre);
    f.probes.prefills = pre;
    f.probes.prefill_workers = {1, 2};
    for (int w : sweep) {
        workload::lockstep_row row;
        row.workers = w;
        row.n_prompt = p;
        row.n_predict = n;
        row.predicted = true;
        row.prediction = predict::predict_row(f.steps, f.prefill, w, p, n);
        row.overall_tps.mean = row.prediction.overall_tps.value;
        workload::annotate_prediction(f, row);
        f.sweep.rows.push_back(row);
    }
    f.sweep.base_workers = sweep.front();
    return f;
}

bool has(const std::string & text, const std::string & what) { return text.find(what) != std::string::npos; }

}  // namespace

// The example, scripted: the sweep brackets the switch between 8 and 16, three probes locate it
// between 10 and 11; the fit output says so and the rows beside it carry a note.
TEST(fast_report, a_located_switch_is_named_and_its_neighbours_say_so) {
    const auto f = scripted_fast({1, 2, 4, 8, 16, 32}, false);
    const auto lines = workload::switch_sentences(f);
    ASSERT_EQ(lines.size(), 1u);
    const double jump = step_s(11, 2176, false) / (1e-3 + 2e-4 * 11 + 2e-8 * 11 * 2176) - 1;
    EXPECT_TRUE(has(lines[0], "Kernel switch between W = 10 and W = 11 (located by 3 of at most 3 probes between W = 8 and "
                              "16 at depth 2175: W = 12, 10, 11): the per-sequence step cost jumps " +
                                  fmt::format("{:+.1f}%", 100 * jump) + " against the W <= 10 trend"))
        << lines[0];
    const auto md = workload::fast_markdown(f);
    EXPECT_TRUE(has(md, "3 of the step probes (W = 12,10,11) located kernel switches")) << md;
    EXPECT_TRUE(has(md, lines[0])) << md;
    EXPECT_TRUE(has(md, "| 1-10 |")) << md;
    EXPECT_TRUE(has(md, "| 11-32 |")) << md;

    for (const auto & r : f.sweep.rows) {
        EXPECT_FALSE(r.steps_probed) << r.workers;
        if (r.workers == 8 || r.workers == 16) {
            EXPECT_EQ(r.prediction_note, "next to the kernel switch between W = 10 and W = 11") << r.workers;
        } else {
            EXPECT_EQ(r.prediction_note, "") << r.workers;
        }
    }
    workload::lockstep_config cfg;
    cfg.n_prompt = 128;
    cfg.n_predict = 4096;
    const auto table = report::parallel_markdown(f.sweep, cfg, 28672);
    EXPECT_TRUE(has(table, "| 8~† |")) << table;
    EXPECT_TRUE(has(table, "| 4~ |")) << table;
    EXPECT_TRUE(has(table, "† W = 16: next to the kernel switch between W = 10 and W = 11.")) << table;
}

// W = 16 runs a step the fit across W misses once the probes pinned the W >= 11 trend: its row is probed,
// not predicted, and the report says so.
TEST(fast_report, a_w_the_fit_misses_is_reported_as_probed) {
    const auto f = scripted_fast({1, 2, 4, 8, 16, 32, 64}, true);
    const auto * row16 = workload::predicted_row(f, 16);
    ASSERT_NE(row16, nullptr);
    EXPECT_TRUE(row16->steps_probed);
    EXPECT_TRUE(has(row16->prediction_note, "probed, not predicted")) << row16->prediction_note;
    // its T_TG is its own probes' a' + c·W·d: the true sum within the fit's rounding
    double truth = 0;
    for (int i = 0; i < 4096; ++i) truth += step_s(16, 128 + i, true);
    EXPECT_NEAR(row16->prediction.t_tg_s.value, truth, 1e-6 * truth);
    bool said = false;
    for (const auto & l : workload::switch_sentences(f)) said = said || has(l, "W = 16 is probed, not predicted");
    EXPECT_TRUE(said);
}

// A smooth engine: no switch, no note, no sentence.
TEST(fast_report, smooth_steps_add_nothing) {
    workload::fast_result f = scripted_fast({1, 2, 4, 8}, false);
    EXPECT_TRUE(workload::switch_sentences(f).empty());
    EXPECT_EQ(f.probes.switches.n_probes, 0);
    for (const auto & r : f.sweep.rows) EXPECT_EQ(r.prediction_note, "");
}
