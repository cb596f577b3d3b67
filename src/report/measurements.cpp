#include "report/measurements.h"

#include "core/escape.h"
#include "core/format.h"
#include "model/quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace im::report {

std::vector<field> engine_fields() {
    return {
        {"n_batch", field_type::integer},  {"n_ubatch", field_type::integer},     {"n_threads", field_type::integer},
        {"poll", field_type::integer},     {"type_k", field_type::text},          {"type_v", field_type::text},
        {"n_gpu_layers", field_type::integer}, {"split_mode", field_type::text},  {"main_gpu", field_type::integer},
        {"tensor_split", field_type::text}, {"rpc", field_type::text},
        {"use_mmap", field_type::boolean}, {"flash_attn", field_type::text},
    };
}

void fill_engine(const table & t, std::vector<value> & row, const engine::llama::engine_params & p, int n_threads) {
    t.set(row, "n_batch", int64_t{p.n_batch});
    t.set(row, "n_ubatch", int64_t{p.n_ubatch});
    t.set(row, "n_threads", int64_t{n_threads});
    t.set(row, "poll", int64_t{p.poll});
    t.set(row, "type_k", std::string(ggml_type_name(p.type_k)));
    t.set(row, "type_v", std::string(ggml_type_name(p.type_v)));
    t.set(row, "n_gpu_layers", int64_t{p.n_gpu_layers});
    t.set(row, "split_mode", engine::llama::split_mode_name(p.split_mode));
    t.set(row, "main_gpu", int64_t{p.main_gpu});
    t.set(row, "tensor_split", engine::llama::tensor_split_name(p.tensor_split));
    t.set(row, "rpc", engine::llama::rpc_name(p.rpc));
    t.set(row, "use_mmap", p.use_mmap);
    t.set(row, "flash_attn", engine::llama::flash_attn_name(p.fa));
}

