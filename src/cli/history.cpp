#include "cli/commands.h"

#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "cli/output.h"
#include "report/kinds.h"
#include "report/table.h"
#include "store/compare.h"
#include "store/store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <memory>
#include <regex>

namespace im::cli {

namespace {


struct history_args {
    std::string db_path;
    store::run_filter filter;
    std::string output = "md";
};

struct compare_args {
    std::string a, b;
    std::string db_path;
    store::compare_options options;
    std::string output = "md";
};

std::filesystem::path store_path(const std::string & db_path) {
    return db_path.empty() ? store::default_path() : std::filesystem::path(db_path);
}

void add_db_flag(CLI::App * cmd, std::string & path) {
    cmd->add_option("--db", path, "Results store (SQLite; default $XDG_DATA_HOME/infermeter/results.db or "
                                  "~/.local/share/infermeter/results.db)");
}

bool is_markdown(const std::string & o, const std::string & flag) {
    if (o == "md") return true;
    if (o == "json") return false;
    throw_usage("{}: unknown output format '{}' (md, json)", flag, o);
}

void print_out(const std::string & s) { print_stdout(s); }

// The parameter count infermeter recorded with the run's rows (0 when none).
int64_t n_params_of(const std::map<std::string, report::table> & tables) {
    for (const auto & [kind, t] : tables) {
        if (t.rows.empty()) continue;
        if (const auto * n = std::get_if<int64_t>(&report::cell(t, 0, "model_n_params"))) return *n;
    }
    return 0;
}

// Markdown table cells: a '|' in a model name would split the cell.
std::string cell(const std::string & s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += '\\';
        out += c == '\n' ? ' ' : c;
    }
    return out;
}

nlohmann::ordered_json json_number(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); }

// --- history ---------------------------------------------------------------------------------------

void run_history(const history_args & a) {
    const bool md = is_markdown(a.output, "-o");
    if (a.filter.limit < 1) throw_usage("-n: the number of runs must be >= 1 (got {})", a.filter.limit);
    store::run_filter f = a.filter;
    const auto kinds = report::run_kind_names();
    if (!f.kind.empty() && std::find(kinds.begin(), kinds.end(), f.kind) == kinds.end()) {
        throw_usage("--kind: unknown kind '{}' ({})", f.kind, fmt::join(kinds, ", "));
    }
    std::replace(f.since.begin(), f.since.end(), ' ', 'T');
    static const std::regex rfc3339_prefix(R"(\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2})?)?)?)?)?)");
    if (!f.since.empty() && !std::regex_match(f.since, rfc3339_prefix)) {
        throw_usage("--since: '{}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM)", a.filter.since);
    }

    const auto path = store_path(a.db_path);
    std::vector<store::run_summary> runs;
    std::vector<report::headline> heads;
    if (std::filesystem::exists(path)) {
        store::database db(path);
        std::vector<int64_t> damaged;
        for (auto & r : db.runs(f)) {
            try {
                const auto tables = store::tables_of_run(db, r.id);
                heads.push_back(store::headline_of(tables));
                r.model_type = store::model_label(r.model_type, n_params_of(tables));
                runs.push_back(r);
            } catch (const im::error & e) {
                // One damaged row must not hide every other run.
                log::warn("{}", e.what());
                damaged.push_back(r.id);
            }
        }
        if (!damaged.empty()) {
            log::warn("skipped {} damaged run{} ({}); the other runs are listed", damaged.size(),
                      damaged.size() == 1 ? "" : "s", fmt::format("id {}", fmt::join(damaged, ", ")));
        }
    } else {
        log::warn("no results store at {} yet (bench, parallel and evaluate record there; --db PATH for another)",
                  path.string());
    }

    if (!md) {
        nlohmann::ordered_json arr = nlohmann::ordered_json::array();
        for (size_t i = 0; i < runs.size(); ++i) {
            const auto & r = runs[i];
            const auto & h = heads[i];
            nlohmann::ordered_json j;
            j["id"] = r.id;
            j["kind"] = r.kind;
            j["test_time"] = r.test_time;
            j["model_type"] = r.model_type;
            j["model_filename"] = r.model_filename;
            j["machine"] = r.machine;
            j["backends"] = r.backends;
            j["build_commit"] = r.build_commit;
            j["interrupted"] = r.interrupted;
            j["report_path"] = r.report_path;
            j["command_line"] = r.command_line;
            j.update(h.fields);
            arr.push_back(std::move(j));
        }
        print_out(arr.dump(2) + "\n");
        return;
    }
    if (runs.empty()) {
        print_out(std::filesystem::exists(path) ? "No recorded runs match these filters.\n" : "No runs recorded yet.\n");
        return;
    }
    std::string out = "| ID | Time | Kind | Model | Machine | Backends | llama.cpp | Headline |\n"
                      "|---:|------|------|-------|---------|----------|-----------|----------|\n";
    for (size_t i = 0; i < runs.size(); ++i) {
        const auto & r = runs[i];
        std::string time = r.test_time.substr(0, 16);
        std::replace(time.begin(), time.end(), 'T', ' ');
        const std::string model = !r.model_type.empty() ? r.model_type : std::filesystem::path(r.model_filename).filename().string();
        out += fmt::format("| {} | {} | {}{} | {} | {} | {} | {} | {} |\n", r.id, time, r.kind,
                           r.interrupted ? " (interrupted)" : "", cell(model), cell(r.machine), cell(r.backends),
                           cell(r.build_commit), heads[i].text.empty() ? "-" : heads[i].text);
    }
    print_out(out);
}

