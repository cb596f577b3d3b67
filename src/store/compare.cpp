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

std::string text_of(const report::value & v) {
    return std::visit(
        [](const auto & x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) return "";
            else if constexpr (std::is_same_v<T, std::string>) return x;
            else if constexpr (std::is_same_v<T, bool>) return x ? "1" : "0";
            else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(x);
            else if constexpr (std::is_same_v<T, double>) return fmt::format("{}", x);
            else return "[...]";
        },
        v);
}

std::optional<double> real_of(const report::value & v) {
    if (const auto * d = std::get_if<double>(&v)) return *d;
    if (const auto * i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    return std::nullopt;
}

int64_t int_of(const report::value & v) {
    if (const auto * i = std::get_if<int64_t>(&v)) return *i;
    if (const auto * d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
    return 0;
}

std::vector<double> reals_of(const report::value & v) {
    if (const auto * d = std::get_if<std::vector<double>>(&v)) return *d;
    if (const auto * i = std::get_if<std::vector<int64_t>>(&v)) return {i->begin(), i->end()};
    return {};
}

std::string field_text(const report::table & t, size_t row, const std::string & name) { return text_of(t.get(row, name)); }

// Fills the descriptive fields of `d` from its first row when the runs table did not.
void describe_from_rows(run_data & d) {
    for (const report::table * t : {&d.bench, &d.parallel}) {
        if (t->rows.empty()) continue;
        if (d.test_time.empty()) d.test_time = field_text(*t, 0, "test_time");
        if (d.model.empty()) d.model = field_text(*t, 0, "model_type");
        if (d.model.empty()) d.model = field_text(*t, 0, "model_filename");
        if (d.machine.empty()) {
            const std::string gpu = field_text(*t, 0, "gpu_info");
            d.machine = field_text(*t, 0, "cpu_info") + (gpu.empty() ? "" : "; " + gpu);
        }
        if (d.build_commit.empty()) d.build_commit = field_text(*t, 0, "build_commit");
        for (size_t r = 0; r < t->rows.size(); ++r) {
            if (const auto * b = std::get_if<bool>(&t->get(r, "interrupted")); b && *b) d.interrupted = true;
        }
        if (const auto * n = std::get_if<int64_t>(&t->get(0, "model_n_params"))) d.model = model_label(d.model, *n);
    }
}

// --- row keys and samples ------------------------------------------------------------------------

// Engine settings that make two bench rows different measurements (llama-bench's test key).
const std::vector<std::pair<std::string, std::string>> bench_settings = {
    {"n_threads", "t"}, {"n_gpu_layers", "ngl"}, {"flash_attn", "fa"}, {"type_k", "ctk"},
    {"type_v", "ctv"},  {"n_batch", "b"},        {"n_ubatch", "ub"},
};

std::string bench_test_name(const report::table & t, size_t r) {
    const int64_t np = int_of(t.get(r, "n_prompt")), ng = int_of(t.get(r, "n_gen")), nd = int_of(t.get(r, "n_depth"));
    std::string s = np > 0 && ng > 0 ? fmt::format("pp{}+tg{}", np, ng) : np > 0 ? fmt::format("pp{}", np) : fmt::format("tg{}", ng);
    if (nd > 0) s += fmt::format(" @ d{}", nd);
    return s;
}

std::string bench_settings_key(const report::table & t, size_t r) {
    std::string k;
    for (const auto & [name, flag] : bench_settings) k += flag + "=" + field_text(t, r, name) + " ";
    return k;
}

std::string parallel_test_name(const report::table & t, size_t r) {
    return fmt::format("W={} (p{} n{})", int_of(t.get(r, "workers")), int_of(t.get(r, "n_prompt")),
                       int_of(t.get(r, "n_predict")));
}

struct metric_samples {
    std::string metric;
    direction better;
    std::vector<double> samples;
};

// A bench row's per-repetition t/s; its mean alone (one sample) when the raw samples are missing.
std::vector<metric_samples> bench_metrics(const report::table & t, size_t r) {
    std::vector<double> s = reals_of(t.get(r, "samples_ts"));
    if (s.empty()) {
        if (const auto m = real_of(t.get(r, "avg_ts"))) s = {*m};
    }
    return {{"t/s", direction::higher_is_better, s}};
}

// A parallel row's per-repetition rates from its raw times (DESIGN §2.3, workload::lockstep_rates_of);
// the means alone when the raw times are missing.
std::vector<metric_samples> parallel_metrics(const report::table & t, size_t r) {
    const auto w = static_cast<int>(int_of(t.get(r, "workers")));
    const auto np = static_cast<int>(int_of(t.get(r, "n_prompt")));
    const auto nd = static_cast<int>(int_of(t.get(r, "n_predict")));
    const auto pp = reals_of(t.get(r, "samples_t_pp_s"));
    const auto tg = reals_of(t.get(r, "samples_t_tg_s"));
    metric_samples prompt{"prompt t/s", direction::higher_is_better, {}};
    metric_samples gen{"gen t/s", direction::higher_is_better, {}};
    metric_samples overall{"overall t/s", direction::higher_is_better, {}};
    const size_t n = std::min(pp.size(), tg.size());
    for (size_t i = 0; i < n; ++i) {
        if (pp[i] <= 0 || tg[i] <= 0) continue;
        const auto rates = workload::lockstep_rates_of(w, np, nd, pp[i], tg[i]);
        prompt.samples.push_back(rates.prompt_tps);
        gen.samples.push_back(rates.gen_tps);
        overall.samples.push_back(rates.overall_tps);
    }
    if (overall.samples.empty()) {
        const std::pair<metric_samples *, const char *> means[] = {{&prompt, "prompt_tps"}, {&gen, "gen_tps"}, {&overall, "overall_tps"}};
        for (const auto & [m, field] : means) {
            if (const auto v = real_of(t.get(r, field))) m->samples = {*v};
        }
    }
    return {prompt, gen, overall};
}

bool parallel_skipped(const report::table & t, size_t r) { return !field_text(t, r, "skipped").empty(); }

struct keyed_row {
    std::string key;
    std::string label;
    size_t row;
};

void add_metrics(comparison & c, const std::string & table, const std::string & label,
                 const std::vector<metric_samples> & ma, const std::vector<metric_samples> & mb, const compare_options & o) {
    for (size_t i = 0; i < ma.size() && i < mb.size(); ++i) {
        if (ma[i].samples.empty() || mb[i].samples.empty()) continue;
        auto m = compare_samples(ma[i].samples, mb[i].samples, ma[i].better, o);
        m.table = table;
        m.test = label;
        m.metric = ma[i].metric;
        c.metrics.push_back(std::move(m));
    }
}

// Matches rows by key; rows whose key repeats on a side are matched in order of appearance.
void match(comparison & c, const std::string & table, const std::vector<keyed_row> & ka, const std::vector<keyed_row> & kb,
           const std::function<std::vector<metric_samples>(bool a_side, size_t row)> & metrics, const compare_options & o) {
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
            add_metrics(c, table, label, metrics(true, ra.row), metrics(false, kb[j].row), o);
            break;
        }
        if (!found) c.only_in_a.push_back(ra.label);
    }
    for (size_t j = 0; j < kb.size(); ++j) {
        if (!used[j]) c.only_in_b.push_back(kb[j].label);
    }
}

