#include "store/store.h"
#include "support/run.h"
#include "unit/store/fixtures.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using im::test::run_infermeter;
namespace fx = im::test::store_fixtures;

// Two real bench runs recorded, listed and compared: the numbers are noise on a shared machine, so
// the verdict may go either way, but the command must print its table and end with 0 or 3.
TEST(history_cli, real_bench_runs_are_listed_and_compared) {
    const auto db = (im::test::temp_dir("history-real") / "results.db").string();
    for (int i = 0; i < 2; ++i) {
        const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "32", "-n", "8", "-r", "3", "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("recorded as run " + std::to_string(i + 1)), std::string::npos) << r.err;
    }
    auto h = run_infermeter({"history", "--db", db});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    EXPECT_NE(h.out.find("| ID | Time | Kind |"), std::string::npos) << h.out;
    EXPECT_LT(h.out.find("| 2 |"), h.out.find("| 1 |")) << h.out;  // newest first
    EXPECT_NE(h.out.find("tg "), std::string::npos) << h.out;

    h = run_infermeter({"history", "--db", db, "-o", "json", "-n", "1"});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    const auto j = nlohmann::json::parse(h.out);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["id"], 2);
    EXPECT_EQ(j[0]["kind"], "bench");
    EXPECT_GT(j[0]["tg_ts"].get<double>(), 0);
    EXPECT_GT(j[0]["pp_ts"].get<double>(), 0);

    const auto c = run_infermeter({"compare", "1", "2", "--db", db});
    EXPECT_TRUE(c.exit_code == 0 || c.exit_code == 3) << c.exit_code << c.err;
    EXPECT_NE(c.out.find("| pp32 | t/s |"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("| tg8 | t/s |"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("(n=3)"), std::string::npos) << c.out;
    if (c.exit_code == 3) EXPECT_NE(c.err.find("regression"), std::string::npos) << c.err;
}

class compare_cli : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = im::test::temp_dir("compare-cli");
        db_ = (dir_ / "results.db").string();
        im::store::database db(db_);
        const auto c = fx::context();
        const std::vector<double> base_pp{1000, 1010, 990, 1005, 995}, base_tg{50, 51, 49, 50.5, 49.5};
        db.record("bench", c, {fx::bench(c, base_pp, base_tg)}, false);                            // 1: baseline
        db.record("bench", c, {fx::bench(c, base_pp, base_tg)}, false);                            // 2: identical
        db.record("bench", c, {fx::bench(c, {700, 710, 690, 705, 695}, base_tg)}, false);          // 3: pp −30%
        db.record("bench", c, {fx::bench(c, {1300, 1310, 1290, 1305, 1295}, base_tg)}, false);     // 4: pp +30%
        report_ = (dir_ / "report.json").string();
        nlohmann::ordered_json rep;
        rep["tables"]["bench"] = im::report::to_json(fx::bench(c, base_pp, base_tg));
        std::ofstream(report_) << rep.dump(2);
    }
    std::filesystem::path dir_;
    std::string db_, report_;
};

TEST_F(compare_cli, identical_runs_are_not_flagged) {
    const auto r = run_infermeter({"compare", "1", "2", "--db", db_});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| pp512 | t/s | 1,000.00 (n=5) | 1,000.00 (n=5) | 1.000 | +0.0% | 1.000 | no significant change |"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("0 regressions, 0 improvements, 2 without significant change"), std::string::npos) << r.out;
}

TEST_F(compare_cli, clear_regression_exits_3) {
    const auto r = run_infermeter({"compare", "1", "3", "--db", db_});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.out.find("| pp512 | t/s | 1,000.00 (n=5) | 700.00 (n=5) | 0.700 | -30.0% | 0.008 | regression |"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("1 regression flagged"), std::string::npos) << r.err;
    // The same pair the other way round is an improvement, and not a failure.
    const auto back = run_infermeter({"compare", "3", "1", "--db", db_});
    EXPECT_EQ(back.exit_code, 0) << back.err;
    EXPECT_NE(back.out.find("| improvement |"), std::string::npos) << back.out;
    // A threshold above the change lets it pass.
    EXPECT_EQ(run_infermeter({"compare", "1", "3", "--db", db_, "--threshold", "0.5"}).exit_code, 0);
}

