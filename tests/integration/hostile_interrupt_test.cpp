// Issue 16, interruption: SIGINT or SIGTERM (sometimes twice) at random moments of bench, parallel
// (lockstep and continuous) and evaluate on synth:tiny, 72 times in all (fixed seed). Every run exits 130 within seconds,
// every output it left is valid and marked interrupted, and the results store passes
// `PRAGMA integrity_check` with every recorded run marked interrupted.
#include "hostile_support.h"
#include "support/fault_server.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <random>

using im::test::child_result;

namespace {

struct loop_stats {
    int runs = 0, interrupted = 0, twice = 0, with_outputs = 0;
};

// Every table row of a bench/parallel JSON output (an array of rows) says interrupted.
void expect_marked_rows(const std::string & text, const std::string & what) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception & e) {
        ADD_FAILURE() << what << " is not valid JSON: " << e.what() << "\n" << text.substr(0, 500);
        return;
    }
    ASSERT_TRUE(j.is_array()) << what;
    EXPECT_FALSE(j.empty()) << what << ": an interrupted output still says so (a context row)";
    for (const auto & row : j) {
        EXPECT_TRUE(row.value("interrupted", false)) << what << " has a row not marked interrupted: " << row.dump();
    }
}

// integrity_check passes and every run recorded is marked interrupted. Opened read-write, as the next
// infermeter would: a journal left by a process that quit mid-transaction is rolled back first.
void expect_store_consistent(const std::filesystem::path & db) {
    if (!std::filesystem::exists(db)) return;
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    std::string check;
    char * msg = nullptr;
    const int rc = sqlite3_exec(h, "PRAGMA integrity_check", [](void * out, int, char ** v, char **) {
        *static_cast<std::string *>(out) += v[0] ? v[0] : "";
        return 0;
    }, &check, &msg);
    EXPECT_EQ(rc, SQLITE_OK) << db << ": " << (msg ? msg : "");
    sqlite3_free(msg);
    EXPECT_EQ(check, "ok") << db;
    int tables = 0;
    sqlite3_exec(h, "SELECT count(*) FROM sqlite_master WHERE name = 'runs'", [](void * out, int, char ** v, char **) {
        *static_cast<int *>(out) = v[0] ? std::atoi(v[0]) : 0;
        return 0;
    }, &tables, nullptr);
    if (tables == 1) {  // a process stopped while creating the store leaves none yet
        int unmarked = -1;
        sqlite3_exec(h, "SELECT count(*) FROM runs WHERE interrupted = 0", [](void * out, int, char ** v, char **) {
            *static_cast<int *>(out) = v[0] ? std::atoi(v[0]) : -1;
            return 0;
        }, &unmarked, nullptr);
        EXPECT_EQ(unmarked, 0) << db << ": a run recorded as complete";
    }
    sqlite3_close(h);
}

