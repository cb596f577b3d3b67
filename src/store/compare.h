#pragma once

#include "core/mann_whitney.h"
#include "report/kinds.h"
#include "report/table.h"
#include "store/store.h"

#include <cstddef>
#include <filesystem>
#include <map>
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
    std::string kind;          // a run kind: bench | parallel | continuous | serve | evaluate
    std::string test_time;     // from the runs table, else the first row's
    std::string model;         // model_type, else model_filename
    std::string machine;       // cpu_info, and "; gpu_info" when present
    std::string build_commit;  // llama.cpp
    bool interrupted = false;  // the run was stopped before it finished: its results are partial
    // One table per result kind (report::result_kinds(), current field lists), with this run's rows
    // (maybe none).
    std::map<std::string, report::table> tables;
    const report::table & rows_of(const std::string & kind_name) const;  // the kind must be registered
    size_t n_rows() const;                                          // over every kind
};

// Every result kind's rows of run `id` (empty tables for kinds the run has none of).
std::map<std::string, report::table> tables_of_run(const database & db, int64_t id);
// Run `id` of `db`. Throws im::error (runtime) naming the id and the store when there is none.
run_data load_run(const database & db, int64_t id);
// A report.json ({"tables": {"bench": [...], "parallel": [...], ...}}) or an --export .json of any
// result kind (an array of rows; the kind is the one whose field list fits the rows,
// report::kind_of_json_rows). Fields missing from a row read as null; unknown fields are ignored.
// Throws im::error (runtime) naming the file when it is unreadable, not JSON, or holds no result rows.
run_data load_file(const std::filesystem::path & path);

using report::direction;
enum class verdict { no_change, regression, improvement };

std::string verdict_name(verdict v);  // "no significant change" | "regression" | "improvement"

struct compare_options {
    double threshold = 0.05;  // relative change of the mean that matters (0.05: 5%)
    double alpha = 0.05;      // significance level of the Mann–Whitney U test
};

// One metric of one matched row.
struct metric_comparison {
    std::string table;   // the result kind: bench | parallel | continuous | serve
    std::string test;    // "pp512", "tg128 (t=4)", "W=4 (p128 n256)", "C=8 (fixed 128/256, greedy)"
    std::string metric;  // "t/s", "prompt t/s", "gen t/s", "overall t/s", "TTFT p99 (ms)", ...
    std::string unit;    // "t/s", "req/s", "ms"
    direction better = direction::higher_is_better;
    size_t n_a = 0, n_b = 0;
    // The figures compared: the samples' mean, or the metric's statistic (a percentile) when it has one.
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
// The same judgement of figures that are not the samples' means (a p99 latency): the change is
// value_b / value_a − 1, the Mann–Whitney U test runs on the samples behind them.
metric_comparison compare_values(double value_a, std::span<const double> a, double value_b, std::span<const double> b,
                                 direction better, const compare_options & o);

struct comparison {
    std::vector<metric_comparison> metrics;  // matched rows, in A's order, one entry per metric
    std::vector<std::string> only_in_a;      // tests A has and B lacks (and skipped rows)
    std::vector<std::string> only_in_b;
    std::vector<std::string> notes;          // what makes the comparison weaker (other model, machine, settings)
    size_t count(verdict v) const;
};

// Matches A's and B's rows kind by kind, by the kind's key and setting fields (report::result_kind;
// bench: test and engine settings; parallel: workers, n_prompt, n_predict; continuous/serve: mode,
// arrival, concurrency or rate, lengths, sampling), and compares every metric of the kind. When no
// row of a kind matches with its settings, rows are matched by their key fields alone (each once on
// each side) and a note names the settings that differ. Throws im::error (runtime) when A and B have
// no row in common.
comparison compare(const run_data & a, const run_data & b, const compare_options & o);

// What `history` shows per run: every kind's headline (report::result_kind::headline_of), the texts
// joined with " · " ("-" when none) and the JSON fields merged in the registry's order.
report::headline headline_of(const std::map<std::string, report::table> & tables);

}  // namespace im::store