void compare_bench(comparison & c, const run_data & a, const run_data & b, const compare_options & o) {
    // Settings that vary across all rows join the label, so that two rows never read the same.
    std::set<std::string> varying;
    for (const auto & [name, flag] : bench_settings) {
        std::set<std::string> seen;
        for (const report::table * t : {&a.bench, &b.bench}) {
            for (size_t r = 0; r < t->rows.size(); ++r) seen.insert(field_text(*t, r, name));
        }
        if (seen.size() > 1) varying.insert(name);
    }
    const auto keyed = [&](const report::table & t, bool with_settings) {
        std::vector<keyed_row> out;
        for (size_t r = 0; r < t.rows.size(); ++r) {
            std::string label = bench_test_name(t, r), settings;
            for (const auto & [name, flag] : bench_settings) {
                if (varying.count(name)) settings += (settings.empty() ? "" : " ") + flag + "=" + field_text(t, r, name);
            }
            if (!settings.empty()) label += " (" + settings + ")";
            out.push_back({bench_test_name(t, r) + (with_settings ? "|" + bench_settings_key(t, r) : ""), label, r});
        }
        return out;
    };
    const auto metrics = [&](bool a_side, size_t r) { return bench_metrics(a_side ? a.bench : b.bench, r); };

    comparison full;
    match(full, "bench", keyed(a.bench, true), keyed(b.bench, true), metrics, o);
    const bool none_matched = full.metrics.empty() && !a.bench.rows.empty() && !b.bench.rows.empty();
    if (none_matched) {
        // Runs of the same tests with other engine settings (the usual "did -fa on help?" question):
        // match by test alone when each test appears once on each side.
        auto ka = keyed(a.bench, false), kb = keyed(b.bench, false);
        const auto unique = [](const std::vector<keyed_row> & k) {
            std::set<std::string> seen;
            for (const auto & r : k) {
                if (!seen.insert(r.key).second) return false;
            }
            return true;
        };
        if (unique(ka) && unique(kb)) {
            comparison loose;
            match(loose, "bench", ka, kb, metrics, o);
            if (!loose.metrics.empty()) {
                std::string differ;
                for (const auto & name : varying) differ += (differ.empty() ? "" : ", ") + name;
                loose.notes.push_back(fmt::format("bench rows matched by test alone: the engine settings differ ({})", differ));
                full = std::move(loose);
            }
        }
    }
    c.metrics.insert(c.metrics.end(), full.metrics.begin(), full.metrics.end());
    c.only_in_a.insert(c.only_in_a.end(), full.only_in_a.begin(), full.only_in_a.end());
    c.only_in_b.insert(c.only_in_b.end(), full.only_in_b.begin(), full.only_in_b.end());
    c.notes.insert(c.notes.end(), full.notes.begin(), full.notes.end());
}

