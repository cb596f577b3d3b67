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

struct run_summary {
    int64_t id = 0;
    std::string kind;         // bench | parallel | evaluate | ...
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

// An open database, migrated to the current schema. Not thread-safe.
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
    std::optional<run_summary> run(int64_t id) const;
    // The rows of `table_name` recorded for run `id`, as a table with the current field list.
    report::table rows(int64_t id, const report::table & shape) const;
    int user_version() const;

  private:
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
