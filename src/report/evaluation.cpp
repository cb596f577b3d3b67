#include "report/evaluation.h"
#include "report/split.h"

#include "core/escape.h"
#include "core/format.h"
#include "hardware/specs.h"
#include "report/cost.h"
#include "report/kinds.h"
#include "report/telemetry.h"
#include "model/quant.h"
#include "workload/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::report {

namespace {

using json = nlohmann::ordered_json;

json choice_json(const worker_choice & c, int n_predict, double price_per_hour, double price_per_kwh) {
    if (!c.found) return nullptr;
    json j = {{"workers", c.workers},         {"overall_tps", c.overall_tps}, {"gen_tps", c.gen_tps},
              {"per_stream_tps", c.per_stream_tps}, {"speedup", c.speedup}, {"efficiency", c.efficiency},
              {"marginal_speedup", c.marginal}, {"kv_bytes", c.kv_bytes},  {"ttft_s", c.ttft_s},
              {"tpot_s", c.tpot_s},           {"e2e_s", c.e2e_s},           {"reason", c.reason}};
    const double out_tps = output_tokens_per_s(c.workers, n_predict, c.e2e_s);
    j["output_tps"] = out_tps;
    j["usd_per_million_output"] = price_per_hour > 0 ? json(usd_per_million_output(price_per_hour, out_tps)) : json(nullptr);
    j["joules_per_output_token"] = c.joules_per_output_token ? json(*c.joules_per_output_token) : json(nullptr);
    // --price-per-kwh: from the measured energy only; a row without a counter gets nothing estimated.
    j["usd_per_million_output_energy"] = price_per_kwh > 0 && c.joules_per_output_token
                                             ? json(usd_per_million_output_energy(*c.joules_per_output_token, price_per_kwh))
                                             : json(nullptr);
    if (price_per_kwh > 0 && !c.joules_per_output_token) j["usd_per_million_output_energy_note"] = "no energy counter";
    return j;
}

json steps_json(const std::vector<scaling_step> & steps) {
    json arr = json::array();
    for (const auto & st : steps) {
        arr.push_back({{"from_workers", st.from_workers}, {"to_workers", st.to_workers}, {"marginal_speedup", st.marginal},
                       {"gen_gain", st.gen_gain},         {"overall_gain", st.overall_gain},
                       {"step_ms_from", st.step_ms_from}, {"step_ms_to", st.step_ms_to}});
    }
    return arr;
}

std::string mib(uint64_t bytes, int decimals = 0) {
    return fmtx::thousands(static_cast<double>(bytes) / fmtx::mib, decimals);
}

const workload::bench_result * find_bench(const evaluation & e, bool gen) {
    for (const auto & b : e.bench) {
        if (gen ? (b.test.n_gen > 0 && b.test.n_prompt == 0) : (b.test.n_prompt > 0 && b.test.n_gen == 0)) return &b;
    }
    return nullptr;
}

std::string pct_change(double from, double to) {
    const double p = (to / from - 1.0) * 100.0;
    return fmt::format("{}{:.0f}%", p >= 0 ? "+" : "", p);
}

std::string step_list(const std::vector<const scaling_step *> & steps) {
    std::string out;
    for (const auto * st : steps) {
        out += fmt::format("{}{} → {}: {:.2f}x", out.empty() ? "" : ", ", st->from_workers, st->to_workers, st->marginal);
    }
    return out;
}

}  // namespace

std::string knee_sentence(const recommendations & rec, double knee_min_marginal, int first_workers, int last_workers) {
    std::vector<const scaling_step *> before, after;  // steps below the threshold, up to and past the knee
    for (const auto & st : rec.steps) {
        if (st.marginal >= knee_min_marginal) continue;
        (st.to_workers <= rec.knee_workers ? before : after).push_back(&st);
    }
    const std::string per = fmt::format("{:.2f}x speedup per added worker", knee_min_marginal);
    if (before.empty() && after.empty()) {
        return fmt::format("Every step up to {} workers adds at least {}: no knee within the measured range", last_workers,
                           per);
    }
    if (rec.knee_workers == first_workers) {
        return fmt::format("No step adds {} ({}): the knee is the baseline, {}", per, step_list(after),
                           fmtx::count_of(first_workers, "worker", "workers"));
    }
    std::string s;
    if (before.empty()) {
        s = fmt::format("Every step up to {} workers adds at least {}; beyond {} each step adds less ({}): diminishing "
                        "returns beyond {} workers",
                        rec.knee_workers, per, rec.knee_workers, step_list(after), rec.knee_workers);
    } else {
        s = fmt::format("{} below {} ({}), but a later step rose above it again: the knee is {} workers, the largest "
                        "W whose step still adds {}",
                        before.size() == 1 ? "One step fell" : "Steps fell", per, step_list(before), rec.knee_workers,
                        per);
        if (!after.empty()) s += fmt::format("; beyond {} every step adds less ({})", rec.knee_workers, step_list(after));
        else s += "; it is the largest W measured";
    }
    return s;
}

std::vector<const workload::lockstep_row *> measured_rows(const workload::lockstep_result & r) {
    std::vector<const workload::lockstep_row *> out;
    for (const auto & row : r.rows) {
        if (row.skipped.empty()) out.push_back(&row);
    }
    return out;
}

