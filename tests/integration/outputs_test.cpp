// Outputs are never damaged, never silently lost, and always say when a run was interrupted
// (issue 16 defects 1, 4, 5, 6, 7, 8; issue 9 "parallel --export interrupted during W=1").
#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using im::test::run_infermeter;
using im::test::run_program;
namespace fsys = std::filesystem;

namespace {

std::string slurp(const std::filesystem::path & p) { return im::test::read_text(p); }

bool is_char_device(const fsys::path & p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

// A device node in the test's folder (never /dev): 1/3 is the null device, 1/7 the full device.
bool make_node(const fsys::path & p, unsigned minor) { return ::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, minor)) == 0; }

std::string sh_quote(const std::string & s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// infermeter started in the background, stdout and stderr into files.
struct background {
    pid_t pid = -1;
    fsys::path out, err;
    background(const std::vector<std::string> & args, const fsys::path & dir) : out(dir / "stdout"), err(dir / "stderr") {
        const std::string bin = im::test::bin_path("infermeter");
        pid = fork();
        if (pid == 0) {
            const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(o, 1);
            dup2(e, 2);
            std::vector<char *> argv{const_cast<char *>(bin.c_str())};
            for (const auto & a : args) argv.push_back(const_cast<char *>(a.c_str()));
            argv.push_back(nullptr);
            execv(bin.c_str(), argv.data());
            _exit(127);
        }
    }
    int wait() {
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
};

// Waits until `pred` holds (at most `seconds`).
template <typename F> bool wait_for(F pred, double seconds) {
    for (int i = 0; i < static_cast<int>(seconds * 20); ++i) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
}

// True when every row of a --export .json array says interrupted.
void expect_all_interrupted(const nlohmann::json & rows, const std::string & what) {
    ASSERT_TRUE(rows.is_array()) << what;
    ASSERT_FALSE(rows.empty()) << what << ": an interrupted run wrote [] with no mark";
    for (const auto & r : rows) EXPECT_TRUE(r.at("interrupted").get<bool>()) << what << ": " << r.dump();
}

}  // namespace

// --- defect 1: writers --------------------------------------------------------------------------

TEST(outputs_writers, model_synth_writes_through_a_device_node) {
    const auto dir = im::test::temp_dir("out-synth-node");
    if (!make_node(dir / "null", 3)) GTEST_SKIP() << "mknod needs root";
    const auto r = run_infermeter({"model", "synth", "--preset", "tiny", "--quant", "q8_0", "-o", (dir / "null").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_char_device(dir / "null")) << "the device node was replaced by a regular file";
    for (const auto & e : fsys::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "null") << "left behind: " << e.path();
}

// export_md_or_json (roofline, tune): through a device node of the test's own, into a .json file.
TEST(outputs_writers, roofline_export_writes_through_a_device_node_and_json_by_suffix) {
    const auto dir = im::test::temp_dir("out-roofline-node");
    if (!make_node(dir / "null", 3)) GTEST_SKIP() << "mknod needs root";
    auto r = run_infermeter({"roofline", "-m", "synth:tiny", "--device-spec", "H100 SXM", "--export", (dir / "null").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_char_device(dir / "null")) << "the device node was replaced by a regular file";
    for (const auto & e : fsys::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "null") << "left behind: " << e.path();
    const auto json = dir / "r.json";
    r = run_infermeter({"roofline", "-m", "synth:tiny", "--device-spec", "H100 SXM", "--export", json.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(im::test::read_text(json))["schema_version"], 1);
}

TEST(outputs_writers, model_synth_refuses_to_overwrite_a_file_that_is_not_gguf) {
    const auto dir = im::test::temp_dir("out-synth-force");
    const auto notes = dir / "notes.txt";
    std::ofstream(notes) << "precious\n";
    auto r = run_infermeter({"model", "synth", "--preset", "tiny", "--quant", "q8_0", "-o", notes.string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(notes), "precious\n");
    r = run_infermeter({"model", "synth", "--preset", "tiny", "--quant", "q8_0", "-o", notes.string(), "--force"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(slurp(notes).substr(0, 4), "GGUF");
    // An existing GGUF is simply replaced.
    r = run_infermeter({"model", "synth", "--preset", "tiny", "--quant", "q8_0", "-o", notes.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(outputs_writers, analyze_refuses_to_export_over_its_dataset) {
    const auto dir = im::test::temp_dir("out-analyze-input");
    const auto data = dir / "x.json";
    const std::string content = R"([{"instruction": "a", "input": "", "output": "b"}])";
    std::ofstream(data) << content;
    const auto r = run_infermeter({"analyze", "--dataset", data.string(), "-m", "synth:tiny", "--export", data.string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--dataset"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(data), content);
}

TEST(outputs_writers, bench_export_through_a_symlink_keeps_the_link) {
    const auto dir = im::test::temp_dir("out-bench-link");
    std::ofstream(dir / "real.json") << "old";
    fsys::create_symlink("real.json", dir / "link.json");
    const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "16", "-n", "0", "-r", "1", "--no-warmup", "--export",
                                   (dir / "link.json").string(), "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fsys::is_symlink(dir / "link.json"));
    const auto j = nlohmann::json::parse(slurp(dir / "real.json"));
    ASSERT_EQ(j.size(), 1u);
    EXPECT_FALSE(j[0]["interrupted"].get<bool>());
}

// --- defect 4: lost results ---------------------------------------------------------------------

TEST(outputs_lost, stdout_on_a_full_device_fails_the_command) {
    const auto dir = im::test::temp_dir("out-full");
    if (!make_node(dir / "full", 7)) GTEST_SKIP() << "mknod needs root";
    const std::string bin = im::test::bin_path("infermeter");
    const std::string full = sh_quote((dir / "full").string());
    const std::vector<std::string> commands = {"model info synth:tiny --json",
                                               "history --db " + sh_quote((dir / "r.db").string()) + " -o json",
                                               "bench -m synth:tiny -p 16 -n 0 -r 1 --no-warmup -o json --no-db"};
    for (const auto & cmd : commands) {
        const auto r = run_program("/bin/sh", {"-c", sh_quote(bin) + " " + cmd + " > " + full});
        EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.err;
        EXPECT_NE(r.err.find("cannot write to stdout"), std::string::npos) << cmd << ": " << r.err;
    }
}

TEST(outputs_lost, a_locked_store_fails_the_command_and_names_where_results_are) {
    const auto dir = im::test::temp_dir("out-locked");
    const auto db = dir / "results.db";
    {
        const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "16", "-n", "0", "-r", "1", "--no-warmup",
                                       "--db", db.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    sqlite3 * holder = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &holder), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    const auto exp = dir / "b.json";
    const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "16", "-n", "0", "-r", "1", "--no-warmup", "--db",
                                   db.string(), "--db-timeout", "1", "--export", exp.string()});
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("locked"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(exp.string()), std::string::npos) << "the error must say where the results are: " << r.err;
    EXPECT_EQ(nlohmann::json::parse(slurp(exp)).size(), 1u);
}

// --- defect 5 + issue 9: interrupted runs are marked everywhere ----------------------------------

// SIGINT during W=1: the export, stdout and the store hold the partial row, marked.
TEST(outputs_interrupted, parallel_sigint_during_the_first_worker_count) {
    const auto dir = im::test::temp_dir("out-par-int");
    const auto exp = dir / "p.json", db = dir / "r.db";
    background run({"parallel", "-m", "synth:tiny", "-w", "1,2", "-p", "16", "-n", "3000", "--no-warmup", "-o", "json",
                    "--export", exp.string(), "--db", db.string()},
                   dir);
    ASSERT_TRUE(wait_for([&] { return fsys::exists(exp); }, 120)) << slurp(run.err);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // into W=1's decode steps
    kill(run.pid, SIGINT);
    EXPECT_EQ(run.wait(), 130) << slurp(run.err);
    const auto rows = nlohmann::json::parse(slurp(exp));
    expect_all_interrupted(rows, "--export");
    EXPECT_EQ(rows[0]["workers"], 1);
    EXPECT_TRUE(rows[0]["partial"].get<bool>()) << rows[0].dump();
    if (!rows[0]["gen_tps"].is_null()) {
        EXPECT_GT(rows[0]["gen_tps"].get<double>(), 0);
        EXPECT_LT(rows[0]["n_predict"].get<int>(), 3000);
    }
    expect_all_interrupted(nlohmann::json::parse(slurp(run.out)), "stdout");
    const auto h = run_infermeter({"history", "--db", db.string(), "-o", "json"});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    const auto runs = nlohmann::json::parse(h.out);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_TRUE(runs[0]["interrupted"].get<bool>());
}

// parallel --fast --verify: Ctrl-C during the probes or the verification run leaves the predicted rows,
// every output marked interrupted, exit 130.
TEST(outputs_interrupted, parallel_fast_sigint_keeps_the_predictions_marked) {
    const auto dir = im::test::temp_dir("out-par-fast-int");
    const auto exp = dir / "p.json", db = dir / "r.db";
    background run({"parallel", "-m", "synth:tiny", "-w", "1,2", "-p", "16", "-n", "3000", "--fast", "--verify", "2", "-o",
                    "json", "--export", exp.string(), "--db", db.string()},
                   dir);
    ASSERT_TRUE(wait_for([&] { return fsys::exists(exp); }, 120)) << slurp(run.err);
    std::this_thread::sleep_for(std::chrono::milliseconds(4000));  // past the probes, into W=2's measured steps
    kill(run.pid, SIGINT);
    EXPECT_EQ(run.wait(), 130) << slurp(run.err);
    const auto rows = nlohmann::json::parse(slurp(exp));
    expect_all_interrupted(rows, "--export");
    expect_all_interrupted(nlohmann::json::parse(slurp(run.out)), "stdout");
    for (const auto & r : rows) {
        if (!r["workers"].is_null()) EXPECT_TRUE(r["predicted"].get<bool>()) << r.dump();  // no half-measured row
    }
    const auto h = run_infermeter({"history", "--db", db.string(), "-o", "json"});
    ASSERT_EQ(h.exit_code, 0) << h.err;
    const auto runs = nlohmann::json::parse(h.out);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_TRUE(runs[0]["interrupted"].get<bool>());
}

// A quick second Ctrl-C: the process quits at once, and what it leaves still says interrupted.
TEST(outputs_interrupted, parallel_quick_second_sigint) {
    const auto dir = im::test::temp_dir("out-par-int2");
    const auto exp = dir / "p.csv";
    background run({"parallel", "-m", "synth:tiny", "-w", "1,2", "-p", "16", "-n", "3000", "--no-warmup", "-o", "json",
                    "--export", exp.string(), "--no-db"},
                   dir);
    ASSERT_TRUE(wait_for([&] { return fsys::exists(exp); }, 120)) << slurp(run.err);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    kill(run.pid, SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    kill(run.pid, SIGINT);
    EXPECT_EQ(run.wait(), 130) << slurp(run.err);
    const std::string csv = slurp(exp);
    ASSERT_NE(csv.find('\n'), std::string::npos) << csv;
    const std::string header = csv.substr(0, csv.find('\n'));
    EXPECT_NE(header.find("interrupted"), std::string::npos);
    EXPECT_GE(std::count(csv.begin(), csv.end(), '\n'), 2) << "no row in " << csv;
    expect_all_interrupted(nlohmann::json::parse(slurp(run.out)), "stdout");
}

// SIGTERM during a test: its finished repetitions are kept, marked partial and interrupted.
TEST(outputs_interrupted, bench_sigterm_keeps_finished_repetitions) {
    const auto dir = im::test::temp_dir("out-bench-term");
    const auto exp = dir / "b.json";
    background run({"bench", "-m", "synth:tiny", "-p", "0", "-n", "128", "-r", "200", "--no-warmup", "-o", "md",
                    "--export", exp.string(), "--no-db"},
                   dir);
    ASSERT_TRUE(wait_for([&] { return fsys::exists(exp); }, 120)) << slurp(run.err);
    std::this_thread::sleep_for(std::chrono::milliseconds(4000));
    kill(run.pid, SIGTERM);
    EXPECT_EQ(run.wait(), 130) << slurp(run.err);
    const auto rows = nlohmann::json::parse(slurp(exp));
    expect_all_interrupted(rows, "--export");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0]["partial"].get<bool>());
    const size_t n = rows[0]["samples_ts"].size();
    EXPECT_GE(n, 1u) << "the finished repetitions were thrown away";
    EXPECT_LT(n, 200u);
    EXPECT_NE(slurp(run.out).find("Interrupted"), std::string::npos) << slurp(run.out);
}

// evaluate: after a quick second Ctrl-C, report.json says interrupted and report.md has the banner.
TEST(outputs_interrupted, evaluate_quick_second_sigint_marks_the_reports) {
    const auto dir = im::test::temp_dir("out-eval-int2");
    const auto out = dir / "out";
    background run({"evaluate", "-m", "synth:tiny", "--profile", "quick", "-n", "48", "-w", "1,2", "--max-workers", "2",
                    "--out", out.string(), "--no-db"},
                   dir);
    ASSERT_TRUE(wait_for(
        [&] {
            try {
                return nlohmann::json::parse(slurp(out / "report.json"))["tables"]["bench"].size() == 2;
            } catch (...) {
                return false;
            }
        },
        300))
        << slurp(run.err);
    kill(run.pid, SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    kill(run.pid, SIGINT);
    EXPECT_EQ(run.wait(), 130) << slurp(run.err);
    const auto j = nlohmann::json::parse(slurp(out / "report.json"));
    EXPECT_TRUE(j["interrupted"].get<bool>());
    EXPECT_EQ(j["tables"]["bench"].size(), 2u);
    for (const auto & row : j["tables"]["bench"]) EXPECT_TRUE(row["interrupted"].get<bool>()) << row.dump();
    EXPECT_NE(slurp(out / "report.md").find("Interrupted"), std::string::npos);
    EXPECT_NE(slurp(out / "report.html").find("Interrupted"), std::string::npos);
}

// --- defect 6/8: history and the store ----------------------------------------------------------

TEST(outputs_store, history_skips_and_names_a_damaged_run) {
    const auto dir = im::test::temp_dir("out-hist-damaged");
    const auto db = dir / "r.db";
    for (int i = 0; i < 2; ++i) {
        const auto r = run_infermeter({"bench", "-m", "synth:tiny", "-p", "16", "-n", "0", "-r", "2", "--no-warmup", "--db",
                                       db.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "UPDATE bench SET samples_ns = 'garbage[' WHERE run_id = 1", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
    const auto r = run_infermeter({"history", "--db", db.string(), "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("run 1"), std::string::npos) << r.err;
    const auto runs = nlohmann::json::parse(r.out);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0]["id"], 2);
    // infermeter knows the parameter count of synth:tiny: no "?B".
    EXPECT_EQ(runs[0]["model_type"].get<std::string>().find("?B"), std::string::npos) << runs[0]["model_type"];
}

TEST(outputs_store, an_unrelated_sqlite_file_is_left_alone) {
    const auto dir = im::test::temp_dir("out-unrelated");
    const auto db = dir / "app.sqlite";
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "CREATE TABLE orders (id INTEGER)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
    const auto r = run_infermeter({"history", "--db", db.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("--db"), std::string::npos) << r.err;
    sqlite3_open(db.c_str(), &h);
    sqlite3_stmt * s = nullptr;
    sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master", -1, &s, nullptr);
    sqlite3_step(s);
    EXPECT_EQ(sqlite3_column_int(s, 0), 1) << "tables were created in an unrelated SQLite file";
    sqlite3_finalize(s);
    sqlite3_close(h);
}

// --- HOME --------------------------------------------------------------------------------------

TEST(outputs_home, unset_home_never_uses_the_shared_temp_folder) {
    const auto r = run_program("/usr/bin/env", {"-u", "HOME", "-u", "XDG_DATA_HOME", im::test::bin_path("infermeter"),
                                                "history"});
    const std::string tmp = fsys::temp_directory_path().string();
    EXPECT_EQ(r.err.find(tmp + "/infermeter/"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find(tmp + "/infermeter/"), std::string::npos) << r.out;
}

TEST(outputs_home, unwritable_cache_error_does_not_mention_o) {
    const auto dir = im::test::temp_dir("out-home-ro");
    std::ofstream(dir / "home") << "a file, so nothing can be created under it (root ignores permissions)";
    const auto r = run_program("/usr/bin/env", {"-u", "XDG_CACHE_HOME", "HOME=" + (dir / "home").string(),
                                                im::test::bin_path("infermeter"), "model", "synth", "--preset", "tiny",
                                                "--quant", "q8_0"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.find(" -o"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("(-o"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("XDG_CACHE_HOME"), std::string::npos) << r.err;
}
