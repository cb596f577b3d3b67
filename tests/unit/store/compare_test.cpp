#include "store/compare.h"

#include "core/error.h"
#include "support/run.h"
#include "unit/store/fixtures.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

using namespace im;
namespace fx = im::test::store_fixtures;

namespace {

store::run_data side(const std::string & label, report::table bench, report::table parallel = store::result_shape("parallel")) {
    store::run_data d;
    d.label = label;
    d.kind = "bench";
    d.model = "m";
    d.machine = "cpu";
    d.tables["bench"] = std::move(bench);
    d.tables["parallel"] = std::move(parallel);
    return d;
}

const store::metric_comparison & find(const store::comparison & c, const std::string & test, const std::string & metric) {
    for (const auto & m : c.metrics) {
        if (m.test == test && m.metric == metric) return m;
    }
    ADD_FAILURE() << "no " << test << " " << metric;
    static store::metric_comparison none;
    return none;
}

}  // namespace

TEST(compare_samples, clear_regression_is_confirmed) {
    const std::vector<double> a{100, 101, 99, 100.5, 100.2}, b{80, 81, 79, 80.5, 80.2};
    const auto m = store::compare_samples(a, b, store::direction::higher_is_better, {});
    EXPECT_NEAR(m.ratio, 0.8, 1e-3);
    EXPECT_NEAR(m.change, -0.2, 1e-3);
    ASSERT_TRUE(m.p_value.has_value());
    EXPECT_NEAR(*m.p_value, 0.007936507936507936, 1e-12);  // exact, 5 vs 5, fully separated
    EXPECT_EQ(m.method, stats::mwu_method::exact);
    EXPECT_TRUE(m.confirmed);
    EXPECT_EQ(m.result, store::verdict::regression);
}

TEST(compare_samples, same_change_on_a_time_metric_is_an_improvement) {
    const std::vector<double> a{100, 101, 99, 100.5, 100.2}, b{80, 81, 79, 80.5, 80.2};
    const auto m = store::compare_samples(a, b, store::direction::lower_is_better, {});
    EXPECT_EQ(m.result, store::verdict::improvement);
    const auto back = store::compare_samples(b, a, store::direction::lower_is_better, {});
    EXPECT_EQ(back.result, store::verdict::regression);
}

TEST(compare_samples, identical_runs_are_not_flagged) {
    const std::vector<double> a{100, 101, 99, 100.5, 100.2};
    const auto m = store::compare_samples(a, a, store::direction::higher_is_better, {});
    EXPECT_DOUBLE_EQ(m.ratio, 1.0);
    EXPECT_DOUBLE_EQ(*m.p_value, 1.0);
    EXPECT_EQ(m.result, store::verdict::no_change);
}

TEST(compare_samples, big_change_without_significance_is_no_change) {
    // Means differ by 20% but the samples overlap: p = 0.69 (exact, 4 vs 4).
    const std::vector<double> a{50, 150, 100, 100}, b{40, 140, 60, 80};
    const auto m = store::compare_samples(a, b, store::direction::higher_is_better, {});
    EXPECT_LT(m.change, -0.05);
    ASSERT_TRUE(m.p_value.has_value());
    EXPECT_GT(*m.p_value, 0.05);
    EXPECT_TRUE(m.confirmed);
    EXPECT_EQ(m.result, store::verdict::no_change);
}

TEST(compare_samples, small_change_within_threshold_is_no_change_even_if_significant) {
    const std::vector<double> a{100, 100.1, 100.2, 100.3, 100.4}, b{102, 102.1, 102.2, 102.3, 102.4};
    const auto m = store::compare_samples(a, b, store::direction::higher_is_better, {});
    EXPECT_LT(*m.p_value, 0.05);
    EXPECT_EQ(m.result, store::verdict::no_change);
    const auto strict = store::compare_samples(a, b, store::direction::higher_is_better, {.threshold = 0.01, .alpha = 0.05});
    EXPECT_EQ(strict.result, store::verdict::improvement);
}

