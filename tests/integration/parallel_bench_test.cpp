#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using im::test::run_infermeter;

TEST(bench_cli, tiny_pp_tg_json_has_llama_bench_fields) {
    const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "64", "-n", "16", "-r", "2", "-o", "json", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["n_prompt"], 64);
    EXPECT_EQ(j[0]["n_gen"], 0);
    EXPECT_EQ(j[1]["n_gen"], 16);
    EXPECT_EQ(j[0]["samples_ts"].size(), 2u);
    EXPECT_GT(j[0]["avg_ts"].get<double>(), 0);
    EXPECT_EQ(j[0]["build_commit"], "80fb11a");
    EXPECT_EQ(j[0]["n_ctx_allocated"].get<int>() % 256, 0);
    EXPECT_EQ(j[0]["schema_version"], 1);
}

TEST(bench_cli, sweep_lists_and_export) {
    const auto dir = im::test::temp_dir("bench-export");
    const auto csv = (dir / "b.csv").string();
    const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "16,32", "-n", "0", "-t", "1,2", "-r", "1",
                                   "-fa", "on,off", "--export", csv, "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| Threads | FA | Test |"), std::string::npos) << r.out;
    std::ifstream in(csv);
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) ++lines;
    EXPECT_EQ(lines, 1 + 8);
}

TEST(bench_cli, bad_input) {
    auto r = run_infermeter({"bench", "-m", "/no/such.gguf", "--no-db"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("/no/such.gguf"), std::string::npos) << r.err;
    r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "-5", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"bench", "-m", "synth:tiny", "-fa", "maybe", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("-fa"), std::string::npos) << r.err;
    r = run_infermeter({"bench", "-m", "synth:tiny", "-ctk", "q9", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"bench", "-m", "synth:tiny", "-r", "0", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"bench", "-m", "synth:tiny", "-o", "xml", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
}

// Issue 9: warmup until settled, --min-time / --max-reps, and what each test used, in every output.
TEST(bench_cli, warmups_repetitions_and_precision_are_recorded) {
    // Fixed count: exactly -r repetitions, at least two warmup runs (one cannot be compared), at most 10.
    auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "32", "-n", "8", "-r", "3", "-t", "1", "-o", "json", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    for (const auto & row : j) {
        EXPECT_EQ(row["repetitions"], 3);
        EXPECT_EQ(row["samples_ts"].size(), 3u);
        EXPECT_GE(row["n_warmup"].get<int>(), 2);
        EXPECT_LE(row["n_warmup"].get<int>(), 10);
        if (row["n_warmup"].get<int>() < 10) EXPECT_TRUE(row["warmup_converged"].get<bool>());  // stopped: it settled
        EXPECT_GE(row["ci95_rel"].get<double>(), 0.0);
        EXPECT_EQ(row["precision_met"].get<bool>(), row["ci95_rel"].get<double>() <= 0.01);
    }

    // Adaptive: between -r and --max-reps, and past --min-time unless --max-reps stopped it.
    r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "32", "-n", "0", "-r", "2", "--min-time", "0.05", "--max-reps",
                        "40", "-t", "1", "-o", "json", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 1u);
    const int reps = j[0]["repetitions"];
    EXPECT_GE(reps, 2);
    EXPECT_LE(reps, 40);
    double timed_s = 0;
    for (const auto & ns : j[0]["samples_ns"]) timed_s += ns.get<double>() / 1e9;
    if (reps < 40) {
        EXPECT_GE(timed_s, 0.05);
        EXPECT_TRUE(j[0]["precision_met"].get<bool>());
    } else {
        EXPECT_NE(r.err.find("--max-reps 40"), std::string::npos) << r.err;  // warned: target missed
    }

    // No warmup: none recorded. Markdown: the Repetitions line.
    r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "16", "-n", "0", "-r", "1", "--no-warmup", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("**Repetitions:** pp16: 0 warmups, 1 repetition, 95% interval ±0.00% of the median "
                         "(target ±1% not met)"), std::string::npos) << r.out;
}