// --- compare ---------------------------------------------------------------------------------------

bool is_run_id(const std::string & s) {
    return !s.empty() && s.size() < 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

store::run_data load_side(const std::string & arg, const std::string & db_path) {
    if (!is_run_id(arg)) return store::load_file(arg);
    const auto path = store_path(db_path);
    if (!std::filesystem::exists(path)) {
        throw_runtime("run {}: there is no results store at {} (record runs with bench, parallel or evaluate, or point "
                      "--db at a store; to compare a file named {}, write ./{})",
                      arg, path.string(), arg, arg);
    }
    const store::database db(path);
    return store::load_run(db, std::stoll(arg));
}

std::string p_text(const store::metric_comparison & m) {
    if (!m.p_value) return "n/a";
    if (*m.p_value < 0.001) return "< 0.001";
    return fmt::format("{:.3f}", *m.p_value);
}

std::string verdict_text(const store::metric_comparison & m, double threshold) {
    const std::string v = store::verdict_name(m.result);
    if (m.result != store::verdict::no_change) return m.confirmed ? v : v + " (unconfirmed)";
    // Beyond the threshold but not significant: say so, the mean alone would suggest otherwise.
    return std::abs(m.change) > threshold ? v + " (noisy: p >= alpha)" : v;
}

std::string signed_percent(double change) {
    if (!std::isfinite(change)) return "n/a";
    return fmt::format("{:+.1f}%", change * 100.0);
}

std::string compare_markdown(const store::run_data & a, const store::run_data & b, const store::comparison & c,
                             const store::compare_options & o) {
    std::string out = "## Comparison\n\n| | Run | Time | Model | Machine | llama.cpp |\n|---|---|---|---|---|---|\n";
    for (const auto * d : {&a, &b}) {
        out += fmt::format("| {} | {} ({}{}) | {} | {} | {} | {} |\n", d == &a ? "A" : "B", cell(d->label), d->kind,
                           d->interrupted ? ", **interrupted**" : "", d->test_time, cell(d->model), cell(d->machine),
                           cell(d->build_commit));
    }
    out += "\n| Test | Metric | A mean | B mean | B/A | Change | p (Mann–Whitney) | Verdict |\n"
           "|------|--------|-------:|-------:|----:|-------:|-----------------:|---------|\n";
    size_t unconfirmed = 0;
    for (const auto & m : c.metrics) {
        if (!m.confirmed) ++unconfirmed;
        out += fmt::format("| {} | {} | {} (n={}) | {} (n={}) | {} | {} | {} | {} |\n", cell(m.test), m.metric,
                           fmtx::thousands(m.mean_a), m.n_a, fmtx::thousands(m.mean_b), m.n_b,
                           std::isfinite(m.ratio) ? fmt::format("{:.3f}", m.ratio) : std::string("n/a"),
                           signed_percent(m.change), p_text(m), verdict_text(m, o.threshold));
    }
    const size_t reg = c.count(store::verdict::regression), imp = c.count(store::verdict::improvement);
    out += fmt::format("\n**{} regression{}, {} improvement{}, {} without significant change** (threshold ±{}, alpha {}; "
                       "higher t/s is better, lower times are better).\n",
                       reg, reg == 1 ? "" : "s", imp, imp == 1 ? "" : "s", c.metrics.size() - reg - imp,
                       fmt::format("{:g}%", o.threshold * 100), o.alpha);
    std::vector<std::string> notes = c.notes;
    if (unconfirmed > 0) {
        notes.push_back(fmt::format(
            "{} of {} metrics were judged by the threshold alone (unconfirmed): the Mann–Whitney U test needs at least 2 "
            "samples a side, and enough of them to reach p < {} at all (3 vs 3 repetitions can give no p below 0.1; "
            "4 vs 4: 0.029); record runs with -r 5 or more",
            unconfirmed, c.metrics.size(), o.alpha));
    }
    if (!c.only_in_a.empty()) {
        std::string s;
        for (const auto & t : c.only_in_a) s += (s.empty() ? "" : ", ") + t;
        notes.push_back("only in A: " + s);
    }
    if (!c.only_in_b.empty()) {
        std::string s;
        for (const auto & t : c.only_in_b) s += (s.empty() ? "" : ", ") + t;
        notes.push_back("only in B: " + s);
    }
    if (!notes.empty()) {
        out += "\n";
        for (const auto & n : notes) out += "- " + n + "\n";
    }
    return out;
}

nlohmann::ordered_json side_json(const store::run_data & d) {
    nlohmann::ordered_json j;
    j["source"] = d.label;
    j["kind"] = d.kind;
    j["test_time"] = d.test_time;
    j["model"] = d.model;
    j["machine"] = d.machine;
    j["build_commit"] = d.build_commit;
    j["interrupted"] = d.interrupted;
    return j;
}

nlohmann::ordered_json compare_json(const store::run_data & a, const store::run_data & b, const store::comparison & c,
                                    const store::compare_options & o) {
    nlohmann::ordered_json j;
    j["a"] = side_json(a);
    j["b"] = side_json(b);
    j["threshold"] = o.threshold;
    j["alpha"] = o.alpha;
    j["regressions"] = c.count(store::verdict::regression);
    j["improvements"] = c.count(store::verdict::improvement);
    auto & metrics = j["metrics"] = nlohmann::ordered_json::array();
    for (const auto & m : c.metrics) {
        nlohmann::ordered_json x;
        x["table"] = m.table;
        x["test"] = m.test;
        x["metric"] = m.metric;
        x["unit"] = m.unit;
        x["better"] = m.better == store::direction::higher_is_better ? "higher" : "lower";
        x["n_a"] = m.n_a;
        x["n_b"] = m.n_b;
        x["mean_a"] = json_number(m.mean_a);
        x["mean_b"] = json_number(m.mean_b);
        x["ratio"] = json_number(m.ratio);
        x["change"] = json_number(m.change);
        x["p_value"] = m.p_value ? json_number(*m.p_value) : nlohmann::ordered_json();
        x["test_method"] = !m.method ? nlohmann::ordered_json() : nlohmann::ordered_json(m.method == stats::mwu_method::exact ? "exact" : "normal");
        x["confirmed"] = m.confirmed;
        x["verdict"] = m.result == store::verdict::no_change ? "no_change" : store::verdict_name(m.result);
        metrics.push_back(std::move(x));
    }
    j["only_in_a"] = c.only_in_a;
    j["only_in_b"] = c.only_in_b;
    j["notes"] = c.notes;
    return j;
}

void run_compare(const compare_args & a) {
    const bool md = is_markdown(a.output, "-o");
    if (!(a.options.threshold >= 0.0) || !std::isfinite(a.options.threshold)) {
        throw_usage("--threshold: must be a fraction >= 0 (0.05 is 5%; got {})", a.options.threshold);
    }
    if (!(a.options.alpha > 0.0 && a.options.alpha <= 1.0)) {
        throw_usage("--alpha: must be in (0, 1] (got {})", a.options.alpha);
    }
    const auto side_a = load_side(a.a, a.db_path);
    const auto side_b = load_side(a.b, a.db_path);
    const auto c = store::compare(side_a, side_b, a.options);
    for (const auto & n : c.notes) log::warn("{}", n);
    print_out(md ? compare_markdown(side_a, side_b, c, a.options) : compare_json(side_a, side_b, c, a.options).dump(2) + "\n");
    const size_t reg = c.count(store::verdict::regression);
    if (reg > 0) {
        throw error(error_kind::regression, fmt::format("{} regression{} flagged (B worse than A beyond {}); exit status {}",
                                                        reg, reg == 1 ? "" : "s",
                                                        fmt::format("{:g}%", a.options.threshold * 100), exit_code(error_kind::regression)));
    }
}

}  // namespace

