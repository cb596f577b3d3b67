#include "store/compare.h"

#include "core/error.h"
#include "core/stats.h"
#include "workload/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

namespace im::store {

namespace {

using report::cell;
using report::int_of;
using report::real_of;
using report::reals_of;
using report::text_of;

std::string field_text(const report::table & t, size_t row, const std::string & name) { return text_of(cell(t, row, name)); }

std::map<std::string, report::table> empty_tables() {
    std::map<std::string, report::table> out;
    for (const auto & k : report::result_kinds()) out.emplace(k.name, k.shape);
    return out;
}

// Fills the descriptive fields of `d` from its first row when the runs table did not.
void describe_from_rows(run_data & d) {
    for (const auto & k : report::result_kinds()) {
        const auto & t = d.rows_of(k.name);
        if (t.rows.empty()) continue;
        if (d.test_time.empty()) d.test_time = field_text(t, 0, "test_time");
        if (d.model.empty()) d.model = field_text(t, 0, "model_type");
        if (d.model.empty()) d.model = field_text(t, 0, "model_filename");
        if (d.machine.empty()) {
            const std::string gpu = field_text(t, 0, "gpu_info");
            d.machine = field_text(t, 0, "cpu_info") + (gpu.empty() ? "" : "; " + gpu);
        }
        if (d.build_commit.empty()) d.build_commit = field_text(t, 0, "build_commit");
        for (size_t r = 0; r < t.rows.size(); ++r) {
            if (const auto * b = std::get_if<bool>(&cell(t, r, "interrupted")); b && *b) d.interrupted = true;
        }
        if (const auto * n = std::get_if<int64_t>(&cell(t, 0, "model_n_params"))) d.model = model_label(d.model, *n);
    }
}

// --- matching rows -------------------------------------------------------------------------------

struct keyed_row {
    std::string key;
    std::string label;
    size_t row;
};

void add_metrics(comparison & c, const report::result_kind & k, const std::string & label, const report::table & ta,
                 size_t ra, const report::table & tb, size_t rb, const compare_options & o) {
    for (const auto & def : k.metrics) {
        auto va = report::values_of(def, ta, ra), vb = report::values_of(def, tb, rb);
        if (!va.value || !vb.value) continue;
        // A figure without raw samples counts as one sample: judged by the threshold alone.
        if (va.samples.empty()) va.samples = {*va.value};
        if (vb.samples.empty()) vb.samples = {*vb.value};
        auto m = compare_values(*va.value, va.samples, *vb.value, vb.samples, def.better, o);
        m.table = k.name;
        m.test = label;
        m.metric = def.name;
        m.unit = def.unit;
        c.metrics.push_back(std::move(m));
    }
}

// Matches rows by key; rows whose key repeats on a side are matched in order of appearance.
void match(comparison & c, const report::result_kind & k, const report::table & ta, const std::vector<keyed_row> & ka,
           const report::table & tb, const std::vector<keyed_row> & kb, const compare_options & o) {
    std::vector<bool> used(kb.size(), false);
    for (const auto & ra : ka) {
        bool found = false;
        for (size_t j = 0; j < kb.size(); ++j) {
            if (used[j] || kb[j].key != ra.key) continue;
            used[j] = found = true;
            // Rows matched by a looser key than their labels read as "pp512 (t=2 → t=4)".
            std::string label = ra.label;
            const auto open_a = ra.label.find(" ("), open_b = kb[j].label.find(" (");
            if (kb[j].label != ra.label && open_a != std::string::npos && open_b != std::string::npos) {
                label = ra.label.substr(0, open_a) + " (" + ra.label.substr(open_a + 2, ra.label.size() - open_a - 3) +
                        " → " + kb[j].label.substr(open_b + 2, kb[j].label.size() - open_b - 3) + ")";
            }
            add_metrics(c, k, label, ta, ra.row, tb, kb[j].row, o);
            break;
        }
        if (!found) c.only_in_a.push_back(ra.label);
    }
    for (size_t j = 0; j < kb.size(); ++j) {
        if (!used[j]) c.only_in_b.push_back(kb[j].label);
    }
}

void compare_kind(comparison & c, const report::result_kind & k, const report::table & ta, const report::table & tb,
                  const compare_options & o) {
    // Settings that vary across all rows join the label, so that two rows never read the same.
    std::vector<const report::setting_field *> varying;
    for (const auto & s : k.setting_fields) {
        std::set<std::string> seen;
        for (const report::table * t : {&ta, &tb}) {
            for (size_t r = 0; r < t->rows.size(); ++r) seen.insert(field_text(*t, r, s.name));
        }
        if (seen.size() > 1) varying.push_back(&s);
    }
    std::vector<std::string> skipped_a, skipped_b;
    const auto keyed = [&](const report::table & t, bool with_settings, std::vector<std::string> * skipped) {
        std::vector<keyed_row> out;
        for (size_t r = 0; r < t.rows.size(); ++r) {
            const std::string name = k.label(t, r);
            if (report::row_skipped(k, t, r)) {
                if (skipped) skipped->push_back(name + " (skipped: " + field_text(t, r, k.skipped_field) + ")");
                continue;
            }
            std::string key, settings;
            for (const auto & f : k.key_fields) key += f + "=" + field_text(t, r, f) + " ";
            if (with_settings) {
                key += "|";
                for (const auto & s : k.setting_fields) key += s.flag + "=" + field_text(t, r, s.name) + " ";
            }
            for (const auto * s : varying) settings += (settings.empty() ? "" : " ") + s->flag + "=" + field_text(t, r, s->name);
            out.push_back({key, settings.empty() ? name : name + " (" + settings + ")", r});
        }
        return out;
    };

    comparison full;
    match(full, k, ta, keyed(ta, true, &skipped_a), tb, keyed(tb, true, &skipped_b), o);
    const bool none_matched = full.metrics.empty() && !ta.rows.empty() && !tb.rows.empty();
    if (none_matched && !k.setting_fields.empty()) {
        // Runs of the same tests with other engine settings (the usual "did -fa on help?" question):
        // match by the key fields alone when each key appears once on each side.
        auto ka = keyed(ta, false, nullptr), kb = keyed(tb, false, nullptr);
        const auto unique = [](const std::vector<keyed_row> & keys) {
            std::set<std::string> seen;
            for (const auto & r : keys) {
                if (!seen.insert(r.key).second) return false;
            }
            return true;
        };
        if (unique(ka) && unique(kb)) {
            comparison loose;
            match(loose, k, ta, ka, tb, kb, o);
            if (!loose.metrics.empty()) {
                std::set<std::string> names;
                for (const auto * s : varying) names.insert(s->name);
                std::string differ;
                for (const auto & n : names) differ += (differ.empty() ? "" : ", ") + n;
                loose.notes.push_back(fmt::format("{} rows matched by {} alone: the engine settings differ ({})", k.name,
                                                  k.key_description, differ));
                full = std::move(loose);
            }
        }
    }
    c.metrics.insert(c.metrics.end(), full.metrics.begin(), full.metrics.end());
    c.only_in_a.insert(c.only_in_a.end(), full.only_in_a.begin(), full.only_in_a.end());
    c.only_in_b.insert(c.only_in_b.end(), full.only_in_b.begin(), full.only_in_b.end());
    c.only_in_a.insert(c.only_in_a.end(), skipped_a.begin(), skipped_a.end());
    c.only_in_b.insert(c.only_in_b.end(), skipped_b.begin(), skipped_b.end());
    c.notes.insert(c.notes.end(), full.notes.begin(), full.notes.end());
}

std::string rows_text(const run_data & d) {
    std::string s;
    for (const auto & k : report::result_kinds()) {
        const size_t n = d.rows_of(k.name).rows.size();
        if (n > 0) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", n, k.name);
    }
    return s.empty() ? "no result rows" : s + " rows";
}

}  // namespace

// --- loading ---------------------------------------------------------------------------------------

const report::table & run_data::rows_of(const std::string & kind_name) const {
    const auto it = tables.find(kind_name);
    if (it != tables.end()) return it->second;
    return report::result_kind_of(kind_name).shape;  // throws for a name that is no kind
}

size_t run_data::n_rows() const {
    size_t n = 0;
    for (const auto & [name, t] : tables) n += t.rows.size();
    return n;
}

std::map<std::string, report::table> tables_of_run(const database & db, int64_t id) {
    std::map<std::string, report::table> out;
    for (const auto & k : report::result_kinds()) out.emplace(k.name, db.rows(id, k.shape));
    return out;
}

run_data load_run(const database & db, int64_t id) {
    const auto r = db.run(id);
    if (!r) {
        throw_runtime("run {} is not in the results store {} (infermeter history --db {} lists its runs)", id,
                      db.path().string(), db.path().string());
    }
    run_data d;
    d.label = fmt::format("run {}", id);
    d.kind = r->kind;
    d.test_time = r->test_time;
    d.model = r->model_type.empty() ? r->model_filename : r->model_type;
    d.machine = r->machine;
    d.build_commit = r->build_commit;
    d.interrupted = r->interrupted;
    d.tables = tables_of_run(db, id);
    describe_from_rows(d);
    return d;
}

run_data load_file(const std::filesystem::path & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_runtime("cannot read {}: no such file or not readable (give a run id or a report.json path)", path.string());
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception & e) {
        throw_runtime("{} is not JSON ({}); compare takes run ids, report.json files or --export .json files",
                      path.string(), e.what());
    }
    run_data d;
    d.label = path.string();
    d.tables = empty_tables();
    if (j.is_object() && j.contains("tables") && j["tables"].is_object()) {
        for (const auto & k : report::result_kinds()) {
            if (const auto it = j["tables"].find(k.name); it != j["tables"].end()) {
                d.tables[k.name] = report::table_from_json(*it, k.shape);
            }
        }
        if (const auto it = j.find("interrupted"); it != j.end() && it->is_boolean() && it->get<bool>()) d.interrupted = true;
        d.kind = j.value("kind", std::string("evaluate"));
    } else if (const auto * k = report::kind_of_json_rows(j)) {
        d.tables[k->name] = report::table_from_json(j, k->shape);
        d.kind = k->name;
    }
    if (d.n_rows() == 0) {
        throw_runtime("{} holds no result rows of any kind ({}): expected a report.json or an --export .json of "
                      "bench, parallel or another measuring command",
                      path.string(), report::result_kind_list());
    }
    describe_from_rows(d);
    return d;
}

