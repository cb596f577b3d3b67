#include "report/serving.h"

#include "core/format.h"
#include "report/requests.h"
#include "report/run_context.h"
#include "report/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::report {

serving_choice interactive_choice(const serving_result & s) {
    serving_choice best;
    const auto consider = [&](const workload::request_workload & w, const workload::request_metrics & m) {
        if (w.arrivals != workload::arrival_kind::closed || !m.slo_met) return;
        if (best.found && w.concurrency <= best.concurrency) return;
        best.found = true;
        best.concurrency = w.concurrency;
        best.request_tps = m.request_tps;
        best.output_tps = m.output_tps;
        best.goodput_rps = m.goodput_rps;
        best.ttft_p99_ms = m.ttft.at(s.objectives.percentile);
        best.tpot_p99_ms = m.tpot.at(s.objectives.percentile);
    };
    for (const auto & r : s.levels) consider(r.workload, r.metrics);
    if (s.capacity) {
        for (const auto & p : s.capacity->probes) consider(p.workload, p.metrics);
        if (s.capacity->rate) best.rate = s.capacity->rate;
    }
    const double pct = s.objectives.percentile;
    if (best.found) {
        best.sentence = fmt::format("{} concurrent requests meet {} (p{:g} TTFT {} ms, p{:g} TPOT {} ms), serving {} req/s and "
                                    "{} output t/s with real sampling",
                                    best.concurrency, s.objectives.describe(), pct, fmtx::thousands(best.ttft_p99_ms, 1), pct,
                                    fmtx::thousands(best.tpot_p99_ms, 2), fmtx::thousands(best.request_tps, 2),
                                    fmtx::thousands(best.output_tps, 1));
        if (best.rate) best.sentence += fmt::format("; open-loop arrivals up to {} req/s stay within it", fmtx::thousands(*best.rate, 2));
        best.sentence += ".";
        return best;
    }
    // None met: name the closest point.
    const workload::request_run * closest = nullptr;
    double miss = 1e300;
    for (const auto & r : s.levels) {
        const double m = workload::slo_miss(r.metrics, s.objectives);
        if (m < miss) {
            miss = m;
            closest = &r;
        }
    }
    best.sentence = fmt::format("No measured load meets {}", s.objectives.describe());
    if (closest) {
        best.sentence += fmt::format("; the closest, {}, had p{:g} TTFT {} ms and p{:g} TPOT {} ms", closest->load_label(), pct,
                                     fmtx::thousands(closest->metrics.ttft.at(pct), 1), pct,
                                     fmtx::thousands(closest->metrics.tpot.at(pct), 2));
    }
    best.sentence += ".";
    return best;
}

namespace {

std::string tps(double v) { return fmtx::thousands(v, v >= 100 ? 0 : 1); }

}  // namespace

std::string serving_markdown(const serving_result & s) {
    std::string out = "## Serving Under Load\n\n";
    if (!s.note.empty()) out += s.note + "\n\n";
    out += requests_markdown(s.levels, s.objectives);
    const auto choice = interactive_choice(s);
    out += "\n**Within the SLO:** " + choice.sentence + "\n";
    if (s.capacity) out += "\n**Capacity search:** " + s.capacity->summary + "\n";

    if (s.compare_workers > 0) {
        out += fmt::format("\n### What Sampling Costs ({} sequences, {} prompt / {} output tokens, all started together)\n\n",
                           s.compare_workers, s.compare_n_prompt, s.compare_n_predict);
        out += "| Engine | Generation t/s | vs lockstep | Step (ms) | Sampling (ms per step) | Sampling share |\n";
        out += "|--------|-----:|-----:|-----:|-----:|-----:|\n";
        const double ls = s.lockstep_gen_tps;
        out += fmt::format("| Lockstep (batched-bench semantics, tokens not sampled) | {} | 1.00 | - | - | - |\n", tps(ls));
        const auto row = [&](const char * name, const std::optional<workload::request_run> & r) {
            if (!r) return;
            const auto & m = r->metrics;
            out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", name, tps(m.decode_tps),
                               ls > 0 ? fmt::format("{:.2f}", m.decode_tps / ls) : "-", fmtx::thousands(m.step_ms_mean, 2),
                               fmtx::thousands(m.sample_ms_mean, 2), fmtx::percent(m.sample_share, 1));
        };
        row("Continuous batching, no sampling", s.no_sample);
        row("Continuous batching, CPU sampling (greedy)", s.cpu_sampling);
        row("Continuous batching, backend sampling (greedy)", s.backend_sampling);
        if (!s.backend_sampling_error.empty()) out += "\nBackend sampling did not run: " + s.backend_sampling_error + "\n";
        if (s.cpu_sampling && s.no_sample && s.no_sample->metrics.decode_tps > 0) {
            const double loss = 1 - s.cpu_sampling->metrics.decode_tps / s.no_sample->metrics.decode_tps;
            const auto & m = s.cpu_sampling->metrics;
            if (loss >= 0.02) {
                out += fmt::format("\nSampling on the CPU costs {} of the generation rate at {} sequences ({} ms of every {} ms "
                                   "step); lockstep figures, which never sample, overstate what a deployment that samples gets.\n",
                                   fmtx::percent(loss, 1), s.compare_workers, fmtx::thousands(m.sample_ms_mean, 2),
                                   fmtx::thousands(m.step_ms_mean, 2));
            } else {
                // Below 2% (or negative) the two runs differ by their own spread, not by what sampling costs.
                out += fmt::format("\nSampling on the CPU costs no measurable share of the generation rate at {} sequences here "
                                   "({} ms of every {} ms step, {}; the two runs differ by {:+.1f}%, within run-to-run spread).\n",
                                   s.compare_workers, fmtx::thousands(m.sample_ms_mean, 2), fmtx::thousands(m.step_ms_mean, 2),
                                   fmtx::percent(m.sample_share, 1), -100.0 * loss);
            }
        }
    }
    return out;
}