TEST(compare_samples, one_sample_is_judged_by_threshold_unconfirmed) {
    const std::vector<double> a{100}, b{80, 81, 82};
    const auto m = store::compare_samples(a, b, store::direction::higher_is_better, {});
    EXPECT_FALSE(m.p_value.has_value());
    EXPECT_FALSE(m.confirmed);
    EXPECT_EQ(m.result, store::verdict::regression);
    const std::vector<double> c{98};
    EXPECT_EQ(store::compare_samples(a, c, store::direction::higher_is_better, {}).result, store::verdict::no_change);
}

TEST(compare_samples, three_against_three_cannot_reach_alpha) {
    // The smallest exact p for 3 vs 3 is 0.1: the threshold decides and the verdict is unconfirmed.
    const std::vector<double> a{100, 101, 102}, b{80, 81, 82};
    const auto m = store::compare_samples(a, b, store::direction::higher_is_better, {});
    ASSERT_TRUE(m.p_value.has_value());
    EXPECT_NEAR(*m.p_value, 0.1, 1e-12);
    EXPECT_FALSE(m.confirmed);
    EXPECT_EQ(m.result, store::verdict::regression);
    // With alpha 0.2 the test can decide, and does.
    const auto loose = store::compare_samples(a, b, store::direction::higher_is_better, {.threshold = 0.05, .alpha = 0.2});
    EXPECT_TRUE(loose.confirmed);
    EXPECT_EQ(loose.result, store::verdict::regression);
}

TEST(compare_runs, bench_rows_match_by_test_and_settings) {
    const auto c0 = fx::context();
    const auto a = side("A", fx::bench(c0, {1000, 1010, 990, 1005, 995}, {50, 51, 49, 50.5, 49.5}));
    const auto b = side("B", fx::bench(c0, {700, 710, 690, 705, 695}, {50, 51.2, 49.1, 50.4, 49.6}));
    const auto c = store::compare(a, b, {});
    ASSERT_EQ(c.metrics.size(), 2u);
    EXPECT_EQ(find(c, "pp512", "t/s").result, store::verdict::regression);
    EXPECT_EQ(find(c, "tg128", "t/s").result, store::verdict::no_change);
    EXPECT_EQ(c.count(store::verdict::regression), 1u);
    EXPECT_TRUE(c.only_in_a.empty());
    EXPECT_TRUE(c.notes.empty());
}

TEST(compare_runs, unmatched_rows_are_listed) {
    const auto c0 = fx::context();
    report::table ta = fx::bench(c0, {1000, 1001}, {50, 51});
    fx::add_bench_row(ta, c0, 1024, 0, {900, 901});
    const auto c = store::compare(side("A", ta), side("B", fx::bench(c0, {1000, 1001}, {50, 51})), {});
    EXPECT_EQ(c.metrics.size(), 2u);
    ASSERT_EQ(c.only_in_a.size(), 1u);
    EXPECT_EQ(c.only_in_a[0], "pp1024");
}

TEST(compare_runs, other_engine_settings_match_by_test_with_a_note) {
    const auto c0 = fx::context();
    report::table ta = store::result_shape("bench"), tb = store::result_shape("bench");
    fx::add_bench_row(ta, c0, 512, 0, {100, 101, 102, 103}, 2);
    fx::add_bench_row(tb, c0, 512, 0, {200, 201, 202, 203}, 4);
    const auto c = store::compare(side("A", ta), side("B", tb), {});
    ASSERT_EQ(c.metrics.size(), 1u);
    EXPECT_EQ(c.metrics[0].test, "pp512 (t=2 → t=4)");
    EXPECT_EQ(c.metrics[0].result, store::verdict::improvement);
    ASSERT_EQ(c.notes.size(), 1u);
    EXPECT_NE(c.notes[0].find("n_threads"), std::string::npos);
}