void add_history(CLI::App & root) {
    auto h = std::make_shared<history_args>();
    const std::string kinds = fmt::format("{}", fmt::join(report::run_kind_names(), ", "));
    auto * hist = root.add_subcommand("history", "List recorded runs (" + kinds + "), newest first");
    add_db_flag(hist, h->db_path);
    hist->add_option("--model", h->filter.model, "Only runs whose model type or file contains this text");
    hist->add_option("--machine", h->filter.machine, "Only runs whose CPU or GPU description contains this text");
    hist->add_option("--since", h->filter.since, "Only runs from this date on (2026-11, 2026-11-26, 2026-11-26T10:00)");
    hist->add_option("--kind", h->filter.kind, "Only runs of this kind: " + kinds);
    hist->add_option("-n,--limit", h->filter.limit, "At most this many runs")->capture_default_str();
    hist->add_option("-o,--output", h->output, "stdout format: md, json")->capture_default_str();
    hist->callback([h] { run_history(*h); });

    auto c = std::make_shared<compare_args>();
    auto * cmp = root.add_subcommand(
        "compare", "Compare two runs metric by metric (ratio, Mann–Whitney U p-value, verdict); exit 3 on a regression");
    cmp->add_option("A", c->a, "Baseline: a run id (see history), a report.json, or an --export .json file")->required();
    cmp->add_option("B", c->b, "Candidate, the same kinds as A")->required();
    add_db_flag(cmp, c->db_path);
    cmp->add_option("--threshold", c->options.threshold, "Relative change of a mean that counts (0.05 = 5%)")->capture_default_str();
    cmp->add_option("--alpha", c->options.alpha, "Significance level of the Mann–Whitney U test")->capture_default_str();
    cmp->add_option("-o,--output", c->output, "stdout format: md, json")->capture_default_str();
    cmp->callback([c] { run_compare(*c); });
}

}  // namespace im::cli