// One command, `n` times, each stopped at a random moment in [0.1, max_delay_s] s.
void interrupt_loop(const std::string & tag, int n, double max_delay_s, std::mt19937_64 & rng, loop_stats & st,
                    const std::function<std::vector<std::string>(const std::filesystem::path &)> & args_for,
                    const std::function<void(const std::filesystem::path &, const child_result &)> & check) {
    const auto dir = im::test::temp_dir("interrupt-" + tag);
    std::uniform_real_distribution<double> delay(0.1, max_delay_s);
    for (int i = 0; i < n; ++i) {
        const auto run_dir = dir / std::to_string(i);
        std::filesystem::create_directories(run_dir);
        const double at = delay(rng);
        const int sig = rng() % 2 ? SIGINT : SIGTERM;
        const bool twice = rng() % 4 == 0;
        auto args = args_for(run_dir);
        // A second signal shortly after the first: the command's "last words" path.
        child_result r;
        if (twice) {
            const std::string cmd = "\"$0\" \"$@\" & p=$!; sleep " + std::to_string(at) + "; kill -" +
                                    (sig == SIGINT ? "INT" : "TERM") + " $p; sleep 0." + std::to_string(1 + rng() % 3) +
                                    "; kill -INT $p 2>/dev/null; wait $p";
            std::vector<std::string> sh{"-c", cmd, im::test::bin_path("infermeter")};
            sh.insert(sh.end(), args.begin(), args.end());
            r = im::test::run_child("/bin/sh", sh, run_dir.string(), -1, SIGINT, 120);
            ++st.twice;
        } else {
            r = im::test::run_infermeter_child(args, run_dir.string(), at, sig, 120);
            EXPECT_LT(r.after_signal_s, 15.0) << tag << " #" << i << ": slow to stop";
        }
        ++st.runs;
        EXPECT_FALSE(r.timed_out) << tag << " #" << i;
        EXPECT_EQ(r.exit_code, 130) << tag << " #" << i << " (signal " << sig << " at " << at << " s" << (twice ? ", twice" : "")
                                    << ")\n" << r.err;
        if (r.exit_code == 130) ++st.interrupted;
        check(run_dir, r);
        if (::testing::Test::HasFailure()) {
            std::fprintf(stderr, "%s #%d failed (signal %d at %.2f s%s); stderr:\n%s\n", tag.c_str(), i, sig, at,
                         twice ? ", twice" : "", r.err.c_str());
            return;
        }
    }
    std::filesystem::remove_all(dir);
}

}  // namespace

TEST(hostile_interrupt, seventy_two_random_interruptions_leave_valid_marked_outputs) {
    const auto tiny = im::test::tiny_model().string();
    std::mt19937_64 rng(16);
    loop_stats st;
    const auto db_dir = im::test::temp_dir("interrupt-db");

    // bench: a long sweep, stopped anywhere from model load to the middle of a tg repetition.
    interrupt_loop("bench", 22, 2.5, rng, st, [&](const std::filesystem::path & d) {
        return std::vector<std::string>{"bench", "-m", tiny, "-p", "128", "-n", "64", "-r", "1000", "-t", "1", "-o",
                                        "json", "--export", (d / "b.json").string(), "--db", (db_dir / "bench.db").string()};
    }, [&](const std::filesystem::path & d, const child_result & r) {
        if (!r.out.empty()) expect_marked_rows(r.out, "bench stdout");
        if (std::filesystem::exists(d / "b.json")) {
            ++st.with_outputs;
            expect_marked_rows(im::test::slurp_file((d / "b.json").string()), "bench --export");
        }
        expect_store_consistent(db_dir / "bench.db");
    });
    ASSERT_FALSE(HasFailure());

    // parallel, lockstep: stopped in the plan, a prefill, a decode step or between worker counts.
    interrupt_loop("parallel", 20, 3.0, rng, st, [&](const std::filesystem::path & d) {
        return std::vector<std::string>{"parallel", "-m", tiny, "-w", "1,2,4,8", "-p", "64", "-n", "2048", "-t", "1",
                                        "-o", "json", "--export", (d / "p.json").string(), "--db",
                                        (db_dir / "parallel.db").string()};
    }, [&](const std::filesystem::path & d, const child_result & r) {
        if (!r.out.empty()) expect_marked_rows(r.out, "parallel stdout");
        if (std::filesystem::exists(d / "p.json")) {
            ++st.with_outputs;
            expect_marked_rows(im::test::slurp_file((d / "p.json").string()), "parallel --export");
        }
        expect_store_consistent(db_dir / "parallel.db");
    });
    ASSERT_FALSE(HasFailure());

    // parallel, continuous mode: stopped in the model load, the warmup, a level or between levels.
    interrupt_loop("continuous", 12, 3.0, rng, st, [&](const std::filesystem::path & d) {
        return std::vector<std::string>{"parallel", "--mode", "continuous", "-m", tiny, "--concurrency", "1,2,4",
                                        "--requests", "24", "-p", "64", "-n", "256", "-t", "1", "-o", "json",
                                        "--export", (d / "c.json").string(), "--db", (db_dir / "continuous.db").string()};
    }, [&](const std::filesystem::path & d, const child_result & r) {
        if (!r.out.empty()) expect_marked_rows(r.out, "continuous stdout");
        if (std::filesystem::exists(d / "c.json")) {
            ++st.with_outputs;
            expect_marked_rows(im::test::slurp_file((d / "c.json").string()), "continuous --export");
        }
        expect_store_consistent(db_dir / "continuous.db");
    });
    ASSERT_FALSE(HasFailure());

    // evaluate: stopped in the analysis, the bench, the sweep or the roofline.
    const auto data = db_dir / "data.jsonl";
    {
        std::ofstream out(data);
        for (int i = 0; i < 64; ++i) {
            out << R"({"instruction": "Write about topic )" << i << R"(.", "output": ")" << std::string(200 + i * 10, 'w')
                << "\"}\n";
        }
    }
    interrupt_loop("evaluate", 18, 4.0, rng, st, [&](const std::filesystem::path & d) {
        return std::vector<std::string>{"evaluate", "-m", tiny, "--dataset", data.string(), "--profile", "quick", "-n",
                                        "256", "-w", "1,2", "--max-workers", "2", "-t", "1", "--device-spec",
                                        "bw=20GB/s,flops=200GF", "--out", (d / "out").string(), "--db",
                                        (db_dir / "evaluate.db").string()};
    }, [&](const std::filesystem::path & d, const child_result &) {
        const auto report = d / "out" / "report.json";
        if (std::filesystem::exists(report)) {
            ++st.with_outputs;
            nlohmann::json j;
            ASSERT_NO_THROW(j = nlohmann::json::parse(im::test::slurp_file(report.string()))) << report;
            EXPECT_TRUE(j.value("interrupted", false)) << report;
            EXPECT_NE(im::test::slurp_file((d / "out" / "report.md").string()).find("nterrupted"), std::string::npos);
        }
        expect_store_consistent(db_dir / "evaluate.db");
    });
    std::fprintf(stderr, "[ figures ] interruptions: %d runs, %d exited 130 (%d with a second signal), %d left outputs\n",
                 st.runs, st.interrupted, st.twice, st.with_outputs);
    EXPECT_GE(st.interrupted, 50);
    std::filesystem::remove_all(db_dir);
}