std::string serving_html(const serving_result & s) {
    std::string h = "<h2>Serving Under Load</h2><p>" + svg::escape(s.note) + "</p>";
    svg::series ttft50{"TTFT p50", "#2463eb", {}}, ttft99{"TTFT p99", "#2463eb", {}, true};
    svg::series tpot50{"TPOT p50", "#0f9d58", {}}, tpot99{"TPOT p99", "#0f9d58", {}, true};
    svg::series tradeoff{"output t/s vs p99 TPOT", "#d97706", {}};
    for (const auto & r : s.levels) {
        if (r.workload.arrivals != workload::arrival_kind::closed || r.metrics.n_ok == 0) continue;
        const double c = r.workload.concurrency;
        ttft50.points.emplace_back(c, r.metrics.ttft.p50);
        ttft99.points.emplace_back(c, r.metrics.ttft.p99);
        tpot50.points.emplace_back(c, r.metrics.tpot.p50);
        tpot99.points.emplace_back(c, r.metrics.tpot.p99);
        tradeoff.points.emplace_back(r.metrics.output_tps, r.metrics.tpot.p99);
    }
    if (!ttft50.points.empty()) {
        svg::series slo_ttft{"TTFT objective", "#b91c1c", {}, true, false}, slo_tpot{"TPOT objective", "#7c3aed", {}, true, false};
        slo_ttft.points = {{ttft50.points.front().first, s.objectives.ttft_ms}, {ttft50.points.back().first, s.objectives.ttft_ms}};
        slo_tpot.points = {{tpot50.points.front().first, s.objectives.tpot_ms}, {tpot50.points.back().first, s.objectives.tpot_ms}};
        std::sort(tradeoff.points.begin(), tradeoff.points.end());
        h += "<div class=\"charts\">";
        h += svg::line_chart("Time to first token vs load", {"concurrent requests", true}, {"ms"}, {ttft50, ttft99, slo_ttft});
        h += svg::line_chart("Time per output token vs load", {"concurrent requests", true}, {"ms"}, {tpot50, tpot99, slo_tpot});
        h += svg::line_chart("Throughput vs latency", {"output tokens per second"}, {"p99 TPOT (ms)"}, {tradeoff});
        h += "</div>";
    }
    h += "<table><tr><th>Load</th><th>Requests ok / failed</th><th>Req/s</th><th>Output t/s</th><th>TTFT p50 / p99 (ms)</th>"
         "<th>TPOT p50 / p99 (ms)</th><th>E2E p99 (s)</th><th>Goodput (req/s)</th><th>SLO</th></tr>";
    for (const auto & r : s.levels) {
        const auto & m = r.metrics;
        h += fmt::format("<tr><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{} / {}</td><td>{}</td><td>{}</td>"
                         "<td>{}</td></tr>", svg::escape(r.load_label()), m.n_ok, m.n_failed, fmtx::thousands(m.request_tps, 2),
                         fmtx::thousands(m.output_tps, 1), fmtx::thousands(m.ttft.p50, 1), fmtx::thousands(m.ttft.p99, 1),
                         fmtx::thousands(m.tpot.p50, 2), fmtx::thousands(m.tpot.p99, 2), fmtx::thousands(m.e2e.p99 / 1e3, 2),
                         fmtx::thousands(m.goodput_rps, 2), m.slo_met ? "met" : "missed");
    }
    h += "</table><ul class=\"sentences\"><li>" + svg::escape(interactive_choice(s).sentence) + "</li>";
    if (s.capacity) h += "<li>" + svg::escape(s.capacity->summary) + "</li>";
    h += "</ul>";
    if (s.compare_workers > 0 && s.lockstep_gen_tps > 0) {
        std::vector<svg::bar> bars{{"lockstep", s.lockstep_gen_tps}};
        if (s.no_sample) bars.push_back({"no sampling", s.no_sample->metrics.decode_tps});
        if (s.cpu_sampling) bars.push_back({"CPU sampling", s.cpu_sampling->metrics.decode_tps});
        if (s.backend_sampling) bars.push_back({"backend sampling", s.backend_sampling->metrics.decode_tps});
        h += "<div class=\"charts\">" +
             svg::bar_chart(fmt::format("What sampling costs: generation t/s at {} sequences", s.compare_workers), "t/s", bars,
                            "#2463eb") + "</div>";
    }
    return h;
}

