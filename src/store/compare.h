#pragma once

#include "core/mann_whitney.h"
#include "report/table.h"
#include "store/store.h"

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

// History and comparison of recorded runs (`infermeter history`, `infermeter compare`): loading a
// run from the store or a JSON file, matching its rows with another run's, and judging each metric
// with a threshold and a Mann–Whitney U test on the raw samples. No printing.
namespace im::store {

// One side of a comparison: a run of the store, or a report.json / --export .json file.
struct run_data {
    std::string label;         // "run 12", or the file path
    std::string kind;          // bench | parallel | evaluate (a file: what its rows are)
    std::string test_time;     // from the runs table, else the first row's
    std::string model;         // model_type, else model_filename
    std::string machine;       // cpu_info, and "; gpu_info" when present
    std::string build_commit;  // llama.cpp
    bool interrupted = false;  // the run was stopped before it finished: its results are partial
    report::table bench;       // result_shape("bench") with this run's rows (maybe none)
    report::table parallel;    // result_shape("parallel") with this run's rows (maybe none)
};

// Run `id` of `db`. Throws im::error (runtime) naming the id and the store when there is none.
run_data load_run(const database & db, int64_t id);
// A report.json ({"tables": {"bench": [...], "parallel": [...]}}) or a bench/parallel --export .json
// (an array of rows, told apart by their fields). Fields missing from a row read as null; unknown
// fields are ignored. Throws im::error (runtime) naming the file when it is unreadable, not JSON, or
// holds no bench or parallel rows.
run_data load_file(const std::filesystem::path & path);
// Parses the rows of a JSON array into a table of `shape` (what load_file does per table).
report::table table_from_json(const nlohmann::json & rows, const report::table & shape);

enum class direction { higher_is_better, lower_is_better };
enum class verdict { no_change, regression, improvement };

std::string verdict_name(verdict v);  // "no significant change" | "regression" | "improvement"

struct compare_options {
    double threshold = 0.05;  // relative change of the mean that matters (0.05: 5%)
    double alpha = 0.05;      // significance level of the Mann–Whitney U test
};

// One metric of one matched row.
struct metric_comparison {
    std::string table;   // bench | parallel
    std::string test;    // "pp512", "tg128 (t=4)", "W=4 (p128 n256)"
    std::string metric;  // "t/s", "prompt t/s", "gen t/s", "overall t/s", ...
    direction better = direction::higher_is_better;
    size_t n_a = 0, n_b = 0;
    double mean_a = 0, mean_b = 0;
    double ratio = 0;    // mean_b / mean_a; NaN when mean_a is 0
    double change = 0;   // ratio − 1
    // Two-sided Mann–Whitney U p-value of the raw samples; empty when a side has fewer than 2.
    std::optional<double> p_value;
    std::optional<stats::mwu_method> method;
    // True when the test could reach alpha with these sample sizes (both sides >= 2 and
    // 2/C(n_a+n_b, n_a) < alpha) and so decided the verdict; false: judged by the threshold alone.
    bool confirmed = false;
    verdict result = verdict::no_change;
};

// Judges B's samples against A's: a regression when B is worse than A by more than the threshold and
// (when `confirmed`) p < alpha; an improvement likewise; otherwise no change. With too few samples
// for the test to reach alpha, the threshold alone decides and `confirmed` is false. Pure function.
metric_comparison compare_samples(std::span<const double> a, std::span<const double> b, direction better,
                                  const compare_options & o);

struct comparison {
    std::vector<metric_comparison> metrics;  // matched rows, in A's order, one entry per metric
    std::vector<std::string> only_in_a;      // tests A has and B lacks (and skipped rows)
    std::vector<std::string> only_in_b;
    std::vector<std::string> notes;          // what makes the comparison weaker (other model, machine, settings)
    size_t count(verdict v) const;
};

// Matches A's and B's rows (bench: by test and engine settings; parallel: by workers, n_prompt and
// n_predict) and compares every metric. When no bench row matches with its settings, rows are matched
// by test alone (each test once on each side) and a note names the settings that differ. Throws
// im::error (runtime) when A and B have no row in common.
comparison compare(const run_data & a, const run_data & b, const compare_options & o);

// The number `history` shows per run.
struct headline {
    std::optional<double> pp_ts;             // the first pp row's mean t/s
    std::optional<double> tg_ts;             // the first tg row's mean t/s
    std::optional<double> best_overall_tps;  // the best parallel overall t/s
    int best_workers = 0;                    // the W that gave it
};
headline headline_of(const report::table & bench, const report::table & parallel);

}  // namespace im::store