json to_json(const evaluation & e) {
    json j;
    j["schema_version"] = report_schema_version;
    j["kind"] = "evaluate";
    j["infermeter_version"] = e.ctx.infermeter_version;
    j["llama_commit"] = e.ctx.llama_commit;
    j["build_commit"] = e.ctx.build_commit;
    j["test_time"] = e.ctx.test_time;
    j["command_line"] = e.ctx.command_line;
    j["profile"] = e.profile;
    j["interrupted"] = e.interrupted;
    j["stages_done"] = e.stages_done;
    j["configuration"] = e.configuration;
    j["seconds"] = e.seconds;
    j["machine"] = {{"cpu_info", e.ctx.cpu_info}, {"gpu_info", e.ctx.gpu_info}, {"backends", e.ctx.backends},
                    {"devices", e.ctx.devices}};
    j["model"] = {{"filename", e.ctx.model_filename}, {"type", e.ctx.model_type},      {"name", e.config.model_name},
                  {"quantization", e.config.quantization}, {"size_bytes", e.ctx.model_size},
                  {"n_params", e.ctx.model_n_params}, {"kv_bytes_per_token", e.kv_bytes_per_token}};
    const auto & p = e.config.params;
    j["engine"] = {{"n_threads", e.config.n_threads},     {"n_gpu_layers", p.n_gpu_layers},
                   {"flash_attn", engine::llama::flash_attn_name(p.fa)}, {"n_batch", p.n_batch},
                   {"n_ubatch", p.n_ubatch},             {"type_k", ggml_type_name(p.type_k)},
                   {"type_v", ggml_type_name(p.type_v)}, {"split_mode", engine::llama::split_mode_name(p.split_mode)},
                   {"tensor_split", engine::llama::tensor_split_name(p.tensor_split)}, {"rpc", engine::llama::rpc_name(p.rpc)}};
    j["dataset"] = {{"path", e.dataset_path}, {"synthetic", e.dataset_synthetic}, {"note", e.dataset_note},
                    {"analysis", e.analysis ? dataset::to_json(*e.analysis) : json(nullptr)}};
    j["parameters"] = {{"scenario", e.scenario},           {"n_prompt", e.n_prompt},
                       {"n_predict", e.n_predict},         {"workers", e.lockstep_cfg.workers},
                       {"ctx_min", e.lockstep_cfg.ctx_min}, {"kv_unified", e.lockstep_cfg.kv_unified},
                       {"max_workers", e.lockstep_cfg.max_workers}};
    // The measured rows live in `tables` only (one serialization: --resume, compare and the store
    // read them); `parallel` keeps what describes the sweep as a whole.
    j["parallel"] = {{"mode", "lockstep"},
                     {"base_workers", e.lockstep.base_workers},
                     {"extension_stop", e.lockstep.extension_stop},
                     {"plan", plan_json(e.lockstep.plan)}};
    if (e.fast) {
        // How the rows were predicted (docs/fast-mode.md); the predicted rows are in tables.parallel.
        json regimes = json::array();
        for (const auto & r : e.fast->steps.regimes) {
            regimes.push_back({{"w_min", r.w_min}, {"w_max", r.w_max}, {"a_s", r.a}, {"b_s", r.b}, {"c_s", r.c},
                               {"resid_sd_rel", r.resid_sd_rel}, {"max_rel_residual", r.max_rel_residual},
                               {"n_samples", r.n_samples}});
        }
        json steps = json::array();
        for (const auto & st : e.fast->probes.steps) steps.push_back({{"workers", st.workers}, {"depth", st.depth}, {"seconds", st.seconds}});
        json prefills = json::array();
        for (const auto & pf : e.fast->probes.prefills) prefills.push_back({{"tokens", pf.tokens}, {"seconds", pf.seconds}});
        json changes = json::array();
        for (const auto & ch : e.fast->changes) {
            changes.push_back({{"workers_before", ch.workers_before}, {"workers", ch.workers}, {"located", ch.workers == ch.workers_before + 1},
                               {"per_seq_trend_s", ch.per_seq_trend_s}, {"trend_is_one_w", ch.trend_is_one_w}, {"per_seq_s", ch.per_seq_s}, {"jump_rel", ch.jump_rel}});
        }
        json switches = json::array();
        for (const auto & sw : e.fast->probes.switches.switches) {
            json probes = json::array();
            for (const auto & sp : sw.probes) {
                const auto rel = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
                probes.push_back({{"workers", sp.probe.sample.workers}, {"depth", sp.probe.sample.depth},
                                  {"seconds", sp.probe.sample.seconds}, {"spread_rel", sp.probe.spread_rel},
                                  {"side", predict::switch_side_name(sp.test.side)}, {"resid_before_rel", rel(sp.test.resid_before_rel)},
                                  {"resid_after_rel", rel(sp.test.resid_after_rel)}, {"tolerance", sp.tolerance}});
            }
            switches.push_back({{"sweep_before", sw.sweep_before}, {"sweep_after", sw.sweep_after}, {"w_before", sw.w_before},
                                {"w_after", sw.w_after}, {"located", sw.located()}, {"probe_bound", sw.probe_bound},
                                {"stopped", sw.stopped}, {"probes", probes}});
        }
        json fj = {{"probe_seconds", e.fast->probes.seconds}, {"tolerance", e.fast->tolerance}, {"regimes", regimes},
                   {"regime_starts", e.fast->steps.regime_starts}, {"regime_changes", changes}, {"switches", switches},
                   {"switch_probe_seconds", e.fast->probes.switch_probe_s}, {"isolated_workers", e.fast->probes.switches.isolated},
                   {"prefill", {{"e_s", e.fast->prefill.e}, {"f_s", e.fast->prefill.f},
                   {"g_s", e.fast->prefill.g}}}, {"step_probes", steps}, {"prefill_probes", prefills}};
        if (e.verified) {
            fj["verified"] = {{"workers", e.verified->workers}, {"prompt_tps", e.verified->prompt_tps.mean},
                              {"gen_tps", e.verified->gen_tps.mean}, {"overall_tps", e.verified->overall_tps.mean}};
            if (const auto * pred = workload::predicted_row(*e.fast, e.verified->workers)) {
                fj["verified"]["error_pct"] = workload::prediction_error_pct(*pred, *e.verified);
            }
        }
        j["parallel"]["fast"] = fj;
    }
    j["roofline"] = e.roofline ? hardware::to_json(*e.roofline) : json(nullptr);
    if (!e.roofline_note.empty()) j["roofline_note"] = e.roofline_note;
    if (e.split) j["split"] = split_json(*e.split);  // only where a run was split: earlier reports stay as they were
    j["serving"] = e.serving ? json(serving_json(*e.serving)) : json(nullptr);
    j["tune"] = e.tune ? json(tune_json(*e.tune)) : json(nullptr);
    j["recommendations"] = {{"interactive", choice_json(e.rec.interactive, e.n_predict, e.price_per_hour, e.price_per_kwh)},
                            {"batch", choice_json(e.rec.batch, e.n_predict, e.price_per_hour, e.price_per_kwh)},
                            {"max_throughput", choice_json(e.rec.max_throughput, e.n_predict, e.price_per_hour, e.price_per_kwh)},
                            {"price_per_hour", e.price_per_hour > 0 ? json(e.price_per_hour) : json(nullptr)},
                            {"price_per_kwh", e.price_per_kwh > 0 ? json(e.price_per_kwh) : json(nullptr)},
                            {"max_stop", e.rec.max_stop},
                            {"knee_workers", e.rec.knee_workers},
                            {"steps", steps_json(e.rec.steps)},
                            {"irregular", e.rec.irregular},
                            {"notes", e.rec.notes},
                            {"knee_min_marginal", e.rec_opts.knee_min_marginal},
                            {"batch_within", e.rec_opts.batch_within},
                            {"slo_ttft_s", e.rec_opts.slo_ttft_s ? json(*e.rec_opts.slo_ttft_s) : json(nullptr)},
                            {"slo_tpot_s", e.rec_opts.slo_tpot_s ? json(*e.rec_opts.slo_tpot_s) : json(nullptr)}};
    j["telemetry"] = e.telemetry ? telemetry_json(*e.telemetry) : json(nullptr);
    j["tables"] = json::object();
    for (const auto & t : tables_of(e)) j["tables"][t.name] = report::to_json(t);
    return j;
}