nlohmann::ordered_json serving_json(const serving_result & s) {
    nlohmann::ordered_json j;
    j["objectives"] = {{"ttft_ms", s.objectives.ttft_ms}, {"tpot_ms", s.objectives.tpot_ms}, {"percentile", s.objectives.percentile}};
    j["note"] = s.note;
    const auto choice = interactive_choice(s);
    j["interactive"] = {{"found", choice.found}, {"concurrency", choice.concurrency}, {"sentence", choice.sentence}};
    if (choice.rate) j["interactive"]["rate"] = *choice.rate;
    if (s.capacity) {
        nlohmann::ordered_json c;
        c["summary"] = s.capacity->summary;
        c["concurrency"] = s.capacity->concurrency ? nlohmann::ordered_json(*s.capacity->concurrency) : nlohmann::ordered_json();
        c["rate"] = s.capacity->rate ? nlohmann::ordered_json(*s.capacity->rate) : nlohmann::ordered_json();
        c["goodput_rps"] = s.capacity->goodput_rps;
        for (const auto & p : s.capacity->probes) {
            c["probes"].push_back({{"load", p.label()}, {"met", p.met}, {"fraction", p.fraction}, {"fraction_ci95", {p.fraction_low, p.fraction_high}},
                                   {"ttft_p99_ms", p.metrics.ttft.p99}, {"tpot_p99_ms", p.metrics.tpot.p99},
                                   {"request_tps", p.metrics.request_tps}, {"requests", p.metrics.n_measured}});
        }
        j["capacity"] = c;
    }
    if (s.compare_workers > 0) {
        nlohmann::ordered_json c;
        c["workers"] = s.compare_workers;
        c["n_prompt"] = s.compare_n_prompt;
        c["n_predict"] = s.compare_n_predict;
        c["lockstep_gen_tps"] = s.lockstep_gen_tps;
        const auto put = [&](const char * k, const std::optional<workload::request_run> & r) {
            if (r) c[k] = {{"decode_tps", r->metrics.decode_tps}, {"output_tps", r->metrics.output_tps},
                           {"step_ms", r->metrics.step_ms_mean}, {"sample_ms", r->metrics.sample_ms_mean},
                           {"sample_share", r->metrics.sample_share}};
        };
        put("no_sample", s.no_sample);
        put("cpu_sampling", s.cpu_sampling);
        put("backend_sampling", s.backend_sampling);
        if (!s.backend_sampling_error.empty()) c["backend_sampling_error"] = s.backend_sampling_error;
        j["sampling_cost"] = c;
    }
    return j;
}

table serving_table(const serving_result & s, const run_context & c, const engine::llama::engine_params * params) {
    std::vector<workload::request_run> all = s.levels;
    for (const auto * r : {&s.no_sample, &s.cpu_sampling, &s.backend_sampling}) {
        if (*r) all.push_back(**r);
    }
    return requests_table("continuous", all, c, params);
}

}  // namespace im::report
