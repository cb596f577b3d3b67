#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

using im::test::run_infermeter;

// issue 11: tune on the real engine (synth:tiny, CPU): every trial ran, was rejected for other greedy
// tokens, or failed with a reason; the baseline comes first; the recommended flags are a command line
// `parallel` accepts.
TEST(tune_cli, searches_within_budget_and_recommends_flags_parallel_accepts) {
    const auto r = run_infermeter({"tune", "-m", "synth:tiny", "-w", "2", "-p", "32", "-n", "16", "--budget", "20s", "-t", "1",
                                   "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_GE(j["trials"].size(), 2u) << r.out;
    EXPECT_EQ(j["trials"][0]["change"], "");
    EXPECT_GT(j["trials"][0]["gen_tps"].get<double>(), 0);
    EXPECT_EQ(j["baseline"]["-fa"], "auto");
    EXPECT_EQ(j["baseline"]["-ub"], "512");
    for (const auto & t : j["trials"]) {
        const bool ran = !t["rejected"].get<bool>() && t["failed"].get<std::string>().empty();
        EXPECT_EQ(ran, t["gen_tps"].get<double>() > 0) << t.dump();
    }
    EXPECT_GT(j["best_gen_tps"].get<double>(), 0);
    std::vector<std::string> cmd{"parallel", "-m", "synth:tiny", "-w", "2", "-p", "32", "-n", "16", "--no-db", "-o", "json"};
    std::istringstream flags(j["best_flags"].get<std::string>());
    for (std::string w; flags >> w;) cmd.push_back(w);
    const auto p = run_infermeter(cmd);
    EXPECT_EQ(p.exit_code, 0) << j["best_flags"] << "\n" << p.err;

    const auto md = run_infermeter({"tune", "-m", "synth:tiny", "-w", "2", "-p", "32", "-n", "16", "--budget", "5s", "-t", "1"});
    ASSERT_EQ(md.exit_code, 0) << md.err;
    for (const char * s : {"## Tune: synth:tiny at W = 2", "| 1 | baseline |", "**Recommended command:** `infermeter parallel -m synth:tiny -w 2"}) {
        EXPECT_NE(md.out.find(s), std::string::npos) << s << "\n" << md.out;
    }
}

TEST(tune_cli, bad_flags_are_usage_errors) {
    for (const auto & args : std::vector<std::vector<std::string>>{
             {"tune", "-m", "synth:tiny", "--budget", "soon"},
             {"tune", "-m", "synth:tiny", "--budget", "-5m"},
             {"tune", "-m", "synth:tiny", "-w", "0"},
             {"tune", "-m", "synth:tiny", "-n", "2"},
             {"tune", "-m", "synth:tiny", "-fa", "on,off"}}) {
        const auto r = run_infermeter(args);
        EXPECT_EQ(r.exit_code, 2) << args[3] << " " << r.err;
    }
    EXPECT_EQ(run_infermeter({"tune", "-m", "/nope.gguf"}).exit_code, 1);
}

// -w 1,2: one search per W and the Pareto front across them (every point one of the trials that ran).
TEST(tune_cli, several_worker_counts_give_a_pareto_front) {
    const auto r = run_infermeter({"tune", "-m", "synth:tiny", "-w", "1,2", "-p", "32", "-n", "16", "--budget", "8s", "-t", "1",
                                   "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["levels"].size(), 2u);
    EXPECT_EQ(j["levels"][0]["workers"], 1);
    EXPECT_EQ(j["levels"][1]["workers"], 2);
    ASSERT_GE(j["pareto"].size(), 1u);
    for (const auto & p : j["pareto"]) {
        const int w = p["workers"];
        EXPECT_NEAR(p["ms_per_token"].get<double>(), 1000.0 * w / p["aggregate_gen_tps"].get<double>(), 1e-6);
        bool found = false;
        for (const auto & t : j["levels"][w == 1 ? 0 : 1]["trials"]) found = found || t["settings"] == p["settings"];
        EXPECT_TRUE(found) << p.dump();
    }
}

// --workload continuous: the score is continuous batching's decode-step t/s with greedy sampling, and
// where the sampler runs is the first axis; the recommended command is a continuous-mode run.
TEST(tune_cli, continuous_workload_searches_backend_sampling) {
    const auto r = run_infermeter({"tune", "-m", "synth:tiny", "--workload", "continuous", "-w", "2", "-p", "16", "-n", "16",
                                   "--budget", "6s", "-t", "1", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["workload"], "continuous");
    EXPECT_EQ(j["baseline"]["--backend-sampling"], "0");
    ASSERT_GE(j["trials"].size(), 2u);
    EXPECT_EQ(j["trials"][1]["change"], "--backend-sampling=1");
    EXPECT_GT(j["trials"][0]["gen_tps"].get<double>(), 0);
    const auto md = run_infermeter({"tune", "-m", "synth:tiny", "--workload", "continuous", "-w", "2", "-p", "16", "-n", "16",
                                    "--budget", "3s", "-t", "1"});
    ASSERT_EQ(md.exit_code, 0) << md.err;
    EXPECT_NE(md.out.find("`infermeter parallel -m synth:tiny --mode continuous --concurrency 2 -p 16 -n 16"), std::string::npos)
        << md.out;
    EXPECT_EQ(run_infermeter({"tune", "-m", "synth:tiny", "--workload", "serve"}).exit_code, 2);
}