std::vector<table> tables_of(const evaluation & e) {
    workload::lockstep_result lockstep = e.lockstep;  // rows say interrupted whichever stage was stopped
    lockstep.interrupted = lockstep.interrupted || e.interrupted;
    std::vector<table> out{bench_table(e.bench, e.ctx, e.interrupted), parallel_table(lockstep, e.lockstep_cfg, e.ctx)};
    if (e.serving) out.push_back(serving_table(*e.serving, e.ctx, &e.lockstep_cfg.params));
    return out;
}

namespace {

// The rows of one kind in a report.json's `tables` (empty when absent).
table rows_in(const nlohmann::json & j, const std::string & kind) {
    const auto & k = result_kind_of(kind);
    if (!j.is_object() || !j.contains("tables") || !j["tables"].is_object() || !j["tables"].contains(kind)) return k.shape;
    return table_from_json(j["tables"][kind], k.shape);
}

}  // namespace

std::vector<workload::bench_result> bench_from_json(const nlohmann::json & j) {
    std::vector<workload::bench_result> out;
    const auto t = rows_in(j, "bench");
    for (size_t i = 0; i < t.rows.size(); ++i) {
        workload::bench_result r;
        r.samples_ts = reals_of(t.get(i, "samples_ts"));
        if (r.samples_ts.empty()) continue;  // nothing measured in this row
        r.test.n_prompt = static_cast<int>(int_of(t.get(i, "n_prompt")));
        r.test.n_gen = static_cast<int>(int_of(t.get(i, "n_gen")));
        r.test.n_depth = static_cast<int>(int_of(t.get(i, "n_depth")));
        r.n_threads = static_cast<int>(int_of(t.get(i, "n_threads")));
        r.n_ctx_allocated = static_cast<int>(int_of(t.get(i, "n_ctx_allocated")));
        r.test_time = text_of(t.get(i, "test_time"));
        if (const auto * ns = std::get_if<std::vector<int64_t>>(&t.get(i, "samples_ns"))) r.samples_ns = *ns;
        if (const auto * n = std::get_if<int64_t>(&t.get(i, "n_warmup"))) r.n_warmup = static_cast<int>(*n);
        if (const auto * b = std::get_if<bool>(&t.get(i, "warmup_converged"))) r.warmup_converged = *b;
        if (const auto * b = std::get_if<bool>(&t.get(i, "precision_met"))) r.precision_met = *b;
        r.ci95_rel = workload::ci95_relative(r.samples_ts);
        r.ts = stats::summarize(r.samples_ts);
        stats::welford ns;
        for (int64_t s : r.samples_ns) ns.add(static_cast<double>(s));
        r.avg_ns = ns.mean();
        r.stddev_ns = ns.stddev().value_or(0.0);
        out.push_back(r);
    }
    return out;
}