TEST(compare_runs, parallel_rates_come_from_raw_times) {
    const auto c0 = fx::context();
    report::table pa = store::result_shape("parallel"), pb = store::result_shape("parallel");
    // W=2, 128+256 tokens: prompt t/s = 256/t_pp, gen t/s = 512/t_tg, overall = 768/(t_pp+t_tg).
    fx::add_parallel_row(pa, c0, 2, 128, 256, {0.50, 0.51, 0.49, 0.50}, {5.0, 5.1, 4.9, 5.0});
    fx::add_parallel_row(pb, c0, 2, 128, 256, {0.50, 0.51, 0.49, 0.50}, {6.0, 6.1, 5.9, 6.05});
    fx::add_parallel_row(pb, c0, 4, 128, 256, {0.9}, {7.0});
    const auto c = store::compare(side("A", store::result_shape("bench"), pa), side("B", store::result_shape("bench"), pb), {});
    ASSERT_EQ(c.metrics.size(), 3u);
    const auto & prompt = find(c, "W=2 (p128 n256)", "prompt t/s");
    EXPECT_NEAR(prompt.mean_a, (256 / 0.50 + 256 / 0.51 + 256 / 0.49 + 256 / 0.50) / 4, 1e-9);
    EXPECT_EQ(prompt.n_a, 4u);
    EXPECT_EQ(prompt.result, store::verdict::no_change);
    const auto & gen = find(c, "W=2 (p128 n256)", "gen t/s");
    EXPECT_NEAR(gen.mean_b, (512 / 6.0 + 512 / 6.1 + 512 / 5.9 + 512 / 6.05) / 4, 1e-9);
    EXPECT_EQ(gen.result, store::verdict::regression);
    EXPECT_TRUE(gen.confirmed);  // 4 vs 4, fully separated: p = 0.029
    EXPECT_EQ(find(c, "W=2 (p128 n256)", "overall t/s").result, store::verdict::regression);
    ASSERT_EQ(c.only_in_b.size(), 1u);
    EXPECT_EQ(c.only_in_b[0], "W=4 (p128 n256)");
}

TEST(compare_runs, nothing_in_common_is_an_error) {
    const auto c0 = fx::context();
    report::table p = store::result_shape("parallel");
    fx::add_parallel_row(p, c0, 1, 128, 256, {0.5}, {5.0});
    EXPECT_THROW(store::compare(side("A", fx::bench(c0, {1}, {1})), side("B", store::result_shape("bench"), p), {}), im::error);
}

TEST(compare_runs, different_models_are_noted) {
    const auto c0 = fx::context();
    auto a = side("A", fx::bench(c0, {100, 101}, {10, 11}));
    auto b = side("B", fx::bench(c0, {100, 101}, {10, 11}));
    b.model = "other";
    const auto c = store::compare(a, b, {});
    ASSERT_EQ(c.notes.size(), 1u);
    EXPECT_NE(c.notes[0].find("different models"), std::string::npos);
}

