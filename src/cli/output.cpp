#include "cli/output.h"

#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"

#include <fmt/format.h>

#include <cstdio>
#include <unistd.h>

namespace im::cli {

output_target output_target::from_flags(const std::string & o, const std::string & export_path) {
    output_target t;
    t.stdout_format = report::format_from_name(o, "-o");
    t.export_path = export_path;
    if (!export_path.empty()) t.export_format = report::format_from_path(export_path, "--export");
    return t;
}

void add_store_flags(CLI::App * cmd, store::store_flags & f) {
    cmd->add_option("--db", f.db_path, "Results store (SQLite; default ~/.local/share/infermeter/results.db)");
    cmd->add_flag("--no-db", f.no_db, "Do not record this run in the results store");
}

std::string render(report::format f, const report::table & t, const std::function<std::string()> & markdown) {
    switch (f) {
        case report::format::md:    return markdown();
        case report::format::csv:   return report::to_csv(t);
        case report::format::json:  return report::to_json(t).dump(2) + "\n";
        case report::format::jsonl: return report::to_jsonl(t);
        case report::format::sql:   return report::to_sql(t);
    }
    return {};
}

void output_target::export_now(const report::table & t, const std::function<std::string()> & markdown) const {
    if (!export_path.empty()) fs::write_atomic(export_path, render(export_format, t, markdown));
}

void output_target::print(const report::table & t, const std::function<std::string()> & markdown) const {
    const std::string s = render(stdout_format, t, markdown);
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

std::string lockstep_progress_text(const workload::lockstep_progress & p) {
    const int width = 30;
    const int filled = p.n_steps > 0 ? width * p.step / p.n_steps : 0;
    return fmt::format("W={:<3} {:<7} [{}{}] {}/{} {:.1f} t/s", p.workers, p.phase, std::string(filled, '#'),
                       std::string(width - filled, '.'), p.step, p.n_steps, p.tokens_per_s);
}

progress_line::progress_line() : tty_(::isatty(2) != 0), quiet_(log::quiet()) {}
progress_line::~progress_line() { clear(); }

void progress_line::update(const std::string & text) {
    if (quiet_) return;
    if (tty_) {
        fmt::print(stderr, "\r\033[K{}", text);
        std::fflush(stderr);
        dirty_ = true;
        return;
    }
    const int64_t now = clock::now_ns();
    if (now - last_plain_ns_ >= 5'000'000'000) {
        last_plain_ns_ = now;
        fmt::print(stderr, "{}\n", text);
    }
}

void progress_line::done(const std::string & text) {
    clear();
    if (!quiet_) fmt::print(stderr, "{}\n", text);
}

void progress_line::clear() {
    if (tty_ && dirty_) {
        fmt::print(stderr, "\r\033[K");
        std::fflush(stderr);
        dirty_ = false;
    }
}

}  // namespace im::cli