std::vector<workload::lockstep_row> lockstep_rows_from_json(const nlohmann::json & j) {
    std::vector<workload::lockstep_row> out;
    const auto t = rows_in(j, "parallel");
    for (size_t i = 0; i < t.rows.size(); ++i) {
        if (row_skipped(result_kind_of("parallel"), t, i)) continue;
        if (const auto * p = std::get_if<bool>(&t.get(i, "partial")); p && *p) continue;  // interrupted W: not reusable
        const auto t_pp = reals_of(t.get(i, "samples_t_pp_s"));
        const auto t_tg = reals_of(t.get(i, "samples_t_tg_s"));
        if (t_pp.empty() || t_tg.empty()) continue;  // nothing measured in this row
        workload::lockstep_row r;
        r.workers = static_cast<int>(int_of(t.get(i, "workers")));
        r.n_prompt = static_cast<int>(int_of(t.get(i, "n_prompt")));
        r.n_predict = static_cast<int>(int_of(t.get(i, "n_predict")));
        r.n_ctx = int_of(t.get(i, "n_ctx"));
        r.n_ctx_seq = int_of(t.get(i, "n_ctx_seq"));
        r.kv_bytes = static_cast<uint64_t>(int_of(t.get(i, "kv_bytes")));
        r.kv_bytes_allocated = static_cast<uint64_t>(int_of(t.get(i, "kv_bytes_allocated")));
        r.total_kv = static_cast<uint64_t>(int_of(t.get(i, "total_kv")));
        r.rss_bytes = static_cast<uint64_t>(int_of(t.get(i, "rss_bytes")));
        r.device_used_bytes = static_cast<uint64_t>(int_of(t.get(i, "device_used_bytes")));
        r.n_threads = static_cast<int>(int_of(t.get(i, "n_threads")));
        r.test_time = text_of(t.get(i, "test_time"));
        r.extended = text_of(t.get(i, "extended")) == "1";
        r.energy_j = real_of(t.get(i, "energy_j"));
        r.avg_watts = real_of(t.get(i, "avg_watts"));
        r.energy_source = text_of(t.get(i, "energy_source"));
        r.peak_gpu_memory_mib = real_of(t.get(i, "peak_gpu_memory_mib"));
        r.peak_rss_mib = real_of(t.get(i, "peak_rss_mib"));
        for (size_t k = 0; k < std::min(t_pp.size(), t_tg.size()); ++k) r.add_repetition(t_pp[k], t_tg[k]);
        r.summarize();
        out.push_back(r);
    }
    return out;
}