// serve: stopped before, during or between load levels against the fault server's steady streams.
TEST(hostile_interrupt, serve_interrupted_leaves_valid_marked_outputs) {
    im::test::fault_server_options o;
    o.chunk_interval_us = 5000;
    im::test::fault_server srv(o);
    std::mt19937_64 rng(15);
    loop_stats st;
    const auto db_dir = im::test::temp_dir("interrupt-serve-db");
    interrupt_loop("serve", 8, 2.5, rng, st, [&](const std::filesystem::path & d) {
        return std::vector<std::string>{"serve", "--url", srv.url("ok"), "--concurrency", "2,4", "--requests", "40", "-n",
                                        "40", "-o", "json", "--export", (d / "s.json").string(), "--db",
                                        (db_dir / "serve.db").string()};
    }, [&](const std::filesystem::path & d, const child_result & r) {
        if (!r.out.empty()) expect_marked_rows(r.out, "serve stdout");
        if (std::filesystem::exists(d / "s.json")) {
            ++st.with_outputs;
            expect_marked_rows(im::test::slurp_file((d / "s.json").string()), "serve --export");
        }
        expect_store_consistent(db_dir / "serve.db");
    });
    std::fprintf(stderr, "[ figures ] serve interruptions: %d runs, %d exited 130, %d left outputs\n", st.runs, st.interrupted,
                 st.with_outputs);
    EXPECT_EQ(st.interrupted, st.runs);
    std::filesystem::remove_all(db_dir);
}