namespace {

std::vector<field> concat(std::vector<field> a, const std::vector<field> & b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

value optional_real(const std::optional<double> & v) { return v ? value(*v) : value(std::monostate{}); }

std::string mib(uint64_t bytes, int decimals = 0) { return fmtx::thousands(static_cast<double>(bytes) / fmtx::mib, decimals); }

}  // namespace

std::string interrupted_note() {
    return "\n**Interrupted:** partial results: the run was stopped before it finished (or had not finished when this "
           "was written). Rows marked partial hold fewer repetitions or decode steps than asked.\n";
}

table bench_table(const std::vector<workload::bench_result> & results, const run_context & c, bool interrupted) {
    table t;
    t.name = "bench";
    t.fields = concat(concat(context_fields(), engine_fields()),
                      {{"n_prompt", field_type::integer},     {"n_gen", field_type::integer},
                       {"n_depth", field_type::integer},      {"n_ctx_allocated", field_type::integer},
                       {"avg_ns", field_type::real},          {"stddev_ns", field_type::real},
                       {"avg_ts", field_type::real},          {"stddev_ts", field_type::real},
                       {"median_ts", field_type::real},       {"ci95_low_ts", field_type::real},
                       {"ci95_high_ts", field_type::real},    {"n_outliers", field_type::integer},
                       {"n_warmup", field_type::integer},     {"warmup_converged", field_type::boolean},
                       {"repetitions", field_type::integer},  {"ci95_rel", field_type::real},
                       {"precision_met", field_type::boolean},
                       {"samples_ns", field_type::integer_array}, {"samples_ts", field_type::real_array},
                       {"interrupted", field_type::boolean},  {"partial", field_type::boolean}});
    for (const auto & r : results) {
        auto & row = t.add_row();
        run_context rc = c;
        rc.test_time = r.test_time;
        fill_context(t, row, rc);
        fill_engine(t, row, r.test.params, r.n_threads);
        t.set(row, "n_prompt", int64_t{r.test.n_prompt});
        t.set(row, "n_gen", int64_t{r.test.n_gen});
        t.set(row, "n_depth", int64_t{r.test.n_depth});
        t.set(row, "n_ctx_allocated", int64_t{r.n_ctx_allocated});
        t.set(row, "avg_ns", r.avg_ns);
        t.set(row, "stddev_ns", r.stddev_ns);
        t.set(row, "avg_ts", r.ts.mean);
        t.set(row, "stddev_ts", r.ts.stddev.value_or(0.0));
        t.set(row, "median_ts", r.ts.median);
        t.set(row, "ci95_low_ts", optional_real(r.ts.ci95_low));
        t.set(row, "ci95_high_ts", optional_real(r.ts.ci95_high));
        t.set(row, "n_outliers", static_cast<int64_t>(r.ts.n_outliers));
        t.set(row, "n_warmup", int64_t{r.n_warmup});
        t.set(row, "warmup_converged", r.warmup_converged);
        t.set(row, "repetitions", static_cast<int64_t>(r.samples_ts.size()));
        t.set(row, "ci95_rel", r.ci95_rel);
        t.set(row, "precision_met", r.precision_met);
        t.set(row, "samples_ns", r.samples_ns);
        t.set(row, "samples_ts", r.samples_ts);
        t.set(row, "interrupted", interrupted);
        t.set(row, "partial", r.partial);
    }
    mark_empty_interrupted(t, c, interrupted);
    return t;
}

table parallel_table(const workload::lockstep_result & r, const workload::lockstep_config & cfg, const run_context & c) {
    table t;
    t.name = "parallel";
    t.fields = concat(concat(context_fields(), engine_fields()),
                      {{"mode", field_type::text},               {"workers", field_type::integer},
                       {"n_prompt", field_type::integer},        {"n_predict", field_type::integer},
                       {"n_ctx", field_type::integer},           {"n_ctx_seq", field_type::integer},
                       {"kv_unified", field_type::boolean},      {"kv_bytes", field_type::integer},
                       {"kv_bytes_allocated", field_type::integer}, {"total_kv", field_type::integer},
                       {"t_pp_s", field_type::real},             {"t_tg_s", field_type::real},
                       {"prompt_tps", field_type::real},         {"gen_tps", field_type::real},
                       {"overall_tps", field_type::real},        {"stddev_prompt_tps", field_type::real},
                       {"stddev_gen_tps", field_type::real},     {"stddev_overall_tps", field_type::real},
                       {"speedup", field_type::real},            {"efficiency", field_type::real},
                       {"base_workers", field_type::integer},    {"repetitions", field_type::integer},
                       {"extended", field_type::boolean},
                       {"rss_bytes", field_type::integer},       {"device_used_bytes", field_type::integer},
                       {"energy_j", field_type::real},           {"joules_per_output_token", field_type::real},
                       {"avg_watts", field_type::real},          {"energy_source", field_type::text},
                       {"peak_gpu_memory_mib", field_type::real}, {"peak_rss_mib", field_type::real},
                       {"samples_t_pp_s", field_type::real_array}, {"samples_t_tg_s", field_type::real_array},
                       {"skipped", field_type::text},            {"interrupted", field_type::boolean},
                       {"partial", field_type::boolean},         {"predicted", field_type::boolean},
                       {"prefill_measured", field_type::boolean},
                       {"prompt_tps_lo", field_type::real},      {"prompt_tps_hi", field_type::real},
                       {"gen_tps_lo", field_type::real},         {"gen_tps_hi", field_type::real},
                       {"overall_tps_lo", field_type::real},     {"overall_tps_hi", field_type::real},
                       {"steps_probed", field_type::boolean},    {"prediction_note", field_type::text}});
    for (const auto & w : r.rows) {
        auto & row = t.add_row();
        run_context rc = c;
        if (!w.test_time.empty()) rc.test_time = w.test_time;
        fill_context(t, row, rc);
        fill_engine(t, row, cfg.params, w.n_threads);
        t.set(row, "mode", std::string("lockstep"));
        t.set(row, "workers", int64_t{w.workers});
        t.set(row, "extended", w.extended);
        t.set(row, "n_prompt", int64_t{w.n_prompt});
        t.set(row, "n_predict", int64_t{w.n_predict});
        t.set(row, "kv_unified", cfg.kv_unified);
        t.set(row, "kv_bytes", static_cast<int64_t>(w.kv_bytes));
        t.set(row, "total_kv", static_cast<int64_t>(w.total_kv));
        t.set(row, "interrupted", r.interrupted);
        t.set(row, "partial", w.partial);
        if (!w.skipped.empty()) {
            t.set(row, "skipped", w.skipped);
            continue;
        }
        t.set(row, "n_ctx", w.n_ctx);
        t.set(row, "n_ctx_seq", w.n_ctx_seq);
        t.set(row, "kv_bytes_allocated", static_cast<int64_t>(w.kv_bytes_allocated));
        t.set(row, "t_pp_s", w.t_pp_mean_s);
        t.set(row, "t_tg_s", w.t_tg_mean_s);
        t.set(row, "prompt_tps", w.prompt_tps.mean);
        t.set(row, "gen_tps", w.gen_tps.mean);
        t.set(row, "overall_tps", w.overall_tps.mean);
        t.set(row, "stddev_prompt_tps", optional_real(w.prompt_tps.stddev));
        t.set(row, "stddev_gen_tps", optional_real(w.gen_tps.stddev));
        t.set(row, "stddev_overall_tps", optional_real(w.overall_tps.stddev));
        t.set(row, "speedup", w.speedup);
        t.set(row, "efficiency", w.efficiency);
        t.set(row, "base_workers", int64_t{r.base_workers});
        t.set(row, "repetitions", static_cast<int64_t>(w.t_pp_s.size()));
        t.set(row, "rss_bytes", static_cast<int64_t>(w.rss_bytes));
        t.set(row, "device_used_bytes", static_cast<int64_t>(w.device_used_bytes));
        if (w.energy_j) {
            t.set(row, "energy_j", *w.energy_j);
            t.set(row, "joules_per_output_token", optional_real(w.joules_per_output_token()));
            t.set(row, "avg_watts", optional_real(w.avg_watts));
            t.set(row, "energy_source", w.energy_source);
        }
        t.set(row, "peak_gpu_memory_mib", optional_real(w.peak_gpu_memory_mib));
        t.set(row, "peak_rss_mib", optional_real(w.peak_rss_mib));
        t.set(row, "samples_t_pp_s", w.t_pp_s);
        t.set(row, "samples_t_tg_s", w.t_tg_s);
        t.set(row, "predicted", w.predicted);
        if (w.predicted) {
            // 95% prediction intervals (--fast); an unbounded upper end is left empty.
            t.set(row, "prefill_measured", w.prefill_measured);
            t.set(row, "prompt_tps_lo", finite_or_null(w.prediction.prompt_tps.lo));
            t.set(row, "prompt_tps_hi", finite_or_null(w.prediction.prompt_tps.hi));
            t.set(row, "gen_tps_lo", finite_or_null(w.prediction.gen_tps.lo));
            t.set(row, "gen_tps_hi", finite_or_null(w.prediction.gen_tps.hi));
            t.set(row, "overall_tps_lo", finite_or_null(w.prediction.overall_tps.lo));
            t.set(row, "overall_tps_hi", finite_or_null(w.prediction.overall_tps.hi));
            t.set(row, "steps_probed", w.steps_probed);
            t.set(row, "prediction_note", w.prediction_note);
        }
    }
    mark_empty_interrupted(t, c, r.interrupted);
    return t;
}

std::string config_markdown(const config_summary & s) {
    std::string out = "### Test Configuration\n";
    out += fmt::format("- **Model:** {} ({} quantization)\n", esc::md_text(s.model_name), s.quantization);
    out += fmt::format("- **Hardware:** {} ({} backend)\n", esc::md_text(s.hardware), s.backends);
    if (!s.devices.empty()) out += fmt::format("- **Devices:** {}\n", esc::md_text(s.devices));
    out += fmt::format("- **Model Size:** {} MiB (weights only)\n", fmtx::thousands(static_cast<double>(s.model_size) / fmtx::mib));
    out += fmt::format("- **Parameters:** {}\n", fmtx::count_si(static_cast<double>(s.model_n_params)));
    out += fmt::format("- **Batch Size:** {} tokens (micro-batch {})\n", fmtx::thousands(int64_t{s.params.n_batch}),
                       s.params.n_ubatch);
    out += fmt::format("- **Threads:** {}; **GPU layers:** {}; **Flash attention:** {}; **KV cache:** {}/{}\n",
                       s.n_threads, s.params.n_gpu_layers, engine::llama::flash_attn_name(s.params.fa),
                       ggml_type_name(s.params.type_k), ggml_type_name(s.params.type_v));
    return out;
}

std::string bench_markdown(const std::vector<workload::bench_result> & results) {
    // Engine settings that vary across results become leading columns.
    struct column {
        const char * title;
        std::function<std::string(const workload::bench_result &)> get;
    };
    const std::vector<column> candidates = {
        {"Threads", [](const auto & r) { return std::to_string(r.n_threads); }},
        {"GPU layers", [](const auto & r) { return std::to_string(r.test.params.n_gpu_layers); }},
        {"Batch", [](const auto & r) { return std::to_string(r.test.params.n_batch); }},
        {"Micro-batch", [](const auto & r) { return std::to_string(r.test.params.n_ubatch); }},
        {"FA", [](const auto & r) { return engine::llama::flash_attn_name(r.test.params.fa); }},
        {"K cache", [](const auto & r) { return std::string(ggml_type_name(r.test.params.type_k)); }},
        {"V cache", [](const auto & r) { return std::string(ggml_type_name(r.test.params.type_v)); }},
        {"Split", [](const auto & r) { return engine::llama::split_mode_name(r.test.params.split_mode); }},
        {"Main GPU", [](const auto & r) { return std::to_string(r.test.params.main_gpu); }},
        {"Tensor split", [](const auto & r) { return engine::llama::tensor_split_name(r.test.params.tensor_split); }},
        {"mmap", [](const auto & r) { return std::string(r.test.params.use_mmap ? "1" : "0"); }},
        {"Depth", [](const auto & r) { return std::to_string(r.test.n_depth); }},
    };
    std::vector<const column *> cols;
    for (const auto & c : candidates) {
        std::set<std::string> seen;
        for (const auto & r : results) seen.insert(c.get(r));
        if (seen.size() > 1) cols.push_back(&c);
    }
    std::string head = "|", rule = "|";
    for (const auto * c : cols) {
        head += fmt::format(" {} |", c->title);
        rule += "---:|";
    }
    std::string out = head + " Test | Prompt Tokens | Output Tokens | Throughput (t/s) |\n" + rule +
                      "------|---------------|---------------|------------------|\n";
    for (const auto & r : results) {
        std::string line = "|";
        for (const auto * c : cols) line += " " + c->get(r) + " |";
        const char * kind = r.test.n_prompt > 0 && r.test.n_gen > 0 ? "Prompt + Generation (pg)"
                            : r.test.n_prompt > 0                  ? "Prompt Processing (pp)"
                                                                   : "Token Generation (tg)";
        out += fmt::format("{} {}{} | {} | {} | {} |\n", line, kind, r.partial ? " (partial)" : "",
                           r.test.n_prompt > 0 ? std::to_string(r.test.n_prompt) : "-",
                           r.test.n_gen > 0 ? std::to_string(r.test.n_gen) : "-", fmtx::mean_pm(r.ts.mean, r.ts.stddev));
    }
    return out;
}

std::string bench_repetitions_note(const std::vector<workload::bench_result> & results) {
    if (results.empty()) return "";
    std::string out = "\n**Repetitions:**";
    for (const auto & r : results) {
        out += fmt::format(" {}: {} warmup{}{}, {} repetition{}, 95% interval ±{} of the median ({});",
                           r.test.name(), r.n_warmup, r.n_warmup == 1 ? "" : "s",
                           r.n_warmup > 0 && !r.warmup_converged ? " (bound hit, not settled)" : "",
                           r.samples_ts.size(), r.samples_ts.size() == 1 ? "" : "s", fmtx::percent(r.ci95_rel, 2),
                           r.precision_met ? "target ±1% met" : "target ±1% not met");
    }
    out.back() = '\n';
    return out;
}

std::string efficiency_block(const workload::lockstep_result & r) {
    std::string out = "```\nEfficiency = Speedup / Number of Workers";
    if (r.base_workers > 1) out += fmt::format(" (relative to {} workers)", r.base_workers);
    out += "\n\n";
    // A --fast sweep's rows are the predicted ones; a row measured by --verify has its own section.
    const bool any_predicted = std::any_of(r.rows.begin(), r.rows.end(), [](const auto & w) { return w.predicted; });
    for (const auto & w : r.rows) {
        if (!w.skipped.empty() || (any_predicted && !w.predicted)) continue;
        const std::string label = fmt::format("{} worker{}:", w.workers, w.workers == 1 ? "" : "s");
        if (w.workers == r.base_workers) {
            out += fmt::format("{:<11}{:>4} efficiency (baseline)\n", label, "100%");
        } else {
            out += fmt::format("{:<11}{:>4} efficiency ({:.2f}x / {})\n", label, fmtx::percent(w.efficiency), w.speedup,
                               w.workers / std::max(1, r.base_workers));
        }
    }
    return out + "```\n";
}

std::string parallel_markdown(const workload::lockstep_result & r, const workload::lockstep_config & cfg,
                              uint64_t kv_bytes_per_token, bool with_efficiency) {
    const workload::lockstep_row * largest = nullptr;
    for (const auto & row : r.rows) {
        if (row.skipped.empty() && (!largest || row.workers > largest->workers)) largest = &row;
    }
    std::string out;
    if (largest) {
        out += fmt::format("**Context Size:** {} tokens ({} for {} workers)\n",
                           fmtx::thousands(largest->n_ctx), cfg.n_ctx > 0 ? "set with --ctx" : "auto-calculated",
                           largest->workers);
        out += fmt::format("**KV Cache:** {} MiB ({} parallel sequences, {} cells per sequence; {} B per token; llama.cpp "
                           "allocated {} MiB)\n\n",
                           mib(largest->kv_bytes), largest->workers, largest->n_ctx_seq,
                           fmtx::thousands(static_cast<int64_t>(kv_bytes_per_token)), mib(largest->kv_bytes_allocated, 2));
    }
    out += "| Workers | Prompt Tokens | Output Tokens | Total KV | Prompt t/s | Generation t/s | Overall t/s | Speedup |\n";
    out += "|---------|---------------|---------------|----------|------------|----------------|-------------|---------|\n";
    const bool reps = std::any_of(r.rows.begin(), r.rows.end(), [](const auto & w) { return w.t_pp_s.size() > 1; });
    const auto num = [reps](const stats::summary & s) {
        return reps ? fmtx::mean_pm(s.mean, s.stddev) : fmtx::thousands(s.mean);
    };
    // A predicted rate (--fast): ~value, with its 95% prediction interval for the overall column.
    const auto predicted = [](const predict::interval & i, bool with_interval) {
        std::string s = "~" + fmtx::thousands(i.value);
        if (with_interval && i.hi > i.lo) {
            s += fmt::format(" ({}-{})", fmtx::thousands(i.lo), std::isfinite(i.hi) ? fmtx::thousands(i.hi) : "inf");
        }
        return s;
    };
    const bool any_predicted = std::any_of(r.rows.begin(), r.rows.end(), [](const auto & w) { return w.predicted; });
    for (const auto & w : r.rows) {
        if (!w.skipped.empty()) {
            out += fmt::format("| {} | {} | {} | {} | not run: does not fit in memory | | | |\n", w.workers, w.n_prompt, w.n_predict,
                               fmtx::thousands(static_cast<int64_t>(w.total_kv)));
            continue;
        }
        if (w.predicted) {
            out += fmt::format("| {}~{}{} | {} | {} | {} | {} | {} | {} | ~{:.2f}x |\n", w.workers, w.extended ? "*" : "",
                               w.prediction_note.empty() ? "" : "†", w.n_prompt, w.n_predict,
                               fmtx::thousands(static_cast<int64_t>(w.total_kv)), predicted(w.prediction.prompt_tps, false),
                               predicted(w.prediction.gen_tps, false), predicted(w.prediction.overall_tps, true), w.speedup);
            continue;
        }
        out += fmt::format("| {}{}{} | {} | {} | {} | {} | {} | {} | {:.2f}x |\n", w.workers, w.extended ? "*" : "",
                           w.partial ? " (partial)" : any_predicted ? " (measured)" : "", w.n_prompt, w.n_predict,
                           fmtx::thousands(static_cast<int64_t>(w.total_kv)), num(w.prompt_tps), num(w.gen_tps),
                           num(w.overall_tps), w.speedup);
    }
    // Energy (telemetry/energy.h): only where a counter exists; nothing is estimated in its place.
    const auto with_energy = std::find_if(r.rows.begin(), r.rows.end(), [](const auto & w) { return w.energy_j.has_value(); });
    if (with_energy != r.rows.end()) {
        out += fmt::format("\n**Energy** ({}; every timed repetition, prefill included):\n\n"
                           "| Workers | Energy | Average power | J per output token |\n|---:|---:|---:|---:|\n",
                           esc::md_text(with_energy->energy_source));
        for (const auto & w : r.rows) {
            if (!w.energy_j) continue;
            const auto per_token = w.joules_per_output_token();
            out += fmt::format("| {} | {} J | {} | {} |\n", w.workers, fmtx::thousands(*w.energy_j, 1),
                               w.avg_watts ? fmtx::thousands(*w.avg_watts, 1) + " W" : "-",
                               per_token ? fmtx::thousands(*per_token, 4) : "-");
        }
    }
    // Peak memory (telemetry/sampler.h): the highest readings while each W ran, where a sampler ran.
    if (std::any_of(r.rows.begin(), r.rows.end(), [](const auto & w) { return w.peak_rss_mib || w.peak_gpu_memory_mib; })) {
        out += "\n**Peak memory while each W ran** (telemetry samples, context allocation and warmup included):\n\n"
               "| Workers | Peak GPU memory | Peak RSS |\n|---:|---:|---:|\n";
        const auto cell = [](const std::optional<double> & v) { return v ? fmtx::thousands(*v, 0) + " MiB" : std::string("-"); };
        for (const auto & w : r.rows) {
            if (!w.peak_rss_mib && !w.peak_gpu_memory_mib) continue;
            out += fmt::format("| {} | {} | {} |\n", w.workers, cell(w.peak_gpu_memory_mib), cell(w.peak_rss_mib));
        }
    }
    if (any_predicted) {
        out += "\n~ predicted from step probes (`--fast`, docs/fast-mode.md), not measured; the overall column gives the 95% "
               "prediction interval.\n";
        for (const auto & w : r.rows) {
            if (w.predicted && !w.prediction_note.empty()) out += fmt::format("\n† W = {}: {}.\n", w.workers, w.prediction_note);
        }
    }
    if (with_efficiency) out += "\n" + efficiency_block(r);
    if (std::any_of(r.rows.begin(), r.rows.end(), [](const auto & w) { return w.extended; })) {
        out += fmt::format("\n\\* {} by the sweep extension (W doubled until the gain stopped", any_predicted ? "predicted" : "measured");
        out += r.extension_stop.empty() ? ")\n" : ": " + r.extension_stop + ")\n";
    }
    if (r.interrupted) out += interrupted_note();
    return out;
}

std::string plan_markdown(const std::vector<workload::memory_plan> & plan) {
    std::string out = "| Workers | n_ctx | Cells/seq | KV MiB | KV MiB (llama.cpp) | Compute MiB | Weights MiB | Total MiB | Free MiB | Fits |\n"
                      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto & p : plan) {
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", p.workers, fmtx::thousands(p.n_ctx),
                           fmtx::thousands(p.n_ctx_seq), mib(p.kv_bytes), mib(p.kv_bytes_reported), mib(p.compute_bytes),
                           mib(p.weights_bytes), mib(p.total_bytes), mib(p.free_bytes),
                           p.fits ? "yes" : p.refused.empty() ? "**no**" : "**no**: llama.cpp refuses it");
    }
    for (const auto & p : plan) {
        if (!p.refused.empty()) out += fmt::format("\n{} workers: {}\n", p.workers, p.refused);
    }
    if (!plan.empty()) out += fmt::format("\nMemory: {}\n", plan.front().device);
    return out;
}

nlohmann::ordered_json plan_json(const std::vector<workload::memory_plan> & plan) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto & p : plan) {
        arr.push_back({{"workers", p.workers},
                       {"n_ctx", p.n_ctx},
                       {"n_ctx_seq", p.n_ctx_seq},
                       {"kv_bytes", p.kv_bytes},
                       {"kv_bytes_reported", p.kv_bytes_reported},
                       {"compute_bytes", p.compute_bytes},
                       {"weights_bytes", p.weights_bytes},
                       {"total_bytes", p.total_bytes},
                       {"free_bytes", p.free_bytes},
                       {"device", p.device},
                       {"refused", p.refused.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(p.refused)},
                       {"fits", p.fits}});
    }
    return arr;
}

}  // namespace im::report