TEST(bench_cli, bad_repetition_flags_are_usage_errors) {
    for (const std::vector<std::string> & bad : std::vector<std::vector<std::string>>{
             {"--max-reps", "0"}, {"--max-reps", "1001"}, {"-r", "5", "--max-reps", "3"}, {"--min-time", "-1"},
             {"--min-time", "nan"}, {"--min-time", "1e9"}, {"--min-time", "abc"}, {"--max-reps", "x"}}) {
        std::vector<std::string> args = {"bench", "-m", "synth:tiny", "-p", "16", "-n", "0", "--no-db"};
        args.insert(args.end(), bad.begin(), bad.end());
        const auto r = run_infermeter(args);
        EXPECT_EQ(r.exit_code, 2) << bad[bad.size() - 2] << " " << bad.back() << ": " << r.err;
        EXPECT_NE(r.err.find(bad[bad.size() - 2]), std::string::npos) << r.err;
    }
}

// A real lockstep run: the computed KV must equal what llama.cpp allocated.
TEST(parallel_cli, tiny_run_kv_agrees_and_rates_are_consistent) {
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "-p", "32", "-n", "16", "--workers", "1,2,4", "-o",
                                   "json", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 3u);
    const int workers[] = {1, 2, 4};
    for (size_t i = 0; i < 3; ++i) {
        const auto & row = j[i];
        EXPECT_EQ(row["workers"], workers[i]);
        EXPECT_EQ(row["n_ctx"], workers[i] * 256);
        EXPECT_EQ(row["n_ctx_seq"], 256);
        EXPECT_EQ(row["kv_bytes"], workers[i] * 256 * 1024);
        EXPECT_NEAR(row["kv_bytes_allocated"].get<double>(), row["kv_bytes"].get<double>(), 10486);
        const double t_pp = row["t_pp_s"], t_tg = row["t_tg_s"];
        EXPECT_NEAR(row["overall_tps"].get<double>(), workers[i] * 48 / (t_pp + t_tg), 1e-6 * row["overall_tps"].get<double>());
        EXPECT_NEAR(row["gen_tps"].get<double>(), workers[i] * 16 / t_tg, 1e-6 * row["gen_tps"].get<double>());
        EXPECT_EQ(row["total_kv"], workers[i] * 48);
    }
    EXPECT_DOUBLE_EQ(j[0]["speedup"].get<double>(), 1.0);
    EXPECT_NEAR(j[2]["efficiency"].get<double>(), j[2]["speedup"].get<double>() / 4, 1e-9);
}

TEST(parallel_cli, plan_reproduces_the_reference_context_and_kv) {
    const auto r = run_infermeter({"parallel", "-m", "synth:qwen2-1.5b-q4_k_m", "-p", "128", "-n", "4096", "--ctx-min",
                                   "8192", "--workers", "1,2,4,8", "--plan", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 4u);
    const int64_t cells[] = {8192, 8704, 17408, 34816};
    const int64_t mib[] = {224, 238, 476, 952};
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(j[i]["n_ctx"], cells[i]);
        EXPECT_EQ(j[i]["n_ctx_seq"], i == 0 ? 8192 : 4352);
        EXPECT_EQ(j[i]["kv_bytes"].get<int64_t>(), mib[i] << 20);
        EXPECT_EQ(j[i]["kv_bytes_reported"].get<int64_t>(), mib[i] << 20) << "llama.cpp's own dry run agrees";
    }
}