void compare_parallel(comparison & c, const run_data & a, const run_data & b, const compare_options & o) {
    const auto keyed = [&](const report::table & t, std::vector<std::string> & skipped) {
        std::vector<keyed_row> out;
        for (size_t r = 0; r < t.rows.size(); ++r) {
            const std::string label = parallel_test_name(t, r);
            if (parallel_skipped(t, r)) {
                skipped.push_back(label + " (skipped: " + field_text(t, r, "skipped") + ")");
                continue;
            }
            out.push_back({label, label, r});
        }
        return out;
    };
    std::vector<std::string> skipped_a, skipped_b;
    const auto ka = keyed(a.parallel, skipped_a), kb = keyed(b.parallel, skipped_b);
    match(c, "parallel", ka, kb, [&](bool a_side, size_t r) { return parallel_metrics(a_side ? a.parallel : b.parallel, r); }, o);
    c.only_in_a.insert(c.only_in_a.end(), skipped_a.begin(), skipped_a.end());
    c.only_in_b.insert(c.only_in_b.end(), skipped_b.begin(), skipped_b.end());
}

report::value value_from_json(const nlohmann::json & j, report::field_type type) {
    if (j.is_null()) return std::monostate{};
    switch (type) {
        case report::field_type::integer:
            if (j.is_number()) return j.is_number_integer() ? j.get<int64_t>() : static_cast<int64_t>(j.get<double>());
            break;
        case report::field_type::real:
            if (j.is_number()) return j.get<double>();
            break;
        case report::field_type::text:
            if (j.is_string()) return j.get<std::string>();
            break;
        case report::field_type::boolean:
            if (j.is_boolean()) return j.get<bool>();
            if (j.is_number()) return j.get<double>() != 0;
            break;
        case report::field_type::integer_array:
        case report::field_type::real_array:
            if (j.is_array()) {
                std::vector<double> v;
                for (const auto & x : j) {
                    if (x.is_number()) v.push_back(x.get<double>());
                }
                if (type == report::field_type::real_array) return v;
                return std::vector<int64_t>(v.begin(), v.end());
            }
            break;
    }
    return std::monostate{};
}

}  // namespace