TEST(compare_files, export_arrays_and_report_json_load_by_shape) {
    const auto dir = test::temp_dir("compare-files");
    const auto c0 = fx::context();
    const auto bench = fx::bench(c0, {1000, 1010, 990}, {50, 51, 49});
    report::table par = store::result_shape("parallel");
    fx::add_parallel_row(par, c0, 1, 128, 256, {0.5, 0.6}, {5.0, 5.2});
    {
        std::ofstream(dir / "bench.json") << report::to_json(bench).dump(2);
        std::ofstream(dir / "parallel.json") << report::to_json(par).dump(2);
        nlohmann::ordered_json rep;
        rep["schema_version"] = 1;
        rep["tables"]["bench"] = report::to_json(bench);
        rep["tables"]["parallel"] = report::to_json(par);
        std::ofstream(dir / "report.json") << rep.dump(2);
        std::ofstream(dir / "empty.json") << "[]";
        std::ofstream(dir / "bad.json") << "{not json";
    }
    const auto b = store::load_file(dir / "bench.json");
    EXPECT_EQ(b.kind, "bench");
    ASSERT_EQ(b.rows_of("bench").rows.size(), 2u);
    EXPECT_EQ(std::get<std::vector<double>>(b.rows_of("bench").get(0, "samples_ts")), (std::vector<double>{1000, 1010, 990}));
    EXPECT_EQ(b.model, "qwen2 1.5B Q4_K - Medium");
    EXPECT_EQ(b.machine, "Test CPU");

    const auto p = store::load_file(dir / "parallel.json");
    EXPECT_EQ(p.kind, "parallel");
    EXPECT_EQ(p.rows_of("parallel").rows.size(), 1u);
    EXPECT_TRUE(p.rows_of("bench").rows.empty());

    const auto r = store::load_file(dir / "report.json");
    EXPECT_EQ(r.kind, "evaluate");
    EXPECT_EQ(r.rows_of("bench").rows.size(), 2u);
    EXPECT_EQ(r.rows_of("parallel").rows.size(), 1u);
    // A report compared with itself: every metric matched, nothing flagged.
    const auto c = store::compare(r, r, {});
    EXPECT_EQ(c.metrics.size(), 5u);
    EXPECT_EQ(c.count(store::verdict::no_change), 5u);

    for (const char * name : {"empty.json", "bad.json", "missing.json"}) {
        try {
            store::load_file(dir / name);
            ADD_FAILURE() << name << " loaded";
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), error_kind::runtime);
            EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
    }
}

// Two continuous runs: rows matched by load, lengths and sampling; latencies judged lower-is-better
// with the Mann–Whitney test on the per-request samples, throughputs by the threshold alone.
TEST(compare_runs, continuous_runs_match_by_load_and_judge_latency_lower_is_better) {
    const auto c0 = fx::context();
    std::vector<double> fast, slow;
    for (int i = 0; i < 20; ++i) {
        fast.push_back(100 + i);
        slow.push_back(150 + i);
    }
    report::table ta = store::result_shape("continuous"), tb = store::result_shape("continuous");
    fx::add_request_row(ta, c0, 4, 1000, fast);
    fx::add_request_row(ta, c0, 16, 3000, fast);
    fx::add_request_row(tb, c0, 4, 1100, slow);  // more output t/s, slower first tokens
    fx::add_request_row(tb, c0, 8, 2000, slow);
    store::run_data a, b;
    a.label = "A";
    b.label = "B";
    a.tables["continuous"] = ta;
    b.tables["continuous"] = tb;
    const auto c = store::compare(a, b, {});
    const std::string test = "C=4 (fixed 128/256, greedy, CPU sampling)";
    const auto & ttft = find(c, test, "TTFT p99 (ms)");
    EXPECT_EQ(ttft.table, "continuous");
    EXPECT_EQ(ttft.unit, "ms");
    EXPECT_EQ(ttft.better, store::direction::lower_is_better);
    EXPECT_NEAR(ttft.mean_a, stats::percentile(fast, 99), 1e-9) << "the figure is the p99, not the mean";
    EXPECT_NEAR(ttft.mean_b, stats::percentile(slow, 99), 1e-9);
    EXPECT_EQ(ttft.n_a, 20u);
    EXPECT_TRUE(ttft.confirmed);
    EXPECT_LT(*ttft.p_value, 0.001);
    EXPECT_EQ(ttft.result, store::verdict::regression) << "higher latency is worse";
    EXPECT_EQ(find(c, test, "TTFT p50 (ms)").result, store::verdict::regression);
    // TPOT and E2E grew by 2–3%: within the 5% threshold, however significant.
    EXPECT_EQ(find(c, test, "TPOT p99 (ms)").result, store::verdict::no_change);
    EXPECT_EQ(find(c, test, "E2E p99 (ms)").result, store::verdict::no_change);
    const auto & out = find(c, test, "output t/s");
    EXPECT_EQ(out.better, store::direction::higher_is_better);
    EXPECT_EQ(out.n_a, 1u) << "no per-request samples: one figure";
    EXPECT_FALSE(out.confirmed);
    EXPECT_EQ(out.result, store::verdict::improvement);
    EXPECT_EQ(c.count(store::verdict::regression), 2u);   // TTFT p50 and p99
    EXPECT_EQ(c.count(store::verdict::improvement), 3u);  // req/s, output t/s, goodput
    EXPECT_EQ(c.only_in_a, (std::vector<std::string>{"C=16 (fixed 128/256, greedy, CPU sampling)"}));
    EXPECT_EQ(c.only_in_b, (std::vector<std::string>{"C=8 (fixed 128/256, greedy, CPU sampling)"}));
    // The same runs the other way round: every latency is an improvement.
    const auto back = store::compare(b, a, {});
    EXPECT_EQ(find(back, test, "TTFT p99 (ms)").result, store::verdict::improvement);
    EXPECT_EQ(back.count(store::verdict::regression), 3u);  // req/s, output t/s and goodput fell by 9%
}

