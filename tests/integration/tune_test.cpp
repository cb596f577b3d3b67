#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
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
}

// --workload serve (issue 11): the real llama-server from build/bin, launched per candidate on 127.0.0.1;
// the recommended command is a llama-server command line, the Pareto front has a row, and the JSON export
// carries every candidate with its score, latencies and verdict. On synth:tiny (random weights) the
// baseline's distributions are near-flat and the output says the tie rule decides the check.
TEST(tune_cli, serve_workload_tunes_llama_server_flags) {
    if (!std::filesystem::exists(im::test::bin_path("llama-server"))) GTEST_SKIP() << "llama-server was not built";
    const auto json_path = (im::test::temp_dir("tune-serve") / "tune.json").string();
    const auto r = run_infermeter({"tune", "-m", "synth:tiny", "--workload", "serve", "-w", "2", "-p", "16", "-n", "16",
                                   "--budget", "25s", "-t", "1", "--probe-requests", "4", "--export", json_path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char * s : {"## Tune: synth:tiny at C = 2 (llama-server", "| 1 | baseline |", "**Recommended command:** `llama-server -m ",
                           " -np 2 -c ", "## Pareto front", "| 2 | `", "the tie rule, not the text, decides this check",
                           "reference: 8 answers"}) {  // --probe-requests 4 at C = 2
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    }
    std::ifstream f(json_path);
    const auto j = nlohmann::json::parse(f);
    EXPECT_EQ(j["workload"], "serve");
    EXPECT_EQ(j["baseline"]["--backend-sampling"], "0");
    EXPECT_EQ(j["baseline"]["-t"], "1");
    EXPECT_EQ(j["recommended_command"].get<std::string>().rfind("llama-server -m ", 0), 0u) << j["recommended_command"];
    ASSERT_GE(j["trials"].size(), 2u) << j.dump(2);
    EXPECT_EQ(j["trials"][0]["verdict"], "baseline");
    EXPECT_EQ(j["trials"][1]["change"], "--backend-sampling=1");
    for (const auto & t : j["trials"]) {
        const std::string verdict = t["verdict"];
        const bool ran = verdict == "baseline" || verdict.rfind("accepted", 0) == 0;
        EXPECT_TRUE(ran || verdict == "rejected" || verdict == "failed") << t.dump();
        EXPECT_EQ(ran, t["gen_tps"].get<double>() > 0) << t.dump();
        if (ran) {
            EXPECT_GT(t["tpot_p50_ms"].get<double>(), 0) << t.dump();
            EXPECT_GT(t["ttft_p50_ms"].get<double>(), 0) << t.dump();
        }
    }
    ASSERT_GE(j["pareto"].size(), 1u);
    EXPECT_EQ(j["pareto"][0]["workers"], 2);
    // Usage errors before any server starts.
    for (const auto & args : std::vector<std::vector<std::string>>{
             {"tune", "-m", "synth:tiny", "--workload", "serve", "--kv-types"},
             {"tune", "-m", "synth:tiny", "--workload", "serve", "--tie-margin", "0"},
             {"tune", "-m", "synth:tiny", "--server-arg=--no-warmup"},
             {"tune", "-m", "synth:tiny", "--workload", "serve", "--server-arg=-ub", "--server-arg=64"},
             {"tune", "-m", "synth:tiny", "--workload", "bogus"},
             {"tune", "-m", "synth:tiny", "--workload", "serve", "--probe-requests", "1"},
             {"tune", "-m", "synth:tiny", "--probe-requests", "5"}}) {
        EXPECT_EQ(run_infermeter(args).exit_code, 2) << args.back();
    }
}
