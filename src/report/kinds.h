#pragma once

#include "report/table.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

// The result-kind registry: each kind of result (bench, lockstep "parallel", continuous, serve)
// declares here, once, its table shape, the fields that identify a row, and its metrics with unit,
// better direction and where the raw samples live. The SQLite schema, `history`, `compare`,
// report.json and the JSON readers all iterate this list; nothing else names the kinds.
namespace im::report {

enum class direction { higher_is_better, lower_is_better };

// One metric `compare` judges.
struct metric_def {
    std::string name;           // as compare prints it: "t/s", "overall t/s", "TTFT p99 (ms)"
    std::string unit;           // "t/s", "req/s", "ms"
    direction better = direction::higher_is_better;
    std::string value_field;    // the row's own figure ("avg_ts", "ttft_p99_ms"): used when there are no samples
    std::string samples_field;  // raw per-repetition / per-request samples; "" when the row keeps none
    double percentile = 0;      // 0: the figure is the mean of the samples; else this percentile (type 7)
    // Samples computed from other fields (lockstep: rates from the raw times); replaces samples_field.
    std::function<std::vector<double>(const table &, size_t row)> derive;
};

// A metric's figure and samples in one row.
struct metric_values {
    std::optional<double> value;  // statistic of the samples, else value_field; empty when neither
    std::vector<double> samples;  // empty when the row keeps none
};
metric_values values_of(const metric_def & m, const table & t, size_t row);

// What `history` shows for a kind: text for the table cell (empty when the table has no row to
// show) and the same numbers for `history -o json` (every key always present, null when absent).
struct headline {
    std::string text;
    nlohmann::ordered_json fields = nlohmann::ordered_json::object();
};

struct setting_field {
    std::string name;  // "n_threads"
    std::string flag;  // "t": shown as "t=4" when the setting differs between rows
};

struct result_kind {
    std::string name;         // SQL table, report.json `tables` key: bench | parallel | continuous | serve
    std::string description;  // "single request (llama-bench semantics)"
    table shape;              // the writer's field list, no rows
    // Fields that identify a measurement when two runs are matched (bench: the test).
    std::vector<std::string> key_fields;
    std::string key_description;  // what the key fields are, in words: "test"
    // Settings that make two rows different measurements; rows are matched by them too, and by the
    // key fields alone (with a note) when nothing matches with them.
    std::vector<setting_field> setting_fields;
    std::string skipped_field;  // text field holding why a row was not measured ("" when none)
    std::vector<metric_def> metrics;
    std::function<std::string(const table &, size_t row)> label;  // "pp512", "W=4 (p128 n256)", "C=8 (...)"
    std::function<headline(const table &)> headline_of;
};

// Every kind, in the order reports, the store and compare list them.
const std::vector<result_kind> & result_kinds();
// Null when `name` is not a kind.
const result_kind * find_result_kind(const std::string & name);
// Throws an internal error (runtime) when `name` is not a kind: a programming error.
const result_kind & result_kind_of(const std::string & name);
// The kinds of run the store records: every result kind, and `evaluate` (which records several).
std::vector<std::string> run_kind_names();
// "bench, parallel, continuous, serve".
std::string result_kind_list();

// Loose readers of a cell (rows read back from JSON or an older store may hold other types or null).
std::string text_of(const value & v);                 // "" for null, "1"/"0" for booleans
std::optional<double> real_of(const value & v);       // integers widen; empty for null and text
int64_t int_of(const value & v);                      // 0 for null and text
std::vector<double> reals_of(const value & v);        // empty unless an array
// The cell of `field_name` in row `row`, or null when the table has no such field.
const value & cell(const table & t, size_t row, const std::string & field_name);

// True when row `row` was not measured (its skipped_field is non-empty).
bool row_skipped(const result_kind & k, const table & t, size_t row);

// The rows of a JSON array as a table of `shape`: fields missing from a row read as null, values of
// the wrong type as null, unknown fields are ignored, non-objects are skipped.
table table_from_json(const nlohmann::json & rows, const table & shape);
// The kind whose field list fits the keys of JSON row objects best (fewest unknown keys, then fewest
// missing fields); null when no kind shares a measured field with them.
const result_kind * kind_of_json_rows(const nlohmann::json & rows);

}  // namespace im::report
