#include "cli/output.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace im::cli {

output_target output_target::from_flags(const std::string & o, const std::string & export_path) {
    output_target t;
    t.stdout_format = report::format_from_name(o, "-o");
    t.export_path = export_path;
    if (!export_path.empty()) t.export_format = report::format_from_path(export_path, "--export");
    return t;
}

void output_target::refuse_inputs(const std::vector<std::pair<std::filesystem::path, std::string>> & inputs) const {
    fs::refuse_input_overwrite(export_path, "--export", inputs);
}

void add_store_flags(CLI::App * cmd, store::store_flags & f) {
    cmd->add_option("--db", f.db_path, "Results store (SQLite; default $XDG_DATA_HOME/infermeter/results.db or "
                                       "~/.local/share/infermeter/results.db)");
    cmd->add_flag("--no-db", f.no_db, "Do not record this run in the results store");
    cmd->add_option("--db-timeout", f.timeout_s,
                    "Seconds to wait for a results store another process holds locked; past it the run is not "
                    "recorded, its results are kept in a JSON file and the command fails")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 86400.0));
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
    if (export_path.empty()) return;
    auto lock = interrupt::hold_outputs();
    fs::write_output(export_path, render(export_format, t, markdown), "--export");
}

void output_target::print(const report::table & t, const std::function<std::string()> & markdown) const {
    print_stdout(render(stdout_format, t, markdown));
}

namespace {

int g_stdout_errno = 0;

}  // namespace

double duration_seconds(const std::string & s, const char * flag) {
    const auto bad = [&] { throw_usage("{} {}: give seconds, or a number with s, m or h (e.g. 10m)", flag, s); };
    if (s.empty()) bad();
    double mult = 1;
    std::string num = s;
    switch (s.back()) {
        case 's': num.pop_back(); break;
        case 'm': mult = 60; num.pop_back(); break;
        case 'h': mult = 3600; num.pop_back(); break;
        default: break;
    }
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(num, &used);
    } catch (const std::exception &) {
        bad();
    }
    if (used != num.size() || !std::isfinite(v) || v <= 0 || v * mult > 7 * 24 * 3600.0) bad();
    return v * mult;
}

void export_md_or_json(const std::string & path, const std::function<std::string()> & markdown,
                       const std::function<std::string()> & json) {
    if (path.empty()) return;
    const bool is_json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
    fs::write_output(path, is_json ? json() : markdown(), "--export");
    log::info("wrote {}", path);
}

void print_stdout(const std::string & text) {
    if (g_stdout_errno != 0) return;
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
        g_stdout_errno = errno != 0 ? errno : EIO;
    }
}

void finish_stdout() {
    static bool done = false;
    if (done) return;
    done = true;
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        if (g_stdout_errno == 0) g_stdout_errno = errno != 0 ? errno : EIO;
    }
    if (std::fclose(stdout) != 0 && g_stdout_errno == 0) g_stdout_errno = errno != 0 ? errno : EIO;
    if (g_stdout_errno != 0) {
        throw_runtime("cannot write to stdout: {}; what was printed is lost (--export FILE keeps results in a file)",
                      std::strerror(g_stdout_errno));
    }
}

results_writer::results_writer(output_target out, store::store_flags db, std::string kind,
                               std::function<report::table(bool)> table, std::function<std::string(bool)> markdown)
    : out_(std::move(out)), db_(std::move(db)), kind_(std::move(kind)), table_(std::move(table)),
      markdown_(std::move(markdown)), key_(fmt::format("results:{}:{}", kind_, static_cast<const void *>(this))) {}

results_writer::~results_writer() { interrupt::clear_last_words(key_); }

void results_writer::set_last_words(const report::run_context & ctx) {
    // Rendered now, so the helper thread that runs them never reads data the command is changing.
    const report::table t = table_(true);
    const std::string printed = render(out_.stdout_format, t, [&] { return markdown_(true); });
    store::store_flags db = db_;
    db.timeout_s = std::min(db.timeout_s, 5.0);  // the user asked to quit now
    std::vector<std::string> kept;
    if (!out_.export_path.empty()) kept.push_back(out_.export_path);
    interrupt::set_last_words(key_, [printed, db, kind = kind_, ctx, t, kept] {
        print_stdout(printed);
        store::record_run(db, kind, ctx, {t}, true, "", kept);
    });
}

void results_writer::update(const report::run_context & ctx) {
    auto lock = interrupt::hold_outputs();
    out_.export_now(table_(true), [&] { return markdown_(true); });
    set_last_words(ctx);
}

void results_writer::finish(const report::run_context & ctx, bool interrupted) {
    {
        auto lock = interrupt::hold_outputs();
        set_last_words(ctx);  // the store, should a second signal come before it is written
        out_.export_now(table_(interrupted), [&] { return markdown_(interrupted); });
        print_stdout(render(out_.stdout_format, table_(interrupted), [&] { return markdown_(interrupted); }));
        interrupt::set_last_words(key_, [] {});  // printed: a second signal now only stops the store write
    }
    std::vector<std::string> kept;
    if (!out_.export_path.empty()) kept.push_back(out_.export_path);
    store::record_run(db_, kind_, ctx, {table_(interrupted)}, interrupted, "", kept);
    interrupt::clear_last_words(key_);
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