// --- judging ---------------------------------------------------------------------------------------

std::string verdict_name(verdict v) {
    switch (v) {
        case verdict::no_change:   return "no significant change";
        case verdict::regression:  return "regression";
        case verdict::improvement: return "improvement";
    }
    return "";
}

metric_comparison compare_samples(std::span<const double> a, std::span<const double> b, direction better,
                                  const compare_options & o) {
    const auto mean = [](std::span<const double> s) {
        return s.empty() ? 0.0 : std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
    };
    return compare_values(mean(a), a, mean(b), b, better, o);
}

metric_comparison compare_values(double value_a, std::span<const double> a, double value_b, std::span<const double> b,
                                 direction better, const compare_options & o) {
    metric_comparison m;
    m.better = better;
    m.n_a = a.size();
    m.n_b = b.size();
    m.mean_a = value_a;
    m.mean_b = value_b;
    if (m.mean_a != 0) {
        m.ratio = m.mean_b / m.mean_a;
        m.change = m.ratio - 1.0;
    } else {
        m.ratio = std::nan("");
        m.change = m.mean_b == 0 ? 0.0 : std::copysign(INFINITY, m.mean_b);
    }
    if (m.n_a >= 2 && m.n_b >= 2) {
        if (const auto t = stats::mann_whitney_u(a, b)) {
            m.p_value = t->p_two_sided;
            m.method = t->method;
        }
    }
    // The exact test cannot go below 2/C(n_a+n_b, n_a): with 3 and 3 samples that is 0.1, so at
    // alpha = 0.05 it could never confirm anything and the threshold has to decide alone.
    m.confirmed = m.p_value.has_value() && stats::mwu_min_p_two_sided(m.n_a, m.n_b) < o.alpha;
    const double worse = better == direction::higher_is_better ? -m.change : m.change;
    const bool significant = !m.confirmed || *m.p_value < o.alpha;
    if (worse > o.threshold && significant) m.result = verdict::regression;
    else if (-worse > o.threshold && significant) m.result = verdict::improvement;
    return m;
}