TEST(compare_runs, other_sampling_is_another_measurement) {
    const auto c0 = fx::context();
    report::table ta = store::result_shape("serve"), tb = store::result_shape("serve");
    fx::add_request_row(ta, c0, 4, 1000, {100, 110, 120});
    fx::add_request_row(tb, c0, 4, 1000, {100, 110, 120});
    tb.set(tb.rows[0], "sampling", std::string("temp 0.8"));
    store::run_data a, b;
    a.label = "A";
    b.label = "B";
    a.tables["serve"] = ta;
    b.tables["serve"] = tb;
    EXPECT_THROW(store::compare(a, b, {}), im::error);
}

TEST(compare_history, headline_picks_first_pp_tg_and_best_parallel) {
    const auto c0 = fx::context();
    const auto bench = fx::bench(c0, {1000, 1010}, {50, 52});
    report::table par = store::result_shape("parallel");
    fx::add_parallel_row(par, c0, 1, 128, 256, {0.5}, {5.0});
    fx::add_parallel_row(par, c0, 4, 128, 256, {0.9}, {7.0});
    fx::add_parallel_row(par, c0, 8, 128, 256, {}, {});
    par.set(par.rows.back(), "skipped", std::string("does not fit"));
    par.set(par.rows.back(), "overall_tps", 1e9);
    const auto h = store::headline_of({{"bench", bench}, {"parallel", par}});
    EXPECT_DOUBLE_EQ(h.fields["pp_ts"].get<double>(), 1005);
    EXPECT_DOUBLE_EQ(h.fields["tg_ts"].get<double>(), 51);
    EXPECT_NEAR(h.fields["best_overall_tps"].get<double>(), 4 * 384 / 7.9, 1e-9);
    EXPECT_EQ(h.fields["best_workers"], 4);
    EXPECT_EQ(h.text, "tg 51.00 t/s · pp 1,005.00 t/s · best 194.43 t/s at W=4");
    EXPECT_TRUE(h.fields["continuous_best_output_tps"].is_null());
}

TEST(compare_history, headline_of_request_runs_is_the_best_output_rate) {
    const auto c0 = fx::context();
    report::table cont = store::result_shape("continuous");
    fx::add_request_row(cont, c0, 4, 1000, {100, 120});
    fx::add_request_row(cont, c0, 16, 3000, {200, 400});
    const auto h = store::headline_of({{"continuous", cont}});
    EXPECT_EQ(h.text, "continuous: 3,000.00 output t/s at C=16 (TTFT p99 398.0 ms)");
    EXPECT_EQ(h.fields["continuous_best_load"], "C=16");
    EXPECT_DOUBLE_EQ(h.fields["continuous_best_output_tps"].get<double>(), 3000);
    EXPECT_TRUE(h.fields["pp_ts"].is_null());
    EXPECT_TRUE(h.fields["serve_best_output_tps"].is_null());
}
