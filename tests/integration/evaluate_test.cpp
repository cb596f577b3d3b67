#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using im::test::run_infermeter;

namespace {

std::string slurp(const std::filesystem::path & p) { return im::test::read_text(p); }

// A small but complete evaluate on synth:tiny: real llama.cpp, real dataset synthesis and analysis.
std::vector<std::string> small_evaluate(const std::filesystem::path & out, const std::filesystem::path & db) {
    return {"evaluate", "-m", "synth:tiny", "--profile", "quick", "-n", "48", "-w", "1,2", "--max-workers", "2",
            "--out", out.string(), "--db", db.string()};
}

}  // namespace

TEST(evaluate_cli, small_run_writes_all_reports_and_records_history) {
    const auto dir = im::test::temp_dir("evaluate");
    const auto r = run_infermeter(small_evaluate(dir / "out", dir / "results.db"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("report.html:"), std::string::npos) << r.out;
    const auto md = slurp(dir / "out" / "report.md");
    for (const char * s : {"## Recommended Parameters", "### Single Request Performance", "### Parallel Workload Performance",
                           "### Parallel Scaling Analysis", "## Serving Under Load", "### What Sampling Costs",
                           "**For Real-Time/Interactive Use (SLO):**", "**Efficiency knee (lockstep):**",
                           "### Performance Recommendations", "## Reproducibility"}) {
        EXPECT_NE(md.find(s), std::string::npos) << s;
    }
    EXPECT_NE(md.find("synthetic"), std::string::npos) << "says the dataset is synthetic";
    const auto j = nlohmann::json::parse(slurp(dir / "out" / "report.json"));
    EXPECT_EQ(j["parameters"]["n_predict"], 48);
    EXPECT_EQ(j["parameters"]["n_prompt"], 128);
    EXPECT_EQ(j["tables"]["parallel"].size(), 2u);
    EXPECT_FALSE(j["interrupted"].get<bool>());
    EXPECT_EQ(j["stages_done"].size(), 5u);
    // The serving stage: continuous batching with real sampling at each measured W, then the sampling cost
    // (the quick profile: without and with CPU sampling; backend sampling is left to --profile standard).
    ASSERT_TRUE(j["serving"].is_object());
    EXPECT_EQ(j["tables"]["continuous"].size(), 2u + 2u);
    for (const auto & row : j["tables"]["continuous"]) {
        EXPECT_EQ(row["n_failed"], 0);
        EXPECT_GT(row["n_ok"].get<int>(), 0);
    }
    EXPECT_GT(j["serving"]["sampling_cost"]["cpu_sampling"]["sample_share"].get<double>(), 0.0);
    EXPECT_FALSE(j["serving"]["sampling_cost"].contains("backend_sampling")) << j["serving"]["sampling_cost"].dump();
    EXPECT_NE(j["serving"]["sampling_cost"].value("backend_sampling_error", "").find("not measured by this profile"),
              std::string::npos) << j["serving"]["sampling_cost"].dump();
    EXPECT_NE(md.find("Backend sampling did not run: not measured by this profile"), std::string::npos);
    EXPECT_TRUE(j["roofline"].is_object());
    const auto h = run_infermeter({"history", "--db", (dir / "results.db").string(), "-o", "json"});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    EXPECT_NE(h.out.find("evaluate"), std::string::npos) << h.out;
}

// Headless Chromium renders the report: every chart drew, no console error. The run reads the recorded
// NVML library (tests/support/fake_nvml.c: 412.345 W, 3 GiB used, 700 J per energy read), so the
// telemetry power chart and the energy cost are exercised on a machine without a GPU.
TEST(evaluate_cli, html_report_renders_in_chromium) {
    if (access("/usr/bin/chromium", X_OK) != 0) GTEST_SKIP() << "chromium is not installed (scripts/install-deps --test)";
    const auto dir = im::test::temp_dir("render");
    auto evaluate_args = small_evaluate(dir / "out", dir / "results.db");
    for (const char * a : {"--price-per-kwh", "0.15"}) evaluate_args.push_back(a);
    ::setenv("INFERMETER_NVML_LIB", INFERMETER_FAKE_NVML, 1);
    const auto run = run_infermeter(evaluate_args);
    ::unsetenv("INFERMETER_NVML_LIB");
    ASSERT_EQ(run.exit_code, 0) << run.err;

    // The telemetry series: every stage labelled, W on the lockstep samples, the recorded GPU readings.
    const auto j = nlohmann::json::parse(slurp(dir / "out" / "report.json"));
    const auto & t = j["telemetry"];
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["interval_s"], 0.25);
    EXPECT_EQ(t["sources"][0], "nvml");
    EXPECT_NE(std::find(t["sources"].begin(), t["sources"].end(), "proc"), t["sources"].end()) << t["sources"];
    EXPECT_EQ(t["gpu"], "NVIDIA H200 (recorded)");
    std::set<std::string> stages, levels_in_parallel;
    for (const auto & x : t["series"]) {
        if (x["stage"].is_string()) stages.insert(x["stage"].get<std::string>());
        if (x["stage"] == "parallel" && x["level"].is_number()) levels_in_parallel.insert(x["level"].dump());
        EXPECT_EQ(x["gpu_power_w"], 412.345) << x.dump();
        EXPECT_EQ(x["gpu_memory_used_mib"], 3072.0) << x.dump();
        EXPECT_TRUE(x.contains("process_rss_mib")) << x.dump();
    }
    for (const char * s : {"analyze", "bench", "parallel", "serving", "roofline", "report"}) EXPECT_TRUE(stages.count(s)) << s;
    EXPECT_EQ(levels_in_parallel, (std::set<std::string>{"1", "2"}));
    EXPECT_LE(t["samples_kept"].get<int>(), 20000);
    for (const auto & row : j["tables"]["parallel"]) {
        EXPECT_EQ(row["peak_gpu_memory_mib"], 3072.0) << row.dump();
        EXPECT_GT(row["peak_rss_mib"].get<double>(), 0.0) << row.dump();
        EXPECT_GT(row["joules_per_output_token"].get<double>(), 0.0) << row.dump();
    }
    // --price-per-kwh: dollars per million output tokens from the rows' measured energy.
    const auto & batch = j["recommendations"]["batch"];
    EXPECT_NEAR(batch["usd_per_million_output_energy"].get<double>(),
                batch["joules_per_output_token"].get<double>() * 1e6 / 3.6e6 * 0.15, 1e-9);
    EXPECT_NE(slurp(dir / "out" / "report.md").find("Energy $ / M output tokens"), std::string::npos);

    const std::string url = "file://" + (dir / "out" / "report.html").string();
    const std::vector<std::string> common = {"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                             "--disable-component-update", "--disable-sync", "--no-first-run",
                                             "--user-data-dir=" + (dir / "chrome").string(), "--enable-logging=stderr", "--v=0"};
    auto args = common;
    args.push_back("--window-size=1200,3000");
    args.push_back("--screenshot=" + (dir / "report.png").string());
    args.push_back(url);
    const auto shot = im::test::run_program("/usr/bin/chromium", args);
    ASSERT_EQ(shot.exit_code, 0) << shot.err;
    ASSERT_TRUE(std::filesystem::exists(dir / "report.png"));
    EXPECT_GT(std::filesystem::file_size(dir / "report.png"), 50'000u) << "a blank page compresses to almost nothing";
    EXPECT_EQ(shot.err.find("Uncaught"), std::string::npos) << shot.err;

    args = common;
    args.push_back("--dump-dom");
    args.push_back(url);
    const auto dom = im::test::run_program("/usr/bin/chromium", args);
    ASSERT_EQ(dom.exit_code, 0) << dom.err;
    // 8 charts of the lockstep evaluation + 3 latency/throughput charts and the sampling-cost bars + the
    // telemetry's power and memory over time.
    EXPECT_NE(dom.out.find("data-charts-drawn=\"14\""), std::string::npos) << "all 14 charts have a drawn, non-empty box";
    EXPECT_NE(dom.out.find("data-charts-total=\"14\""), std::string::npos);
    EXPECT_NE(dom.out.find("aria-label=\"Power over time\""), std::string::npos);
    EXPECT_NE(dom.out.find("aria-label=\"Memory over time\""), std::string::npos);
    EXPECT_EQ(dom.err.find("CONSOLE"), std::string::npos) << dom.err;
}

// Ctrl-C in the middle: partial reports marked interrupted, exit 130; --resume finishes without
// measuring again what was saved.
TEST(evaluate_cli, interrupt_keeps_partial_results_and_resume_finishes) {
    const auto dir = im::test::temp_dir("interrupt");
    const auto out = dir / "out";
    auto args = small_evaluate(out, dir / "results.db");
    args[args.size() - 7] = "1,2";  // -w
    const std::string bin = im::test::bin_path("infermeter");
    const pid_t pid = fork();
    if (pid == 0) {
        const int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        std::vector<char *> argv{const_cast<char *>(bin.c_str())};
        for (auto & a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    // Wait until the single-request stage has saved its results, then interrupt. The bound only
    // matters when something is wrong: on a loaded 2-core machine the stage took over 120 s once.
    bool saved = false;
    for (int i = 0; i < 4000 && !saved; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, WNOHANG), 0) << "evaluate ended before its single-request stage was saved";
        if (std::filesystem::exists(out / "report.json")) {
            try {
                saved = nlohmann::json::parse(slurp(out / "report.json"))["tables"]["bench"].size() == 2;
            } catch (...) {
            }
        }
    }
    if (!saved) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    ASSERT_TRUE(saved);
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 130);
    const auto j = nlohmann::json::parse(slurp(out / "report.json"));
    EXPECT_TRUE(j["interrupted"].get<bool>());
    EXPECT_EQ(j["tables"]["bench"].size(), 2u);
    EXPECT_NE(slurp(out / "report.md").find("Interrupted"), std::string::npos);

    args.push_back("--resume");
    const auto r = run_infermeter(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("reusing"), std::string::npos) << r.err;
    const auto done = nlohmann::json::parse(slurp(out / "report.json"));
    EXPECT_FALSE(done["interrupted"].get<bool>());
    EXPECT_EQ(done["tables"]["parallel"].size(), 2u);
    EXPECT_EQ(done["tables"]["bench"][0]["samples_ts"], j["tables"]["bench"][0]["samples_ts"]) << "bench was not measured again";
}