// --- loading ---------------------------------------------------------------------------------------

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
    d.bench = db.rows(id, result_shape("bench"));
    d.parallel = db.rows(id, result_shape("parallel"));
    describe_from_rows(d);
    return d;
}

report::table table_from_json(const nlohmann::json & rows, const report::table & shape) {
    report::table t;
    t.name = shape.name;
    t.fields = shape.fields;
    for (const auto & obj : rows) {
        if (!obj.is_object()) continue;
        auto & row = t.add_row();
        for (size_t i = 0; i < t.fields.size(); ++i) {
            const auto it = obj.find(t.fields[i].name);
            if (it != obj.end()) row[i] = value_from_json(*it, t.fields[i].type);
        }
    }
    return t;
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
    d.bench = table_from_json(nlohmann::json::array(), result_shape("bench"));
    d.parallel = table_from_json(nlohmann::json::array(), result_shape("parallel"));
    if (j.is_object() && j.contains("tables") && j["tables"].is_object()) {
        const auto & tables = j["tables"];
        if (tables.contains("bench") && tables["bench"].is_array()) d.bench = table_from_json(tables["bench"], result_shape("bench"));
        if (tables.contains("parallel") && tables["parallel"].is_array()) {
            d.parallel = table_from_json(tables["parallel"], result_shape("parallel"));
        }
        d.kind = "evaluate";
        if (const auto it = j.find("interrupted"); it != j.end() && it->is_boolean() && it->get<bool>()) d.interrupted = true;
    } else if (j.is_array() && !j.empty() && j[0].is_object()) {
        // An --export .json: bench rows carry avg_ts, parallel rows carry workers.
        if (j[0].contains("workers")) {
            d.parallel = table_from_json(j, result_shape("parallel"));
            d.kind = "parallel";
        } else if (j[0].contains("avg_ts") || j[0].contains("samples_ts")) {
            d.bench = table_from_json(j, result_shape("bench"));
            d.kind = "bench";
        }
    }
    if (d.bench.rows.empty() && d.parallel.rows.empty()) {
        throw_runtime("{} holds no bench or parallel rows (expected a report.json or a bench/parallel --export .json)",
                      path.string());
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
    metric_comparison m;
    m.better = better;
    m.n_a = a.size();
    m.n_b = b.size();
    const auto mean = [](std::span<const double> s) {
        return s.empty() ? 0.0 : std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
    };
    m.mean_a = mean(a);
    m.mean_b = mean(b);
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
    compare_bench(c, a, b, o);
    compare_parallel(c, a, b, o);
    if (c.metrics.empty()) {
        throw_runtime("{} and {} have no measurement in common ({} has {} bench and {} parallel rows, {} has {} and {}); "
                      "compare runs of the same tests",
                      a.label, b.label, a.label, a.bench.rows.size(), a.parallel.rows.size(), b.label, b.bench.rows.size(),
                      b.parallel.rows.size());
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

headline headline_of(const report::table & bench, const report::table & parallel) {
    headline h;
    for (size_t r = 0; r < bench.rows.size(); ++r) {
        const int64_t np = int_of(bench.get(r, "n_prompt")), ng = int_of(bench.get(r, "n_gen"));
        const auto ts = real_of(bench.get(r, "avg_ts"));
        if (!ts) continue;
        if (np > 0 && ng == 0 && !h.pp_ts) h.pp_ts = ts;
        if (np == 0 && ng > 0 && !h.tg_ts) h.tg_ts = ts;
    }
    for (size_t r = 0; r < parallel.rows.size(); ++r) {
        if (parallel_skipped(parallel, r)) continue;
        const auto tps = real_of(parallel.get(r, "overall_tps"));
        if (tps && (!h.best_overall_tps || *tps > *h.best_overall_tps)) {
            h.best_overall_tps = tps;
            h.best_workers = static_cast<int>(int_of(parallel.get(r, "workers")));
        }
    }
    return h;
}

}  // namespace im::store