size_t comparison::count(verdict v) const {
    return static_cast<size_t>(std::count_if(metrics.begin(), metrics.end(), [v](const auto & m) { return m.result == v; }));
}

comparison compare(const run_data & a, const run_data & b, const compare_options & o) {
    comparison c;
    for (const auto & k : report::result_kinds()) compare_kind(c, k, a.rows_of(k.name), b.rows_of(k.name), o);
    if (c.metrics.empty()) {
        throw_runtime("{} and {} have no measurement in common ({} has {}, {} has {}); compare runs of the same tests",
                      a.label, b.label, a.label, rows_text(a), b.label, rows_text(b));
    }
    for (const run_data * d : {&a, &b}) {
        if (d->interrupted) {
            c.notes.push_back(fmt::format("{} ({}) was interrupted: its results are partial (fewer repetitions or "
                                          "worker counts, maybe a partial last row)", d == &a ? "A" : "B", d->label));
        }
    }
    if (!a.model.empty() && !b.model.empty() && a.model != b.model) {
        c.notes.push_back(fmt::format("different models: {} vs {}", a.model, b.model));
    }
    if (!a.machine.empty() && !b.machine.empty() && a.machine != b.machine) {
        c.notes.push_back(fmt::format("different machines: {} vs {}", a.machine, b.machine));
    }
    if (!a.build_commit.empty() && !b.build_commit.empty() && a.build_commit != b.build_commit) {
        c.notes.push_back(fmt::format("different llama.cpp builds: {} vs {}", a.build_commit, b.build_commit));
    }
    return c;
}

report::headline headline_of(const std::map<std::string, report::table> & tables) {
    report::headline h;
    for (const auto & k : report::result_kinds()) {
        const auto it = tables.find(k.name);
        const auto one = k.headline_of(it != tables.end() ? it->second : k.shape);
        if (!one.text.empty()) h.text += (h.text.empty() ? "" : " · ") + one.text;
        h.fields.update(one.fields);
    }
    return h;
}

}  // namespace im::store
