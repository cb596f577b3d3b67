#include "report/kinds.h"

#include "core/error.h"
#include "core/format.h"
#include "core/stats.h"
#include "report/measurements.h"
#include "report/requests.h"
#include "workload/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <set>

namespace im::report {

std::string text_of(const value & v) {
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

std::optional<double> real_of(const value & v) {
    if (const auto * d = std::get_if<double>(&v)) return *d;
    if (const auto * i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    return std::nullopt;
}

int64_t int_of(const value & v) {
    if (const auto * i = std::get_if<int64_t>(&v)) return *i;
    if (const auto * d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
    return 0;
}

std::vector<double> reals_of(const value & v) {
    if (const auto * d = std::get_if<std::vector<double>>(&v)) return *d;
    if (const auto * i = std::get_if<std::vector<int64_t>>(&v)) return {i->begin(), i->end()};
    return {};
}

const value & cell(const table & t, size_t row, const std::string & field_name) {
    static const value null;
    for (size_t i = 0; i < t.fields.size(); ++i) {
        if (t.fields[i].name == field_name) return t.rows[row][i];
    }
    return null;
}

metric_values values_of(const metric_def & m, const table & t, size_t row) {
    metric_values out;
    out.samples = m.derive ? m.derive(t, row) : m.samples_field.empty() ? std::vector<double>{} : reals_of(cell(t, row, m.samples_field));
    if (!out.samples.empty()) {
        // The raw samples are what the row's figure summarizes; recomputing it keeps a row whose
        // figure is missing (an older store) comparable.
        out.value = m.percentile > 0 ? stats::percentile(out.samples, m.percentile)
                                     : std::accumulate(out.samples.begin(), out.samples.end(), 0.0) /
                                           static_cast<double>(out.samples.size());
    } else if (!m.value_field.empty()) {
        out.value = real_of(cell(t, row, m.value_field));
    }
    return out;
}

bool row_skipped(const result_kind & k, const table & t, size_t row) {
    return !k.skipped_field.empty() && !text_of(cell(t, row, k.skipped_field)).empty();
}

namespace {

using json = nlohmann::ordered_json;

json number_or_null(const std::optional<double> & v) { return v ? json(*v) : json(nullptr); }

// --- bench ---------------------------------------------------------------------------------------

std::string bench_label(const table & t, size_t r) {
    const int64_t np = int_of(cell(t, r, "n_prompt")), ng = int_of(cell(t, r, "n_gen")), nd = int_of(cell(t, r, "n_depth"));
    std::string s = np > 0 && ng > 0 ? fmt::format("pp{}+tg{}", np, ng) : np > 0 ? fmt::format("pp{}", np) : fmt::format("tg{}", ng);
    if (nd > 0) s += fmt::format(" @ d{}", nd);
    return s;
}

// The first pp row's and the first tg row's mean t/s.
headline bench_headline(const table & t) {
    std::optional<double> pp, tg;
    for (size_t r = 0; r < t.rows.size(); ++r) {
        const int64_t np = int_of(cell(t, r, "n_prompt")), ng = int_of(cell(t, r, "n_gen"));
        const auto ts = real_of(cell(t, r, "avg_ts"));
        if (!ts) continue;
        if (np > 0 && ng == 0 && !pp) pp = ts;
        if (np == 0 && ng > 0 && !tg) tg = ts;
    }
    headline h;
    if (tg) h.text = fmt::format("tg {} t/s", fmtx::thousands(*tg));
    if (pp) h.text += (h.text.empty() ? "" : " · ") + fmt::format("pp {} t/s", fmtx::thousands(*pp));
    h.fields["pp_ts"] = number_or_null(pp);
    h.fields["tg_ts"] = number_or_null(tg);
    return h;
}

result_kind bench_kind() {
    result_kind k;
    k.name = "bench";
    k.description = "single request (llama-bench semantics)";
    k.shape = bench_table({}, run_context{});
    k.key_fields = {"n_prompt", "n_gen", "n_depth"};
    k.key_description = "test";
    // llama-bench's test key: engine settings that make two rows different measurements.
    k.setting_fields = {{"n_threads", "t"}, {"n_gpu_layers", "ngl"}, {"flash_attn", "fa"}, {"type_k", "ctk"},
                        {"type_v", "ctv"},  {"n_batch", "b"},        {"n_ubatch", "ub"},      {"split_mode", "sm"},
                        {"tensor_split", "ts"}, {"rpc", "rpc"}};
    k.metrics = {{"t/s", "t/s", direction::higher_is_better, "avg_ts", "samples_ts", 0, {}}};
    k.label = bench_label;
    k.headline_of = bench_headline;
    return k;
}

// --- parallel (lockstep) -------------------------------------------------------------------------

// Per-repetition rates from a row's raw times (DESIGN §2.3, workload::lockstep_rates_of).
std::vector<double> lockstep_rates(const table & t, size_t r, double workload::lockstep_rates::*rate) {
    const auto w = static_cast<int>(int_of(cell(t, r, "workers")));
    const auto np = static_cast<int>(int_of(cell(t, r, "n_prompt")));
    const auto nd = static_cast<int>(int_of(cell(t, r, "n_predict")));
    const auto pp = reals_of(cell(t, r, "samples_t_pp_s"));
    const auto tg = reals_of(cell(t, r, "samples_t_tg_s"));
    std::vector<double> out;
    for (size_t i = 0; i < std::min(pp.size(), tg.size()); ++i) {
        if (pp[i] <= 0 || tg[i] <= 0) continue;
        out.push_back(workload::lockstep_rates_of(w, np, nd, pp[i], tg[i]).*rate);
    }
    return out;
}

// The best overall t/s of the rows that ran, and its W.
headline parallel_headline(const table & t) {
    std::optional<double> best;
    int64_t workers = 0;
    for (size_t r = 0; r < t.rows.size(); ++r) {
        if (!text_of(cell(t, r, "skipped")).empty()) continue;
        const auto tps = real_of(cell(t, r, "overall_tps"));
        if (tps && (!best || *tps > *best)) {
            best = tps;
            workers = int_of(cell(t, r, "workers"));
        }
    }
    headline h;
    if (best) h.text = fmt::format("best {} t/s at W={}", fmtx::thousands(*best), workers);
    h.fields["best_overall_tps"] = number_or_null(best);
    h.fields["best_workers"] = best ? json(workers) : json(nullptr);
    return h;
}

result_kind parallel_kind() {
    result_kind k;
    k.name = "parallel";
    k.description = "lockstep worker sweep (batched-bench semantics)";
    k.shape = parallel_table(workload::lockstep_result{}, workload::lockstep_config{}, run_context{});
    k.key_fields = {"workers", "n_prompt", "n_predict"};
    k.key_description = "workers and lengths";
    k.skipped_field = "skipped";
    using rates = workload::lockstep_rates;
    const auto derived = [](double rates::*rate) {
        return [rate](const table & t, size_t r) { return lockstep_rates(t, r, rate); };
    };
    k.metrics = {{"prompt t/s", "t/s", direction::higher_is_better, "prompt_tps", "", 0, derived(&rates::prompt_tps)},
                 {"gen t/s", "t/s", direction::higher_is_better, "gen_tps", "", 0, derived(&rates::gen_tps)},
                 {"overall t/s", "t/s", direction::higher_is_better, "overall_tps", "", 0, derived(&rates::overall_tps)}};
    k.label = [](const table & t, size_t r) {
        return fmt::format("W={} (p{} n{})", int_of(cell(t, r, "workers")), int_of(cell(t, r, "n_prompt")),
                           int_of(cell(t, r, "n_predict")));
    };
    k.headline_of = parallel_headline;
    return k;
}

// --- continuous / serve (request-level) -----------------------------------------------------------

// "C=8" (closed loop) or "4.00 req/s poisson" (open loop).
std::string request_load(const table & t, size_t r) {
    if (const auto c = real_of(cell(t, r, "concurrency"))) return fmt::format("C={}", static_cast<int64_t>(*c));
    if (const auto rate = real_of(cell(t, r, "rate"))) {
        return fmt::format("{} req/s {}", fmtx::thousands(*rate, 2), text_of(cell(t, r, "arrival")));
    }
    return text_of(cell(t, r, "arrival"));
}

std::string request_label(const table & t, size_t r) {
    std::string detail = text_of(cell(t, r, "lengths"));
    const std::string sampling = text_of(cell(t, r, "sampling"));
    if (!sampling.empty()) detail += (detail.empty() ? "" : ", ") + sampling;
    return detail.empty() ? request_load(t, r) : request_load(t, r) + " (" + detail + ")";
}

// The load level with the highest output t/s, with its p99 TTFT.
headline request_headline(const std::string & name, const table & t) {
    std::optional<double> best, ttft;
    std::string load;
    for (size_t r = 0; r < t.rows.size(); ++r) {
        const auto tps = real_of(cell(t, r, "output_tps"));
        if (tps && (!best || *tps > *best)) {
            best = tps;
            ttft = real_of(cell(t, r, "ttft_p99_ms"));
            load = request_load(t, r);
        }
    }
    headline h;
    if (best) {
        h.text = fmt::format("{}: {} output t/s at {}", name, fmtx::thousands(*best), load);
        if (ttft) h.text += fmt::format(" (TTFT p99 {} ms)", fmtx::thousands(*ttft, 1));
    }
    h.fields[name + "_best_output_tps"] = number_or_null(best);
    h.fields[name + "_best_load"] = best ? json(load) : json(nullptr);
    h.fields[name + "_best_ttft_p99_ms"] = number_or_null(best ? ttft : std::nullopt);
    return h;
}

// `continuous` (in-process, engine settings recorded) and `serve` (HTTP, none): the same row.
result_kind request_kind(const std::string & name, const std::string & description, bool in_process) {
    result_kind k;
    k.name = name;
    k.description = description;
    const engine::llama::engine_params params;
    k.shape = requests_table(name, {}, run_context{}, in_process ? &params : nullptr);
    k.key_fields = {"mode", "arrival", "concurrency", "rate", "lengths", "sampling"};
    k.key_description = "load, lengths and sampling";
    const auto higher = direction::higher_is_better, lower = direction::lower_is_better;
    // Throughputs over the steady window have no per-request samples: the threshold alone judges
    // them. Latency percentiles are tested on the per-request samples behind them.
    k.metrics = {{"req/s", "req/s", higher, "request_tps", "", 0, {}},
                 {"output t/s", "t/s", higher, "output_tps", "", 0, {}},
                 {"goodput req/s", "req/s", higher, "goodput_rps", "", 0, {}},
                 {"TTFT p50 (ms)", "ms", lower, "ttft_p50_ms", "samples_ttft_ms", 50, {}},
                 {"TTFT p99 (ms)", "ms", lower, "ttft_p99_ms", "samples_ttft_ms", 99, {}},
                 {"TPOT p99 (ms)", "ms", lower, "tpot_p99_ms", "samples_tpot_ms", 99, {}},
                 {"E2E p99 (ms)", "ms", lower, "e2e_p99_ms", "samples_e2e_ms", 99, {}}};
    k.label = request_label;
    k.headline_of = [name](const table & t) { return request_headline(name, t); };
    return k;
}

}  // namespace

const std::vector<result_kind> & result_kinds() {
    static const std::vector<result_kind> kinds = [] {
        std::vector<result_kind> v = {
            bench_kind(), parallel_kind(),
            request_kind("continuous", "continuous batching in-process (request-level)", true),
            request_kind("serve", "an OpenAI-compatible endpoint over HTTP (request-level)", false)};
        for (auto & k : v) k.shape.rows.clear();
        return v;
    }();
    return kinds;
}

const result_kind * find_result_kind(const std::string & name) {
    for (const auto & k : result_kinds()) {
        if (k.name == name) return &k;
    }
    return nullptr;
}

const result_kind & result_kind_of(const std::string & name) {
    if (const auto * k = find_result_kind(name)) return *k;
    throw_runtime("internal error: '{}' is not a result kind ({})", name, result_kind_list());
}

std::vector<std::string> run_kind_names() {
    std::vector<std::string> out;
    for (const auto & k : result_kinds()) out.push_back(k.name);
    out.push_back("evaluate");
    return out;
}

std::string result_kind_list() {
    std::string out;
    for (const auto & k : result_kinds()) out += (out.empty() ? "" : ", ") + k.name;
    return out;
}

namespace {

value value_from_json(const nlohmann::json & j, field_type type) {
    if (j.is_null()) return std::monostate{};
    switch (type) {
        case field_type::integer:
            if (j.is_number()) return j.is_number_integer() ? j.get<int64_t>() : static_cast<int64_t>(j.get<double>());
            break;
        case field_type::real:
            if (j.is_number()) return j.get<double>();
            break;
        case field_type::text:
            if (j.is_string()) return j.get<std::string>();
            break;
        case field_type::boolean:
            if (j.is_boolean()) return j.get<bool>();
            if (j.is_number()) return j.get<double>() != 0;
            break;
        case field_type::integer_array:
        case field_type::real_array:
            if (j.is_array()) {
                std::vector<double> v;
                for (const auto & x : j) {
                    if (x.is_number()) v.push_back(x.get<double>());
                }
                if (type == field_type::real_array) return v;
                std::vector<int64_t> ints;
                for (const auto & x : j) {
                    if (x.is_number()) ints.push_back(x.is_number_integer() ? x.get<int64_t>() : static_cast<int64_t>(x.get<double>()));
                }
                return ints;
            }
            break;
    }
    return std::monostate{};
}

}  // namespace

table table_from_json(const nlohmann::json & rows, const table & shape) {
    table t;
    t.name = shape.name;
    t.fields = shape.fields;
    if (!rows.is_array()) return t;
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

const result_kind * kind_of_json_rows(const nlohmann::json & rows) {
    if (!rows.is_array() || rows.empty() || !rows[0].is_object()) return nullptr;
    std::set<std::string> context;
    for (const auto & f : context_fields()) context.insert(f.name);
    const result_kind * best = nullptr;
    size_t best_unknown = std::numeric_limits<size_t>::max(), best_missing = best_unknown;
    for (const auto & k : result_kinds()) {
        std::set<std::string> names;
        for (const auto & f : k.shape.fields) names.insert(f.name);
        size_t unknown = 0, known = 0, present = 0;
        for (const auto & [key, v] : rows[0].items()) {
            if (!names.count(key)) ++unknown;
            else if (!context.count(key)) ++known;
            if (names.count(key)) ++present;
        }
        if (known == 0) continue;
        const size_t missing = names.size() - present;
        if (unknown < best_unknown || (unknown == best_unknown && missing < best_missing)) {
            best = &k;
            best_unknown = unknown;
            best_missing = missing;
        }
    }
    return best;
}

}  // namespace im::report
