#pragma once

#include "report/table.h"
#include "store/store.h"
#include "workload/lockstep.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

// Where a command's results go: stdout in the -o format, and --export FILE (format by extension)
// rewritten atomically after every new result, so a late failure or Ctrl-C loses nothing.
namespace im::cli {

struct output_target {
    report::format stdout_format = report::format::md;
    std::string export_path;  // empty: none
    report::format export_format = report::format::md;

    static output_target from_flags(const std::string & o, const std::string & export_path);
    // Renders `t` (and `markdown` for md) to the export file, if any.
    void export_now(const report::table & t, const std::function<std::string()> & markdown) const;
    // Renders to stdout.
    void print(const report::table & t, const std::function<std::string()> & markdown) const;
};

// --db PATH / --no-db, on every command that records results.
void add_store_flags(CLI::App * cmd, store::store_flags & f);

std::string render(report::format f, const report::table & t, const std::function<std::string()> & markdown);

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
