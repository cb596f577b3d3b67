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
};

std::filesystem::path default_path();

// Empty tables with the current field list of every result kind (report::result_kinds()), the shapes
// `database::rows` takes. Opening a database creates these tables or migrates them to the current lists.
std::vector<report::table> result_shapes();
// Throws an internal error (runtime) when the name is not a result kind.
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
// Creates the file when missing; throws im::error (runtime) when it cannot be opened or was written
// by a newer infermeter. Not thread-safe.
class database {
  public:
    explicit database(const std::filesystem::path & path);
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
    // The rows of `table_name` recorded for run `id`, as a table with the current field list.
    report::table rows(int64_t id, const report::table & shape) const;
    int user_version() const;
    const std::filesystem::path & path() const { return path_; }

  private:
    void migrate();
    void exec(const std::string & sql) const;
    void ensure_table(const report::table & t);
    sqlite3 * db_ = nullptr;
    std::filesystem::path path_;
};

// Records a command's results unless --no-db; failures to record are warnings, never fatal.
std::optional<int64_t> record_run(const store_flags & f, const std::string & kind, const report::run_context & ctx,
                                  const std::vector<report::table> & tables, bool interrupted,
                                  const std::string & report_path = "");

}  // namespace im::store