std::vector<std::string> key_insights(const evaluation & e) {
    std::vector<std::string> out;
    const auto rows = ascending_rows(e.lockstep);
    if (rows.size() < 2) return out;
    const auto & first = *rows.front();
    const auto & last = *rows.back();

    {  // 1. prompt processing
        const double gain = last.prompt_tps.mean / first.prompt_tps.mean - 1.0;
        std::string s = fmt::format("**Prompt Processing Scaling:**\n   - {} → {} t/s from {} to {} workers ({})\n",
                                    fmtx::thousands(first.prompt_tps.mean, 0), fmtx::thousands(last.prompt_tps.mean, 0),
                                    first.workers, last.workers, pct_change(first.prompt_tps.mean, last.prompt_tps.mean));
        if (std::fabs(gain) < 0.15) {
            s += fmt::format("   - A single {}-token prompt already fills a batch: prompt processing is near its peak with one request\n",
                             e.n_prompt);
        } else {
            s += fmt::format("   - Batching the prompts of several workers raises prompt throughput by {}: one {}-token "
                             "prompt does not fill the hardware\n", fmtx::percent(gain), e.n_prompt);
        }
        out.push_back(s);
    }
    {  // 2. token generation
        std::string s = "**Token Generation Scaling (The Critical Metric):**\n";
        for (size_t i = 0; i < rows.size(); ++i) {
            const auto * r = rows[i];
            s += fmt::format("   - **{} worker{}:** {} t/s{}\n", r->workers, r->workers == 1 ? "" : "s",
                             fmtx::thousands(r->gen_tps.mean),
                             i == 0 ? std::string(" baseline")
                                    : fmt::format(" ({}{})", pct_change(first.gen_tps.mean, r->gen_tps.mean),
                                                  i == 1 ? std::string()
                                                         : fmt::format("; {} over {}", pct_change(rows[i - 1]->gen_tps.mean, r->gen_tps.mean),
                                                                       rows[i - 1]->workers)));
        }
        s += "\n   **" + knee_sentence(e.rec, e.rec_opts.knee_min_marginal, first.workers, last.workers) + "**\n";
        for (const auto & line : e.rec.irregular) s += "\n   " + line + ".\n";
        out.push_back(s);
    }
    {  // 3. overall
        std::string s = "**Overall Throughput:**\n";
        for (size_t i = 1; i < rows.size(); ++i) {
            s += fmt::format("   - **{}x workers:** {} ({} → {} t/s)\n", rows[i]->workers / std::max(1, first.workers),
                             pct_change(first.overall_tps.mean, rows[i]->overall_tps.mean),
                             fmtx::thousands(first.overall_tps.mean, 0), fmtx::thousands(rows[i]->overall_tps.mean, 0));
        }
        if (e.rec.knee_workers == first.workers) {
            s += fmt::format("\n   **No step beyond {} adds {:.2f}x speedup per added worker: more workers raise total "
                             "throughput only a little and slow every request.**\n",
                             fmtx::count_of(first.workers, "worker", "workers"), e.rec_opts.knee_min_marginal);
        } else if (e.rec.interactive.found) {
            s += fmt::format("\n   **Best efficiency trade-off at {} parallel workers** ({:.2f}x speedup with {}x workers "
                             "= {} efficiency)\n", e.rec.interactive.workers, e.rec.interactive.speedup,
                             e.rec.interactive.workers / std::max(1, first.workers), fmtx::percent(e.rec.interactive.efficiency));
            if (e.rec.interactive.workers != e.rec.knee_workers) {
                s += fmt::format("   The efficiency knee, {} workers, misses the SLO.\n", e.rec.knee_workers);
            }
        }
        out.push_back(s);
    }
    {  // 4. memory
        out.push_back(fmt::format("**Memory Scaling with Dynamic Context:**\n   - KV cache grows linearly with workers: {} → "
                                  "{} MiB ({:.2f}x)\n   - Context {}: {} → {} tokens ({} B of KV per token)\n",
                                  mib(first.kv_bytes), mib(last.kv_bytes),
                                  static_cast<double>(last.kv_bytes) / static_cast<double>(std::max<uint64_t>(1, first.kv_bytes)),
                                  e.lockstep_cfg.n_ctx > 0 ? "fixed by --ctx" : "auto-calculated",
                                  fmtx::thousands(first.n_ctx), fmtx::thousands(last.n_ctx),
                                  fmtx::thousands(static_cast<int64_t>(e.kv_bytes_per_token))));
    }
    return out;
}

std::string ascii_efficiency_chart(const workload::lockstep_result & r) {
    std::string out = "```\nEfficiency by workers (each # = 4%)\n";
    for (const auto & w : r.rows) {
        if (!w.skipped.empty()) continue;
        const int n = static_cast<int>(std::lround(std::clamp(w.efficiency, 0.0, 1.5) * 25));
        out += fmt::format("{:>4} | {:<25} {}\n", w.workers, std::string(static_cast<size_t>(n), '#'), fmtx::percent(w.efficiency));
    }
    return out + "```\n";
}

std::vector<step_breakdown> step_breakdowns(const evaluation & e) {
    std::vector<step_breakdown> out;
    if (!e.fast || e.fast->steps.regimes.empty() || !e.roofline) return out;
    const auto & ceil = e.roofline->ceil;
    const auto & cost = e.roofline->cost;
    const double depth = e.n_prompt + (e.n_predict - 1) / 2.0;  // the sweep's mean decode position
    const double peak = hardware::matmul_ceiling_for(ceil, cost.weight_type);
    std::vector<const workload::lockstep_row *> rows;
    for (const auto * r : measured_rows(e.lockstep)) rows.push_back(r);
    if (e.verified) rows.push_back(&*e.verified);
    for (const auto * r : rows) {
        if (r->n_predict <= 0 || r->t_tg_mean_s <= 0) continue;
        step_breakdown b;
        b.workers = r->workers;
        b.measured = !r->predicted;
        const double step_s = r->t_tg_mean_s / r->n_predict;
        b.matmul_rate = hardware::matmul_model_rate(ceil, r->workers);
        const double weight_flops = 2.0 * static_cast<double>(cost.matmul_params) * r->workers;
        b.parts = predict::decompose(step_s, b.matmul_rate > 0 ? weight_flops : 0.0, b.matmul_rate > 0 ? b.matmul_rate : 1.0,
                                     std::max(0.0, predict::attention_s(e.fast->steps, r->workers, depth)), 0.0);
        const double bytes = hardware::decode_step_bytes(cost, r->workers, depth);
        b.bandwidth_share = ceil.mem_bw_bytes_per_s > 0 ? bytes / step_s / ceil.mem_bw_bytes_per_s : 0.0;
        const double matmul_share = b.parts.matmul_s / step_s;
        if (b.bandwidth_share >= 0.6) {
            b.limiter = fmt::format("bandwidth ({} of {})", fmtx::percent(b.bandwidth_share), hardware::format_bytes_per_s(ceil.mem_bw_bytes_per_s));
        } else if (b.matmul_rate > 0 && matmul_share >= 0.5 && peak > 0 && b.matmul_rate >= 0.6 * peak) {
            b.limiter = "compute (weight matmuls near the matmul ceiling)";
        } else if (b.matmul_rate > 0 && matmul_share >= 0.5) {
            b.limiter = fmt::format("kernel efficiency at this batch (the N = {} matmul runs at {} of the large-matmul rate)",
                                    r->workers, fmtx::percent(peak > 0 ? b.matmul_rate / peak : 0.0));
        } else if (b.parts.attention_s / step_s >= 0.5) {
            b.limiter = "attention over the KV cache";
        } else {
            b.limiter = "fixed per-step overhead (launch, synchronization, scheduling)";
        }
        out.push_back(b);
    }
    return out;
}

