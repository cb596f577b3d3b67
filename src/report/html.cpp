#include "core/format.h"
#include "report/evaluation.h"
#include "report/split.h"
#include "report/svg.h"
#include "report/telemetry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::report {

namespace {

using svg::escape;

const char * css = R"(body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1180px;margin:0 auto;padding:24px}h1{margin:0 0 4px}h2{margin-top:36px;border-bottom:1px solid #d9dde3;padding-bottom:4px}
.sub{color:#5b6472;margin:0 0 16px}.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #d9dde3;border-radius:8px;padding:12px 16px;min-width:220px}
.card b{font-size:1.6em;display:block}.grid{stroke:#e6e9ee}.axis{stroke:#8a93a1}.tick{font-size:11px;fill:#5b6472}.label{font-size:12px;fill:#39414f}
.title{font-size:14px;font-weight:600;fill:#1d2330}.legend{font-size:12px;fill:#39414f}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #d9dde3;border-radius:8px}table{border-collapse:collapse;background:#fff;margin:8px 0}
td,th{border:1px solid #d9dde3;padding:4px 10px;text-align:right}th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
.note{background:#fff8e1;border:1px solid #f0d98a;border-radius:6px;padding:8px 12px}code{background:#eef1f5;padding:1px 4px;border-radius:3px}
ul.sentences li{margin:4px 0})";

std::string table_html(const std::vector<std::string> & head, const std::vector<std::vector<std::string>> & rows) {
    std::string s = "<table><tr>";
    for (const auto & h : head) s += "<th>" + escape(h) + "</th>";
    s += "</tr>";
    for (const auto & r : rows) {
        s += "<tr>";
        for (const auto & c : r) s += "<td>" + escape(c) + "</td>";
        s += "</tr>";
    }
    return s + "</table>";
}

std::string mib(uint64_t b) { return fmtx::thousands(static_cast<double>(b) / fmtx::mib, 0) + " MiB"; }

std::string card(const std::string & title, const worker_choice & c) {
    if (!c.found) return "";
    return fmt::format("<div class=\"card\">{}<b>{}</b>{} t/s overall · {} efficiency · {} KV</div>", escape(title),
                       fmtx::count_of(c.workers, "worker", "workers"), fmtx::thousands(c.overall_tps, 0), fmtx::percent(c.efficiency), mib(c.kv_bytes));
}

std::string scaling_charts(const evaluation & e) {
    const auto rows = measured_rows(e.lockstep);
    if (rows.empty()) return "<p>No parallel measurements.</p>";
    const auto & base = *rows.front();
    svg::series overall{"overall t/s (measured)", "#2463eb", {}}, gen{"generation t/s (measured)", "#0f9d58", {}},
        ideal{"generation, linear scaling", "#0f9d58", {}, true, false}, eff{"efficiency (measured)", "#2463eb", {}},
        eff_ideal{"ideal", "#8a93a1", {}, true, false}, ttft{"TTFT (s)", "#d9480f", {}}, e2e{"E2E (s)", "#7048e8", {}},
        tpot{"TPOT (ms)", "#d9480f", {}}, roof{"roofline bound (generation)", "#c2255c", {}, true, false};
    for (const auto * r : rows) {
        const double w = r->workers;
        overall.points.emplace_back(w, r->overall_tps.mean);
        gen.points.emplace_back(w, r->gen_tps.mean);
        ideal.points.emplace_back(w, base.gen_tps.mean * w / base.workers);
        eff.points.emplace_back(w, r->efficiency * 100);
        eff_ideal.points.emplace_back(w, 100);
        ttft.points.emplace_back(w, r->t_pp_mean_s);
        e2e.points.emplace_back(w, r->t_pp_mean_s + r->t_tg_mean_s);
        tpot.points.emplace_back(w, 1e3 * r->t_tg_mean_s / std::max(1, r->n_predict));
    }
    std::vector<svg::series> throughput{overall, gen, ideal};
    if (e.roofline) {
        for (const auto & [w, tps] : e.roofline->ideal_curve) {
            if (w >= rows.front()->workers && w <= rows.back()->workers) roof.points.emplace_back(w, tps);
        }
        if (!roof.points.empty()) throughput.push_back(roof);
    }
    const svg::axis wx{"workers", true};
    return "<div class=\"charts\">" +
           svg::line_chart("Throughput vs workers", wx, {"tokens/s"}, throughput) +
           svg::line_chart("Efficiency vs workers", wx, {"% of linear scaling"}, {eff, eff_ideal}) +
           svg::line_chart("Request latency vs workers", wx, {"seconds"}, {ttft, e2e}) +
           svg::line_chart("Time per output token vs workers", wx, {"ms per token per stream"}, {tpot}) + "</div>";
}

std::string dataset_charts(const dataset::analysis & a) {
    const auto bars = [](const dataset::length_stats & s) {
        std::vector<svg::bar> out;
        for (const auto & b : s.histogram) out.push_back({fmtx::thousands(b.lo_tokens), static_cast<double>(b.count)});
        return out;
    };
    svg::series cov_out{"outputs", "#2463eb", {}}, cov_in{"prompts", "#0f9d58", {}};
    for (const auto & p : a.output_tokens.coverage) cov_out.points.emplace_back(static_cast<double>(p.tokens), p.fraction * 100);
    for (const auto & p : a.prompt_tokens.coverage) cov_in.points.emplace_back(static_cast<double>(p.tokens), p.fraction * 100);
    return "<div class=\"charts\">" + svg::bar_chart("Prompt length (tokens)", "records", bars(a.prompt_tokens), "#0f9d58") +
           svg::bar_chart("Output length (tokens)", "records", bars(a.output_tokens), "#2463eb") +
           svg::line_chart("Coverage: share of records within n tokens", {"tokens", true}, {"% of records"}, {cov_out, cov_in}) +
           "</div>";
}

std::string roofline_chart(const hardware::roofline_report & r) {
    const double bw = r.ceil.mem_bw_bytes_per_s;
    const double peak = hardware::matmul_ceiling_for(r.ceil, r.cost.weight_type);
    if (bw <= 0 || peak <= 0) return "";
    svg::series roof{"roof: min(bandwidth × intensity, matmul peak)", "#39414f", {}, false, false};
    double lo = 0.5, hi = 2048;
    for (const auto & v : r.verdicts) {
        if (v.bytes_per_step > 0) {
            const double ai = v.flops_per_step / v.bytes_per_step;
            lo = std::min(lo, ai / 2);
            hi = std::max(hi, ai * 2);
        }
    }
    for (double ai = lo; ai <= hi * 1.0001; ai *= 1.25) roof.points.emplace_back(ai, std::min(bw * ai, peak));
    svg::series decode{"decode (measured)", "#2463eb", {}}, prefill{"prefill (measured)", "#0f9d58", {}};
    for (const auto & v : r.verdicts) {
        if (v.bytes_per_step <= 0) continue;
        auto & s = v.obs.phase == "prefill" ? prefill : decode;
        s.points.emplace_back(v.flops_per_step / v.bytes_per_step, v.achieved_flops_per_s);
    }
    std::vector<svg::series> all{roof};
    for (auto * s : {&decode, &prefill}) {
        if (s->points.empty()) continue;
        std::sort(s->points.begin(), s->points.end());
        all.push_back(*s);
    }
    return svg::line_chart(fmt::format("Roofline ({})", r.ceil.device), {"arithmetic intensity (FLOP/byte)", false, true},
                           {"FLOP/s", false, true, false}, all, 560, 340);
}

}  // namespace

std::string to_html(const evaluation & e) {
    std::string h = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                    "content=\"width=device-width,initial-scale=1\"><title>infermeter: " +
                    escape(e.config.model_name) + "</title><style>" + css + "</style></head><body><main>";
    h += "<h1>Performance Evaluation</h1><p class=\"sub\">" +
         escape(fmt::format("{} ({}) on {}, {} backend · profile {} · infermeter {} · llama.cpp {} · {}", e.config.model_name,
                            e.config.quantization, e.config.hardware, e.config.backends, e.profile,
                            e.ctx.infermeter_version, e.ctx.build_commit, e.ctx.test_time)) + "</p>";
    if (e.interrupted) h += "<p class=\"note\">Interrupted: this report holds what was measured before the run was stopped.</p>";
    h += "<p class=\"note\">Dataset: " +
         escape(e.dataset_synthetic ? "synthetic — " + e.dataset_note : e.dataset_path) + "</p>";
    h += "<div class=\"cards\">" + card("Interactive (knee)", e.rec.interactive) + card("Batch", e.rec.batch) +
         card("Maximum measured", e.rec.max_throughput) + "</div>";

    if (e.analysis) {
        const auto & a = *e.analysis;
        h += "<h2>Recommended Parameters</h2>";
        std::vector<std::vector<std::string>> rows;
        for (const auto & r : a.recommendations) {
            rows.push_back({r.scenario, std::to_string(r.n_prompt), std::to_string(r.n_predict),
                            fmtx::percent(r.coverage) + " of outputs"});
        }
        h += table_html({"Scenario", "n-prompt", "n-predict", "Coverage"}, rows);
        for (const auto & note : dataset::merge_notes(a)) h += "<p>" + escape(note) + ".</p>";
        h += "<ul class=\"sentences\">";
        for (const auto & r : a.rationale) h += "<li>" + escape(r) + "</li>";
        h += "</ul>" + dataset_charts(a);
    }
    h += fmt::format("<p>Measurements use n-prompt {} and n-predict {} ({}).</p>", e.n_prompt, e.n_predict, escape(e.scenario));

    if (e.tune) h += "<h2>Engine Settings (--tune)</h2>" + tune_html(*e.tune);
    h += "<h2>Single Request Performance</h2>";
    {
        std::vector<std::vector<std::string>> rows;
        for (const auto & b : e.bench) {
            rows.push_back({b.test.name(), b.test.n_prompt ? std::to_string(b.test.n_prompt) : "-",
                            b.test.n_gen ? std::to_string(b.test.n_gen) : "-", fmtx::mean_pm(b.ts.mean, b.ts.stddev)});
        }
        h += table_html({"Test", "Prompt tokens", "Output tokens", "Throughput (t/s)"}, rows);
    }
    h += "<h2>Parallel Workload Performance</h2>";
    {
        std::vector<std::vector<std::string>> rows;
        // Peak memory while each W ran (telemetry sampler), where it was sampled.
        const bool peaks = std::any_of(e.lockstep.rows.begin(), e.lockstep.rows.end(),
                                       [](const auto & r) { return r.peak_rss_mib || r.peak_gpu_memory_mib; });
        const auto peak_cell = [](const workload::lockstep_row & r) {
            std::string c = r.peak_rss_mib ? fmtx::thousands(*r.peak_rss_mib, 0) + " MiB" : "-";
            if (r.peak_gpu_memory_mib) c += " / " + fmtx::thousands(*r.peak_gpu_memory_mib, 0) + " MiB";
            return c;
        };
        for (const auto & r : e.lockstep.rows) {
            if (!r.skipped.empty()) {
                rows.push_back({std::to_string(r.workers), "does not fit in memory", "", "", "", "", "", "", ""});
                if (peaks) rows.back().push_back("");
                continue;
            }
            const std::string mark = r.predicted ? "~" : "";
            std::string overall = mark + fmtx::thousands(r.overall_tps.mean);
            if (r.predicted && r.prediction.overall_tps.hi > r.prediction.overall_tps.lo) {
                overall += fmt::format(" ({}-{})", fmtx::thousands(r.prediction.overall_tps.lo),
                                       std::isfinite(r.prediction.overall_tps.hi) ? fmtx::thousands(r.prediction.overall_tps.hi) : "inf");
            }
            rows.push_back({std::to_string(r.workers) + mark + (r.extended ? "*" : "") + (r.prediction_note.empty() ? "" : "†") +
                                (r.partial ? " (partial)" : ""),
                            std::to_string(r.n_prompt),
                            std::to_string(r.n_predict), fmtx::thousands(static_cast<int64_t>(r.total_kv)), mib(r.kv_bytes),
                            mark + fmtx::thousands(r.prompt_tps.mean), mark + fmtx::thousands(r.gen_tps.mean),
                            overall, fmt::format("{:.2f}x ({})", r.speedup, fmtx::percent(r.efficiency))});
            if (peaks) rows.back().push_back(peak_cell(r));
        }
        std::vector<std::string> head{"Workers", "Prompt tokens", "Output tokens", "Total KV", "KV cache", "Prompt t/s",
                                      "Generation t/s", "Overall t/s", "Speedup (efficiency)"};
        if (peaks) head.push_back("Peak RSS / GPU memory");
        h += table_html(head, rows);
        if (e.fast) {
            h += "<p>~ predicted from step probes (--fast, docs/fast-mode.md), not measured; 95% prediction interval in "
                 "parentheses. The recommendations below rest on these predictions.</p>";
            for (const auto & r : e.lockstep.rows) {
                if (r.predicted && !r.prediction_note.empty()) h += "<p>† " + escape(fmt::format("W = {}: {}.", r.workers, r.prediction_note)) + "</p>";
            }
            if (const auto lines = workload::switch_sentences(*e.fast); !lines.empty()) {
                h += "<ul class=\"sentences\">";
                for (const auto & l : lines) h += "<li>" + escape(l) + "</li>";
                h += "</ul>";
            }
        }
        if (!e.lockstep.extension_stop.empty()) {
            h += std::string("<p>* ") + (e.fast ? "predicted" : "measured") + " by the sweep extension; it stopped because " + escape(e.lockstep.extension_stop) + ".</p>";
        }
    }
    h += scaling_charts(e);

    if (e.serving) h += serving_html(*e.serving);
    if (const auto parts = step_breakdowns(e); !parts.empty()) {
        std::vector<svg::stacked_bar> bars;
        for (const auto & b : parts) {
            bars.push_back({fmt::format("W={}{}", b.workers, b.measured ? " (measured)" : ""),
                            {b.parts.matmul_s * 1e3, b.parts.attention_s * 1e3, b.parts.sampling_s * 1e3, b.parts.remainder_s * 1e3}});
        }
        h += "<h2>Where a decode step goes</h2><div class=\"charts\">" +
             svg::stacked_bar_chart("Decode step by part (ms)", "ms",
                                    {{"weight matmuls", "#2463eb"}, {"attention/KV", "#0f9d58"}, {"sampling", "#d97706"},
                                     {"remainder", "#9ca3af"}}, bars) + "</div><ul class=\"sentences\">";
        for (const auto & b : parts) h += "<li>" + escape(fmt::format("W={}: {}", b.workers, b.limiter)) + "</li>";
        h += "</ul>";
    }
    h += telemetry_html(e.telemetry);
    if (e.split) h += split_html(*e.split);
    if (!e.roofline_note.empty()) h += "<h2>Interpretation: roofline</h2><p>Not run: " + escape(e.roofline_note) + "</p>";
    if (e.roofline) {
        h += "<h2>Interpretation: roofline</h2><div class=\"charts\">" + roofline_chart(*e.roofline) + "</div><ul class=\"sentences\">";
        for (const auto & s : e.roofline->summary) h += "<li>" + escape(s) + "</li>";
        for (const auto & v : e.roofline->verdicts) {
            for (const auto & s : v.sentences) h += "<li>" + escape(s) + "</li>";
        }
        h += "</ul>";
    }
    h += "<h2>Recommendations</h2><ul class=\"sentences\">";
    for (const auto * c : {&e.rec.interactive, &e.rec.batch, &e.rec.max_throughput}) {
        if (c->found) {
            h += "<li>" + escape(fmt::format("{}: {} ({} t/s overall, TTFT {}, TPOT {} ms)", fmtx::count_of(c->workers, "worker", "workers"), c->reason,
                                             fmtx::thousands(c->overall_tps, 0), fmtx::duration(c->ttft_s),
                                             fmtx::thousands(c->tpot_s * 1e3, 1))) + "</li>";
        }
    }
    for (const auto & n : e.rec.notes) h += "<li>" + escape(n) + "</li>";
    h += "</ul><h2>Reproducibility</h2><ul>";
    h += "<li>Command: <code>" + escape(e.ctx.command_line) + "</code></li>";
    h += "<li>Model: <code>" + escape(e.ctx.model_filename) + "</code> (" + escape(e.ctx.model_type) + ")</li>";
    h += "<li>llama.cpp " + escape(e.ctx.llama_commit) + "; backends " + escape(e.ctx.backends) + "</li>";
    h += "<li>Machine: " + escape(e.ctx.cpu_info) + (e.ctx.gpu_info.empty() ? "" : "; " + escape(e.ctx.gpu_info)) + "</li></ul>";
    // Marks the page once every chart has a drawn, non-empty box: the render test reads this attribute.
    h += "<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('svg.chart').forEach("
         "function(s){var b=s.getBBox();if(b.width>0&&b.height>0&&s.querySelector('path,rect[height]'))n++;});"
         "document.body.setAttribute('data-charts-drawn',n);document.body.setAttribute('data-charts-total',"
         "document.querySelectorAll('svg.chart').length);});</script>";
    return h + "</main></body></html>\n";
}

}  // namespace im::report