TEST(parallel_cli, a_worker_count_that_cannot_fit_is_refused_with_the_largest_that_fits) {
    const auto r = run_infermeter({"parallel", "-m", "synth:qwen2-1.5b-q4_k_m", "-p", "16", "-n", "32000",
                                   "--workers", "256", "--no-db"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("largest worker count that fits is"), std::string::npos) << r.err;
}

// Issue 9: a failed dry run was swallowed (compute bytes 0) and --plan could say "fits".
TEST(parallel_cli, plan_never_says_fits_for_a_configuration_llama_cpp_rejects) {
    const std::vector<std::string> args{"parallel", "-m", "synth:tiny", "-p", "32", "-n", "16", "--workers", "1,2",
                                        "-ctv", "q8_0", "-fa", "off", "--no-db"};
    auto plan_args = args;
    for (const char * a : {"--plan", "-o", "json"}) plan_args.push_back(a);
    const auto r = run_infermeter(plan_args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    for (const auto & row : j) {
        EXPECT_FALSE(row["fits"].get<bool>()) << row.dump();
        EXPECT_TRUE(row["refused"].is_string()) << row.dump();
    }
    EXPECT_NE(r.err.find("dry run"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("flash_attn"), std::string::npos) << "llama.cpp's own reason: " << r.err;
    const auto run = run_infermeter(args);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_NE(run.err.find("1 workers"), std::string::npos) << run.err;
}

TEST(parallel_cli, bad_input) {
    auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--workers", "0", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--workers"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "-n", "0", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "-p", "128", "-n", "40000", "--workers", "1", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--allow-ctx-overflow"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--ctx", "100", "--workers", "2", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "-t", "1,2", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"parallel", "-m", "/nope.gguf", "--no-db"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
}

// parallel --fast on a CPU: the sweep's W probed at three depths, every row predicted. CPU step times are
// usually smooth in W: a switch probe is spent only where fit_steps split the sweep, at most
// ceil(log2(gap)) per split (here: none between 1 and 2, one between 2 and 4), and the report names it.
TEST(parallel_cli, fast_predicts_and_spends_switch_probes_only_with_cause) {
    const auto dir = im::test::temp_dir("parallel-fast");
    const auto json_path = (dir / "fast.json").string();
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "-w", "1,2,4", "-p", "32", "-n", "64", "-t", "2", "--fast",
                                   "--export", json_path, "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char * s : {"| 1~", "| 2~", "| 4~", "Predicted by `--fast`", "| Regime (W) |"}) {
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    }
    int probe_lines = 0;
    for (size_t at = 0; (at = r.err.find("probe step W=", at)) != std::string::npos; ++at) ++probe_lines;
    const int switch_probes = probe_lines - 3 * 3;
    EXPECT_GE(switch_probes, 0) << r.err;
    EXPECT_LE(switch_probes, 1) << r.err;
    if (switch_probes > 0) {
        EXPECT_NE(r.out.find("located kernel switches"), std::string::npos) << r.out;
    }
    std::ifstream in(json_path);
    const auto rows = nlohmann::json::parse(in);
    ASSERT_EQ(rows.size(), 3u);
    for (const auto & row : rows) {
        EXPECT_TRUE(row["predicted"].get<bool>()) << row.dump();
        EXPECT_TRUE(row.contains("steps_probed")) << row.dump();
        EXPECT_TRUE(row.contains("prediction_note")) << row.dump();
    }
}

TEST(parallel_cli, fast_flag_errors) {
    auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--workers", "1,2", "--fast", "--verify", "4", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--verify 4"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--workers", "1,2", "--fast", "-r", "3", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("-r"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--workers", "1,2", "--verify", "2", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("add --fast"), std::string::npos) << r.err;
    // Continuous --fast predicts closed-loop levels only (docs/fast-mode.md §8); --verify needs --fast there too.
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--rate", "4", "--fast", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("closed-loop"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--verify", "1", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("add --fast"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "2", "--backend-sampling",
                        "--fast", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("backend sampling"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "1,2", "--fast", "--verify",
                        "4", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--verify 4"), std::string::npos) << r.err;
    r = run_infermeter({"parallel", "-m", "synth:tiny", "--fast", "--plan", "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"evaluate", "-m", "synth:tiny", "--verify", "2", "--no-db", "--out", "/tmp/im-never"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("add --fast"), std::string::npos) << r.err;
}