std::string step_breakdown_markdown(const evaluation & e) {
    const auto rows = step_breakdowns(e);
    if (rows.empty()) return "";
    std::string md = fmt::format("### Where a Decode Step Goes (at depth {:.0f})\n\n", e.n_prompt + (e.n_predict - 1) / 2.0);
    md += "| W | Step (ms) | Weight matmuls (ms) | Attention/KV (ms) | Sampling (ms) | Remainder (ms) | Limiter |\n";
    md += "|---|---:|---:|---:|---:|---:|---|\n";
    const auto ms = [](double s) { return fmtx::thousands(s * 1e3, 2); };
    for (const auto & b : rows) {
        md += fmt::format("| {}{} | {} | {} | {} | {} | {}{} | {} |\n", b.workers, b.measured ? " (measured)" : "~",
                          ms(b.parts.step_s), b.matmul_rate > 0 ? ms(b.parts.matmul_s) : std::string("-"),
                          ms(b.parts.attention_s), ms(b.parts.sampling_s), ms(b.parts.remainder_s),
                          b.parts.overcommitted ? " (parts exceed the step)" : "", b.limiter);
    }
    md += "\nWeight matmuls: 2 × matmul parameters × W FLOPs at the matmul rate probed at the model's own shapes with "
          "N = W columns; attention/KV: the c·W·d term of the fitted step model; sampling: 0 in lockstep; remainder: "
          "the rest (docs/fast-mode.md).\n";
    return md;
}

