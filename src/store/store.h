#pragma once

#include "report/run_context.h"
#include "report/table.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

// The SQLite results store (~/.local/share/infermeter/results.db). Each result table's columns are
// generated from the same field list the writers use; missing columns are added by migration, so
// the store and the JSON/CSV cannot drift apart.
namespace im::store {

// Where to record: the default path, --db PATH, or nowhere (--no-db).
struct store_flags {
    std::string db_path;
    bool no_db = false;
    double timeout_s = 60;  // --db-timeout: how long to wait for a store another process holds locked
};

// $XDG_DATA_HOME/infermeter/results.db or ~/.local/share/infermeter/results.db; throws a runtime
// error naming --db and XDG_DATA_HOME when there is no per-user folder (fs::data_dir).
std::filesystem::path default_path();

// PRAGMA application_id of an infermeter results store ("IMRS"): the schema marker that tells it
// apart from an unrelated SQLite file.
constexpr int32_t application_id = 0x494d5253;

// "qwen2 40.06 M Q8_0" for llama.cpp's "qwen2 ?B Q8_0": llama.cpp names sizes only for the
// published models, infermeter knows every model's parameter count. Other descriptions unchanged.
std::string model_label(const std::string & model_type, int64_t n_params);

// Empty tables with the current field list of every result kind (report::result_kinds()), the shapes
// `database::rows` takes. Opening a database creates these tables or migrates them to the current lists.
std::vector<report::table> result_shapes();
// Throws an internal error (IM_CHECK) when the name is not a result kind.
const report::table & result_shape(const std::string & table_name);

struct run_summary {
    int64_t id = 0;
    std::string kind;         // report::run_kind_names(): a result kind, or evaluate
    std::string test_time;
    std::string model_type;
    std::string model_filename;
    std::string machine;      // cpu_info, and gpu_info when present
    std::string backends;
    std::string build_commit;
    std::string command_line;
    bool interrupted = false;
    std::string report_path;  // report.json of an evaluate run
};

// Which runs `database::runs` lists. Empty strings match everything; model and machine are
// case-insensitive substrings (of model_type or model_filename; of cpu_info or gpu_info), `since`
// is an RFC 3339 prefix compared as text ("2026-11" lists runs from November 2026 on), `kind` is
// exact (one of report::run_kind_names()).
struct run_filter {
    std::string model;
    std::string machine;
    std::string since;
    std::string kind;
    int limit = 20;  // at most this many, newest first
};

// An open database, migrated to the current schema (PRAGMA user_version) and with every result table
// of result_shapes() holding the current columns (older rows read NULL in added columns).
// Creates the file when missing; throws im::error (runtime) when it cannot be opened, was written
// by a newer infermeter, is an unrelated SQLite file (other tables and no infermeter schema marker:
// nothing is created in it), or stays locked by another process past `timeout_s`. Not thread-safe.
class database {
  public:
    explicit database(const std::filesystem::path & path, double timeout_s = 60);
    ~database();
    database(const database &) = delete;
    database & operator=(const database &) = delete;

    // Records one run and its tables in one transaction; returns the run id.
    int64_t record(const std::string & kind, const report::run_context & ctx, const std::vector<report::table> & tables,
                   bool interrupted, const std::string & report_path = "");
    // Newest first; empty filters match everything. `since` is an RFC 3339 prefix ("2026-11").
    std::vector<run_summary> runs(const std::string & model_filter, const std::string & machine_filter,
                                  const std::string & since, int limit) const;
    std::vector<run_summary> runs(const run_filter & f) const;
    // Empty when no run has this id.
    std::optional<run_summary> run(int64_t id) const;
    // The rows of `table_name` recorded for run `id`, as a table with the current field list. Throws
    // im::error (runtime) naming the run, table and column when a stored value is damaged.
    report::table rows(int64_t id, const report::table & shape) const;
    int user_version() const;
    const std::filesystem::path & path() const { return path_; }

  private:
    void migrate();
    void exec(const std::string & sql) const;
    int pragma_int(const char * name) const;
    // Throws the runtime error for SQLite result code `rc` (locked: names --db-timeout).
    [[noreturn]] void fail(int rc, const std::string & what) const;
    void ensure_table(const report::table & t);
    sqlite3 * db_ = nullptr;
    std::filesystem::path path_;
    double timeout_s_ = 60;
};

// Records a command's results unless --no-db. When the store cannot record them (locked past
// --db-timeout, unwritable, not an infermeter store), the results are kept: in `kept_in` (files the
// command already wrote them to: --export, report.json) or, when that is empty, in a JSON file written
// next to the store; then throws im::error (runtime) naming the store, the cause and where the
// results are, so the command exits non-zero.
std::optional<int64_t> record_run(const store_flags & f, const std::string & kind, const report::run_context & ctx,
                                  const std::vector<report::table> & tables, bool interrupted,
                                  const std::string & report_path = "", const std::vector<std::string> & kept_in = {});
// The JSON record_run keeps when the store fails: {"kind", "interrupted", "context", "tables": {name: rows}}.
nlohmann::ordered_json unrecorded_json(const std::string & kind, const report::run_context & ctx,
                                       const std::vector<report::table> & tables, bool interrupted);

}  // namespace im::store
