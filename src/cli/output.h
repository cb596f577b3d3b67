#pragma once

#include "report/table.h"
#include "store/store.h"
#include "workload/lockstep.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

// Where a command's results go: stdout in the -o format, and --export FILE (format by extension)
// rewritten after every new result (core/fs.h write_output: atomic for files, written through for
// devices and FIFOs), so a late failure or Ctrl-C loses nothing.
namespace im::cli {

struct output_target {
    report::format stdout_format = report::format::md;
    std::string export_path;  // empty: none
    report::format export_format = report::format::md;

    static output_target from_flags(const std::string & o, const std::string & export_path);
    // Throws a usage error when --export names one of the run's inputs (path, flag).
    void refuse_inputs(const std::vector<std::pair<std::filesystem::path, std::string>> & inputs) const;
    // Renders `t` (and `markdown` for md) to the export file, if any.
    void export_now(const report::table & t, const std::function<std::string()> & markdown) const;
    // Renders to stdout (print_stdout).
    void print(const report::table & t, const std::function<std::string()> & markdown) const;
};

// The results of a measuring command (bench, parallel) and every place they go. `table` and
// `markdown` render what was measured so far, as a complete run or as an interrupted one.
class results_writer {
  public:
    results_writer(output_target out, store::store_flags db, std::string kind,
                   std::function<report::table(bool interrupted)> table,
                   std::function<std::string(bool interrupted)> markdown);
    ~results_writer();
    results_writer(const results_writer &) = delete;
    results_writer & operator=(const results_writer &) = delete;

    // After each new result: rewrites --export, marked interrupted until the run completes (so a file
    // left by a killed run never passes for a complete one), and sets the last words a second Ctrl-C
    // runs: stdout and the store, marked interrupted.
    void update(const report::run_context & ctx);
    // At the end: --export, stdout, then the store, each marked with `interrupted`. Throws a runtime
    // error, after writing everything else, when the store could not record the run.
    void finish(const report::run_context & ctx, bool interrupted);

  private:
    void set_last_words(const report::run_context & ctx);
    output_target out_;
    store::store_flags db_;
    std::string kind_;
    std::function<report::table(bool)> table_;
    std::function<std::string(bool)> markdown_;
    std::string key_;
};

// --db PATH / --no-db / --db-timeout, on every command that records results.
void add_store_flags(CLI::App * cmd, store::store_flags & f);

std::string render(report::format f, const report::table & t, const std::function<std::string()> & markdown);

// Writes `text` to stdout and flushes. A failure (disk full, closed pipe) is remembered, not thrown,
// so the command still records its results; finish_stdout reports it.
void print_stdout(const std::string & text);
// Flushes and closes stdout (once, when the command ends); throws a runtime error naming the cause
// when anything written to stdout was lost.
void finish_stdout();

// --export FILE of a command whose report is markdown or JSON: JSON when FILE ends in .json, else
// markdown (fs::write_output: atomic for files, through for devices); logs where it went.
void export_md_or_json(const std::string & path, const std::function<std::string()> & markdown,
                       const std::function<std::string()> & json);

// "90", "90s", "10m", "1h" -> seconds (> 0, at most a week); a usage error naming `flag` otherwise.
double duration_seconds(const std::string & text, const char * flag);

// "W=8   decode  [#########.....] 1200/4096 181.6 t/s": one lockstep progress event as a bar.
std::string lockstep_progress_text(const workload::lockstep_progress & p);

// Progress on stderr: a redrawn line on a TTY, plain lines otherwise; nothing with --quiet.
class progress_line {
  public:
    progress_line();
    ~progress_line();
    void update(const std::string & text);  // TTY: redraw; otherwise throttled to one line per 5 s
    void done(const std::string & text);    // a final line
    void clear();

  private:
    bool tty_ = false;
    bool quiet_ = false;
    bool dirty_ = false;
    int64_t last_plain_ns_ = 0;
};

}  // namespace im::cli