std::string to_markdown(const evaluation & e) {
    std::string md = "# Performance Evaluation\n\n";
    md += fmt::format("{} ({}) on {}, {} backend; profile `{}`; measured by infermeter {} (llama.cpp {}) on {}.\n\n",
                      esc::md_text(e.config.model_name), e.config.quantization, esc::md_text(e.config.hardware),
                      e.config.backends, e.profile,
                      e.ctx.infermeter_version, e.ctx.build_commit, e.ctx.test_time);
    if (e.interrupted) md += "> **Interrupted:** this report holds what was measured before the run was stopped.\n\n";
    if (e.dataset_synthetic) {
        md += fmt::format("> **Dataset:** synthetic — {}. Pass `--dataset FILE` to evaluate your own.\n\n",
                          esc::md_text(e.dataset_note));
    } else {
        md += fmt::format("> **Dataset:** {}\n\n", esc::md_code(e.dataset_path));
    }
    md += "Benchmark parameter recommendations based on dataset analysis.\n\n";
    if (e.analysis) md += dataset::to_markdown(*e.analysis, /*with_title=*/false) + "\n";
    md += fmt::format("The measurements below use n-prompt {} and n-predict {} ({}).\n\n---\n\n", e.n_prompt, e.n_predict,
                      e.scenario);

    if (e.tune) {
        md += "## Engine Settings (`--tune`)\n\n";
        if (e.tune->result.trials.empty()) {
            md += fmt::format("The settings the interrupted run's search chose, reapplied: {}.\n\n", esc::md_code(e.tune->applied_flags));
        } else {
            std::string t = tune_markdown(*e.tune);
            if (t.rfind("## ", 0) == 0) t.insert(0, "#");  // a section of this report
            md += t + fmt::format("\nEvery stage below ran with {}.\n\n", esc::md_code(e.tune->applied_flags));
        }
        md += "---\n\n";
    }
    md += "## Benchmark Results\n\n" + config_markdown(e.config);
    md += fmt::format("- **Dynamic Context:** {}\n\n", e.lockstep_cfg.n_ctx > 0 ? "fixed by --ctx"
                                                                              : "auto-calculated per worker count: max(ctx-min, W × pad256(n-prompt + n-predict))");
    md += "### Single Request Performance (llama-bench semantics)\n\n" + bench_markdown(e.bench) + bench_repetitions_note(e.bench) + "\n";
    md += fmt::format("### Parallel Workload Performance ({} - {} token outputs)\n\n", e.scenario, e.n_predict);
    md += parallel_markdown(e.lockstep, e.lockstep_cfg, e.kv_bytes_per_token, false) + "\n";
    if (e.fast && !e.fast->probes.steps.empty()) {
        md += workload::fast_markdown(*e.fast) + "\n";
        if (const auto * p = e.verified ? workload::predicted_row(*e.fast, e.verified->workers) : nullptr) {
            md += workload::verify_markdown(*p, *e.verified) + "\n";
        }
    }

    const auto insights = key_insights(e);
    if (!insights.empty()) {
        md += "### Key Performance Insights\n\n";
        for (size_t i = 0; i < insights.size(); ++i) md += fmt::format("{}. {}\n", i + 1, insights[i]);
    }
    md += "### Parallel Scaling Analysis\n\n" + efficiency_block(e.lockstep) + "\n" + ascii_efficiency_chart(e.lockstep) + "\n";
    if (e.roofline) md += hardware::to_markdown(*e.roofline) + "\n";
    if (!e.roofline_note.empty()) md += fmt::format("### Roofline\n\nNot run: {}\n\n", esc::md_text(e.roofline_note));
    md += step_breakdown_markdown(e);
    if (e.split) md += "#" + split_markdown(*e.split) + "\n";  // a subsection of the analysis
    if (e.serving) md += serving_markdown(*e.serving) + "\n";
    if (e.telemetry) md += telemetry_markdown(*e.telemetry);

    md += "### Performance Recommendations\n\n";
    if (e.fast) {
        md += "These recommendations rest on **predicted** lockstep rows (`--fast`, docs/fast-mode.md), not on a measured "
              "sweep";
        md += e.verified ? fmt::format("; W = {} was measured to check them (above).\n\n", e.verified->workers)
                         : "; `--verify W` measures one worker count to check them.\n\n";
    }
    const auto & rec = e.rec;
    const auto choice_lines = [&](const worker_choice & c) {
        return fmt::format("   - Throughput: {} t/s overall, {} t/s generation ({} t/s per stream)\n"
                           "   - Speedup {:.2f}x, efficiency {}\n   - KV cache: {} MiB\n"
                           "   - Latency per request: TTFT {}, TPOT {} ms, {} for {} tokens\n",
                           fmtx::thousands(c.overall_tps, 0), fmtx::thousands(c.gen_tps, 0),
                           fmtx::thousands(c.per_stream_tps, 1), c.speedup, fmtx::percent(c.efficiency), mib(c.kv_bytes),
                           fmtx::duration(c.ttft_s), fmtx::thousands(c.tpot_s * 1e3, 1), fmtx::duration(c.e2e_s), e.n_predict);
    };
    if (e.serving) {
        // DESIGN §3: with continuous-mode data the Interactive choice is SLO-driven; the lockstep knee
        // is shown beside it as the efficiency knee.
        md += "**For Real-Time/Interactive Use (SLO):** " + interactive_choice(*e.serving).sentence + "\n\n";
        if (rec.interactive.found) {
            md += fmt::format("**Efficiency knee (lockstep):** {} — {}\n\n{}\n",
                              fmtx::count_of(rec.interactive.workers, "worker", "parallel workers"), rec.interactive.reason,
                              choice_lines(rec.interactive));
        }
    } else if (rec.interactive.found) {
        md += fmt::format("**For Real-Time/Interactive Use:** {} — {}\n\n{}\n",
                          fmtx::count_of(rec.interactive.workers, "worker", "parallel workers"),
                          rec.interactive.reason, choice_lines(rec.interactive));
    }
    if (rec.batch.found) {
        md += fmt::format("**For High-Throughput Offline Scenarios (Batch Inference):** {} — {}\n\n{}\n",
                          fmtx::count_of(rec.batch.workers, "worker", "workers"), rec.batch.reason, choice_lines(rec.batch));
    }
    if (rec.max_throughput.found) {
        md += fmt::format("**Maximum Throughput (measured):** {}, {} t/s overall",
                          fmtx::count_of(rec.max_throughput.workers, "worker", "workers"),
                          fmtx::thousands(rec.max_throughput.overall_tps, 0));
        md += rec.max_stop.empty() ? ".\n\n" : fmt::format("; the sweep stopped because {}.\n\n", rec.max_stop);
    }
    for (const auto & n : rec.notes) md += "- " + n + "\n";

    const auto rows = measured_rows(e.lockstep);
    md += "**Memory vs Throughput Trade-offs:**\n\n| Workers | KV cache | Overall t/s | Generation t/s | Efficiency |\n|---:|---:|---:|---:|---:|\n";
    for (const auto * r : rows) {
        md += fmt::format("| {} | {} MiB | {} | {} | {} |\n", r->workers, mib(r->kv_bytes), fmtx::thousands(r->overall_tps.mean),
                          fmtx::thousands(r->gen_tps.mean), fmtx::percent(r->efficiency));
    }
    md += "\n**Real-World Latency:**\n\n";
    if (const auto * tg = find_bench(e, true)) {
        md += fmt::format("- Single {}-token generation: ~{} ({} t/s, single request)\n", tg->test.n_gen,
                          fmtx::duration(tg->test.n_gen / tg->ts.mean), fmtx::thousands(tg->ts.mean));
    }
    if (rec.interactive.found && rec.interactive.workers > 1) {
        md += fmt::format("- With {} parallel: {} per request, {} requests served in that time\n", rec.interactive.workers,
                          fmtx::duration(rec.interactive.e2e_s), rec.interactive.workers);
    }
    md += "\n### Request Latencies (lockstep)\n\nEvery request of a step starts together: TTFT is the joint prefill, TPOT the "
          "time of one decode step, E2E their sum for n-predict tokens.\n\n"
          "| Workers | TTFT | TPOT | E2E | Per-stream t/s |\n|---:|---:|---:|---:|---:|\n";
    const workload::lockstep_row * prev = nullptr;
    for (const auto * r : rows) {
        const auto c = choice_of(*r, prev);
        prev = r;
        md += fmt::format("| {} | {} | {} ms | {} | {} |\n", r->workers, fmtx::duration(c.ttft_s),
                          fmtx::thousands(c.tpot_s * 1e3, 1), fmtx::duration(c.e2e_s), fmtx::thousands(c.per_stream_tps, 1));
    }

    // --price-per-hour: what a million output tokens cost at each choice (output tokens over the whole
    // request time: W·n_predict / (T_PP + T_TG)).
    // --price-per-kwh: the energy those tokens took, from the row's counters; never estimated.
    const bool priced = e.price_per_hour > 0;
    const bool energy_priced = e.price_per_kwh > 0;
    md += fmt::format("\n**Trade-off Decision Matrix:**\n\n| Scenario | Workers | Throughput | Efficiency | Memory |{}{} Best For |\n"
                      "|----------|---------|------------|------------|--------|{}{}----------|\n",
                      priced ? " $ / M output tokens |" : "", energy_priced ? " Energy $ / M output tokens |" : "",
                      priced ? "---:|" : "", energy_priced ? "---:|" : "");
    const auto matrix_row = [&](const char * name, const worker_choice & c, const char * best) {
        if (!c.found) return std::string();
        std::string cost = priced ? fmt::format(" {} |", fmtx::thousands(usd_per_million_output(
                                                                e.price_per_hour, output_tokens_per_s(c.workers, e.n_predict, c.e2e_s)),
                                                            2))
                                  : "";
        if (energy_priced) {
            cost += c.joules_per_output_token
                        ? fmt::format(" {} |", fmtx::thousands(usd_per_million_output_energy(*c.joules_per_output_token, e.price_per_kwh), 4))
                        : " no energy counter |";
        }
        return fmt::format("| {} | {} | {} t/s | {} | {} MiB |{} {} |\n", name, c.workers, fmtx::thousands(c.overall_tps, 0),
                           fmtx::percent(c.efficiency), mib(c.kv_bytes), cost, best);
    };
    md += matrix_row("Interactive API", rec.interactive, "Real-time responses");
    md += matrix_row("Batch Processing", rec.batch, "Dataset generation");
    md += matrix_row("Maximum Throughput", rec.max_throughput, "Offline bulk tasks");
    if (priced) {
        md += fmt::format("\nCost at ${}/hour: price / (output tokens per second × 3,600) × 10⁶, output tokens counted over "
                          "the whole request time (prefill included) of the lockstep row; sampling and serving costs "
                          "are not in it (see Serving under load).\n",
                          fmtx::thousands(e.price_per_hour, 2));
    }
    if (energy_priced) {
        md += fmt::format("\nEnergy cost at ${}/kWh: J per output token × 10⁶ / 3.6 × 10⁶ × price, from the energy the "
                          "lockstep row measured (GPU through NVML, CPU packages through RAPL, prefill included); a row "
                          "without such a counter says so and nothing is estimated.\n",
                          fmt::format("{:g}", e.price_per_kwh));
    }

    md += "\n## Reproducibility\n\n";
    md += fmt::format("- infermeter {} ({}), llama.cpp {}\n", e.ctx.infermeter_version, e.ctx.build_commit, e.ctx.llama_commit);
    md += fmt::format("- Machine: {}{}; backends: {}\n", esc::md_text(e.ctx.cpu_info),
                      e.ctx.gpu_info.empty() ? "" : "; " + esc::md_text(e.ctx.gpu_info), e.ctx.backends);
    md += fmt::format("- Model: {} ({}, {} bytes)\n", esc::md_code(e.ctx.model_filename), esc::md_text(e.ctx.model_type),
                      e.ctx.model_size);
    // command_line is shell-quoted where it is made (main.cpp): pasted, it runs this command and no other.
    md += fmt::format("- Command: {}\n- Started: {}; took {}\n", esc::md_code(e.ctx.command_line), e.ctx.test_time,
                      fmtx::duration(e.seconds));
    return md;
}

std::string terminal_summary(const evaluation & e) {
    std::string s = "\nSingle request\n" + bench_markdown(e.bench) + "\nParallel (lockstep)\n" +
                    parallel_markdown(e.lockstep, e.lockstep_cfg, e.kv_bytes_per_token, false) + "\n" +
                    ascii_efficiency_chart(e.lockstep);
    if (e.roofline) {
        for (const auto & line : e.roofline->summary) s += line + "\n";
    }
    const auto & rec = e.rec;
    const auto w = [](const worker_choice & c) {
        return fmt::format("{} ({} t/s)", fmtx::count_of(c.workers, "worker", "workers"), fmtx::thousands(c.overall_tps, 0));
    };
    if (e.serving) s += "\nInteractive (SLO): " + interactive_choice(*e.serving).sentence;
    if (rec.interactive.found) s += (e.serving ? "\nEfficiency knee: " : "\nInteractive: ") + w(rec.interactive);
    if (rec.batch.found) s += "; batch: " + w(rec.batch);
    if (rec.max_throughput.found) s += "; maximum measured: " + w(rec.max_throughput);
    s += "\n";
    for (const auto & line : rec.irregular) s += line + ".\n";
    return s;
}

}  // namespace im::report