TEST_F(compare_cli, json_output_and_report_file_against_a_run) {
    const auto r = run_infermeter({"compare", report_, "4", "--db", db_, "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["a"]["source"], report_);
    EXPECT_EQ(j["b"]["source"], "run 4");
    EXPECT_EQ(j["improvements"], 1);
    EXPECT_EQ(j["regressions"], 0);
    ASSERT_EQ(j["metrics"].size(), 2u);
    EXPECT_EQ(j["metrics"][0]["test"], "pp512");
    EXPECT_EQ(j["metrics"][0]["verdict"], "improvement");
    EXPECT_EQ(j["metrics"][0]["test_method"], "exact");
    EXPECT_TRUE(j["metrics"][0]["confirmed"].get<bool>());
    EXPECT_NEAR(j["metrics"][0]["p_value"].get<double>(), 0.007936507936507936, 1e-12);
    EXPECT_EQ(j["metrics"][1]["verdict"], "no_change");
}

TEST_F(compare_cli, bad_input) {
    auto r = run_infermeter({"compare", "1", "42", "--db", db_});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("run 42"), std::string::npos) << r.err;
    r = run_infermeter({"compare", "1", (dir_ / "nope.json").string(), "--db", db_});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("nope.json"), std::string::npos) << r.err;
    r = run_infermeter({"compare", "1", "2", "--db", (dir_ / "missing.db").string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("missing.db"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "missing.db"));  // compare never creates a store
    EXPECT_EQ(run_infermeter({"compare", "1", "--db", db_}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"compare", "1", "2", "--db", db_, "--alpha", "0"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"compare", "1", "2", "--db", db_, "--threshold", "-0.1"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"compare", "1", "2", "--db", db_, "-o", "csv"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"history", "--db", db_, "--since", "last week"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"history", "--db", db_, "--kind", "nonsense"}).exit_code, 2);
    EXPECT_EQ(run_infermeter({"history", "--db", db_, "-n", "0"}).exit_code, 2);
}

TEST_F(compare_cli, history_filters) {
    auto r = run_infermeter({"history", "--db", db_, "--kind", "bench", "-n", "2", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["id"], 4);
    EXPECT_EQ(j[1]["id"], 3);
    r = run_infermeter({"history", "--db", db_, "--model", "no such model"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("No recorded runs match"), std::string::npos) << r.out;
    r = run_infermeter({"history", "--db", db_, "--since", "2027"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("No recorded runs match"), std::string::npos) << r.out;
    r = run_infermeter({"history", "--db", (dir_ / "none.db").string()});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(std::filesystem::exists(dir_ / "none.db"));
}

// Request-level runs (continuous in-process, serve over HTTP) are listed with their headline,
// filtered by kind, and compared metric by metric with latencies judged lower-is-better.
TEST(history_cli, continuous_and_serve_runs_are_listed_and_compared) {
    const auto dir = im::test::temp_dir("history-requests");
    const auto db_path = (dir / "results.db").string();
    {
        im::store::database db(db_path);
        const auto c = fx::context();
        std::vector<double> fast, slow;
        for (int i = 0; i < 10; ++i) {
            fast.push_back(100 + i);
            slow.push_back(300 + i);
        }
        auto a = im::store::result_shape("continuous"), b = im::store::result_shape("continuous");
        fx::add_request_row(a, c, 4, 1000, fast);
        fx::add_request_row(a, c, 16, 3000, fast);
        fx::add_request_row(b, c, 4, 1000, slow);
        db.record("continuous", c, {a}, false);  // 1
        db.record("continuous", c, {b}, false);  // 2: TTFT tripled
        auto s = im::store::result_shape("serve");
        fx::add_request_row(s, c, 8, 1500, fast);
        db.record("serve", c, {s}, false);       // 3
    }
    auto h = run_infermeter({"history", "--db", db_path});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    EXPECT_NE(h.out.find("| continuous: 3,000.00 output t/s at C=16 (TTFT p99 108.9 ms) |"), std::string::npos) << h.out;
    EXPECT_NE(h.out.find("| serve: 1,500.00 output t/s at C=8 (TTFT p99 108.9 ms) |"), std::string::npos) << h.out;

    h = run_infermeter({"history", "--db", db_path, "--kind", "serve", "-o", "json"});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    auto j = nlohmann::json::parse(h.out);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["kind"], "serve");
    EXPECT_EQ(j[0]["serve_best_output_tps"], 1500.0);
    EXPECT_EQ(j[0]["serve_best_load"], "C=8");
    EXPECT_TRUE(j[0]["continuous_best_output_tps"].is_null());
    EXPECT_TRUE(j[0].contains("tg_ts")) << "every line has every headline key";
    h = run_infermeter({"history", "--db", db_path, "--kind", "continuous", "-o", "json"});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    EXPECT_EQ(nlohmann::json::parse(h.out).size(), 2u);

    const auto c = run_infermeter({"compare", "1", "2", "--db", db_path});
    EXPECT_EQ(c.exit_code, 3) << c.err;
    EXPECT_NE(c.out.find("| C=4 (fixed 128/256, greedy, CPU sampling) | TTFT p99 (ms) | 108.91 (n=10) | 308.91 (n=10) |"),
              std::string::npos)
        << c.out;
    EXPECT_NE(c.out.find("| C=4 (fixed 128/256, greedy, CPU sampling) | output t/s | 1,000.00 (n=1) | 1,000.00 (n=1) |"),
              std::string::npos)
        << c.out;
    EXPECT_NE(c.out.find("only in A: C=16 (fixed 128/256, greedy, CPU sampling)"), std::string::npos) << c.out;
    // A serve run and a continuous run share no kind of row: nothing in common.
    const auto none = run_infermeter({"compare", "1", "3", "--db", db_path});
    EXPECT_EQ(none.exit_code, 1) << none.err;
    EXPECT_NE(none.err.find("no measurement in common"), std::string::npos) << none.err;
}