// Issue 9: --resume matched rows on lengths and W only, mixing configurations in one report.
TEST(evaluate_cli, resume_refuses_another_configuration_naming_the_difference) {
    const auto dir = im::test::temp_dir("resume-config");
    const auto out = dir / "out";
    const auto args = small_evaluate(out, dir / "results.db");
    ASSERT_EQ(run_infermeter(args).exit_code, 0);
    const auto before = slurp(out / "report.json");
    const auto saved = nlohmann::json::parse(before);
    ASSERT_TRUE(saved["configuration"].is_object());
    EXPECT_EQ(saved["configuration"]["model"]["header_fnv1a64"].get<std::string>().size(), 16u);

    auto other = args;
    for (const char * a : {"--resume", "--ctx-min", "1024", "-ub", "256"}) other.push_back(a);
    const auto r = run_infermeter(other);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("ctx_min: 0 → 1024"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("engine.n_ubatch: 512 → 256"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(out / "report.json"), before) << "nothing was measured or written";

    auto other_model = args;
    other_model[2] = "synth:qwen2-1.5b-q4_k_m";  // made once by the test fixture
    other_model.push_back("--resume");
    const auto m = run_infermeter(other_model);
    EXPECT_EQ(m.exit_code, 2) << m.err;
    EXPECT_NE(m.err.find("model.file_bytes"), std::string::npos) << m.err;

    auto legacy = saved;
    legacy.erase("configuration");
    {
        std::ofstream f(out / "report.json");
        f << legacy.dump(2);
    }
    auto same = args;
    same.push_back("--resume");
    const auto l = run_infermeter(same);
    EXPECT_EQ(l.exit_code, 2) << l.err;
    EXPECT_NE(l.err.find("no run configuration"), std::string::npos) << l.err;
}

// Every W the sweep may reach is checked before anything runs: --max-workers past llama.cpp's
// limit, and a configuration llama.cpp's dry run rejects, are usage errors, not a late crash.
TEST(evaluate_cli, reachable_worker_counts_are_validated_before_measuring) {
    const auto dir = im::test::temp_dir("evaluate-validate");
    auto args = small_evaluate(dir / "out", dir / "results.db");
    args[10] = "100000";  // --max-workers
    auto r = run_infermeter(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--max-workers"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("256"), std::string::npos) << r.err;

    args = small_evaluate(dir / "out2", dir / "results.db");
    for (const char * a : {"-ctv", "q8_0", "-fa", "off"}) args.push_back(a);
    r = run_infermeter(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("dry run"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out2" / "report.json")) << "refused before the first measurement";
}

TEST(evaluate_cli, bad_input) {
    const auto dir = im::test::temp_dir("evaluate-bad");
    auto r = run_infermeter({"evaluate", "--profile", "fast", "--out", dir.string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_infermeter({"evaluate", "-m", "synth:tiny", "--dataset", "/no/such.jsonl", "--out", dir.string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("/no/such.jsonl"), std::string::npos) << r.err;
    r = run_infermeter({"evaluate", "-m", "synth:tiny", "--knee", "2", "--out", dir.string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    // --price-per-kwh: finite and > 0, refused before anything runs (nothing is written).
    for (const char * bad : {"0", "-0.1", "nan", "inf", "1e9"}) {
        r = run_infermeter({"evaluate", "-m", "synth:tiny", "--price-per-kwh", bad, "--out", (dir / "kwh").string(), "--no-db"});
        EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
        EXPECT_NE(r.err.find("--price-per-kwh"), std::string::npos) << bad << ": " << r.err;
    }
    r = run_infermeter({"evaluate", "-m", "synth:tiny", "--price-per-kwh", "cheap", "--out", (dir / "kwh").string(), "--no-db"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--price-per-kwh"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "kwh"));
}

// evaluate --fast: the parallel stage predicted from step probes, the report says the recommendations
// rest on predictions, shows how they were made and where a decode step goes; --verify measures one W.
TEST(evaluate_cli, fast_predicts_the_sweep_and_verify_checks_one_worker_count) {
    const auto dir = im::test::temp_dir("evaluate-fast");
    auto args = small_evaluate(dir / "out", dir / "results.db");
    for (const char * a : {"--fast", "--verify", "2", "--no-serving"}) args.push_back(a);
    const auto r = run_infermeter(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto md = slurp(dir / "out" / "report.md");
    for (const char * s : {"| 1~ |", "| 2~ |", "These recommendations rest on **predicted** lockstep rows",
                           "### Verification: W = 2 predicted and measured", "| Regime (W) |",
                           "### Where a Decode Step Goes", "| 2 (measured) |"}) {
        EXPECT_NE(md.find(s), std::string::npos) << s;
    }
    const auto j = nlohmann::json::parse(slurp(dir / "out" / "report.json"));
    ASSERT_TRUE(j["parallel"].contains("fast")) << j["parallel"].dump();
    const auto & f = j["parallel"]["fast"];
    EXPECT_GE(f["regimes"].size(), 1u);
    EXPECT_EQ(f["step_probes"].size(), 2u * 3u);  // W = 1, 2 at three depths
    EXPECT_EQ(f["verified"]["workers"], 2);
    EXPECT_TRUE(f["verified"].contains("error_pct"));
    for (const auto & row : j["tables"]["parallel"]) EXPECT_TRUE(row["predicted"].get<bool>()) << row.dump();
    EXPECT_EQ(j["configuration"]["fast"], true);
}

// evaluate --tune (issue 11): the search runs before the bench, is a section of every report, and the
// settings it chose are the ones the measurements record (engine flags in the configuration); --resume
// reapplies them instead of searching again; a bad budget is a usage error before anything runs.
TEST(evaluate_cli, tune_runs_first_and_its_settings_drive_the_measurements) {
    const auto dir = im::test::temp_dir("evaluate-tune");
    auto args = small_evaluate(dir / "out", dir / "results.db");
    for (const char * a : {"--tune", "--tune-budget", "15s", "-t", "1", "--no-serving"}) args.push_back(a);
    const auto r = run_infermeter(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(slurp(dir / "out" / "report.json"));
    ASSERT_TRUE(j["tune"].is_object()) << j["tune"];
    EXPECT_EQ(j["tune"]["workers"], 2);
    ASSERT_GE(j["tune"]["trials"].size(), 2u);
    EXPECT_EQ(j["stages_done"][1], "tune");
    const std::string applied = j["tune"]["applied_flags"];
    EXPECT_NE(applied.find("-fa " + j["tune"]["best"]["-fa"].get<std::string>()), std::string::npos) << applied;
    EXPECT_NE(applied.find("-ub " + j["tune"]["best"]["-ub"].get<std::string>()), std::string::npos) << applied;
    // The measurements ran with the tuned settings: the configuration records them.
    EXPECT_EQ(j["configuration"]["engine"]["n_ubatch"], std::stoi(j["tune"]["best"]["-ub"].get<std::string>())) << j["configuration"];
    EXPECT_EQ(j["configuration"]["engine"]["flash_attn"], j["tune"]["best"]["-fa"]) << j["configuration"];
    const auto md = slurp(dir / "out" / "report.md");
    EXPECT_NE(md.find("## Engine Settings (`--tune`)"), std::string::npos);
    EXPECT_NE(md.find("### Tune: synth:tiny at W = 2"), std::string::npos);
    EXPECT_NE(md.find("Every stage below ran with `" + applied + "`"), std::string::npos) << applied;
    EXPECT_NE(slurp(dir / "out" / "report.html").find("<h2>Engine Settings (--tune)</h2>"), std::string::npos);

    auto bad = small_evaluate(dir / "bad", dir / "results.db");
    for (const char * a : {"--tune", "--tune-budget", "soon"}) bad.push_back(a);
    const auto b = run_infermeter(bad);
    EXPECT_EQ(b.exit_code, 2) << b.err;
    EXPECT_NE(b.err.find("--tune-budget soon"), std::string::npos) << b.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "report.json"));
}

// --profile standard's serving stage (issue 14): at least 48 requests per level, Little's law checked on
// every level, and the capacity search reuses a level at the concurrency it measured instead of a
// shorter second measurement that could contradict the table beside it.
TEST(evaluate_cli, standard_serving_levels_and_capacity_agree) {
    const auto dir = im::test::temp_dir("evaluate-standard");
    const auto r = run_infermeter({"evaluate", "-m", "synth:tiny", "--profile", "standard", "-n", "16", "-w", "1,2",
                                   "--max-workers", "2", "-t", "1", "--out", (dir / "out").string(), "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(slurp(dir / "out" / "report.json"));
    // The levels (the dataset's lengths); the sampling-cost runs after them have fixed lengths.
    std::vector<nlohmann::json> levels;
    for (const auto & l : j["tables"]["continuous"]) {
        if (l["lengths"].get<std::string>().rfind("dataset", 0) == 0) levels.push_back(l);
    }
    ASSERT_EQ(levels.size(), 2u);
    for (const auto & l : levels) {
        EXPECT_GE(l["requests"].get<int>(), 48) << l["concurrency"];
        ASSERT_TRUE(l["littles_law_error"].is_number()) << l["concurrency"];
        EXPECT_LT(l["littles_law_error"].get<double>(), 0.05) << l["concurrency"];
    }
    int reused = 0;
    for (const auto & p : j["serving"]["capacity"]["probes"]) {
        for (const auto & l : levels) {
            if (p["load"] != "C=" + std::to_string(l["concurrency"].get<int>())) continue;
            ++reused;
            EXPECT_EQ(p["requests"], l["requests"]) << p["load"];
            EXPECT_DOUBLE_EQ(p["ttft_p99_ms"].get<double>(), l["ttft_p99_ms"].get<double>()) << p["load"];
        }
    }
    EXPECT_GE(reused, 1);
}
