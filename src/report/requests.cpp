#include "report/requests.h"

#include "core/clock.h"
#include "core/format.h"
#include "report/measurements.h"
#include "workload/fast.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::report {

namespace {

const char * const latency_names[] = {"ttft", "ttft_sent", "queue", "tpot", "itl", "itl_per_token", "e2e"};

const workload::latency_stats & latency(const workload::request_metrics & m, int i) {
    switch (i) {
        case 0: return m.ttft;
        case 1: return m.ttft_sent;
        case 2: return m.queue;
        case 3: return m.tpot;
        case 4: return m.itl;
        case 5: return m.itl_per_token;
        default: return m.e2e;
    }
}

std::string failures_text(const workload::request_metrics & m) {
    std::string s;
    for (const auto & [cause, n] : m.failures) s += fmt::format("{}{}={}", s.empty() ? "" : ",", cause, n);
    return s;
}

std::string ms(double v) {
    if (!std::isfinite(v)) return "n/a";
    return fmtx::thousands(v, v >= 100 ? 0 : v >= 10 ? 1 : 2);
}

// --fast levels: the predicted means with their 95% intervals (docs/fast-mode.md §8).
std::string predicted_levels_markdown(const std::vector<workload::request_run> & runs) {
    std::string out = "| Load | Output t/s | Req/s | TTFT mean (ms) | TPOT mean (ms) | E2E mean (s) | Sampling per step (ms) |\n"
                      "|------|-----:|-----:|-----:|-----:|-----:|-----:|\n";
    for (const auto & r : runs) {
        if (!r.prediction) continue;
        const auto & p = *r.prediction;
        out += fmt::format("| {}~{} | {} | ~{} | {} | {} | ~{} | ~{} |\n", r.load_label(), r.prediction_note.empty() ? "" : "†",
                           workload::interval_text(p.output_tps, 1, 1), fmtx::thousands(p.request_tps.value, 2),
                           workload::interval_text(p.ttft_s, 1e3, 1),
                           p.n_output > 1 ? workload::interval_text(p.tpot_s, 1e3, 2) : std::string("n/a"),
                           fmtx::thousands(p.e2e_s.value, 2), ms(p.sampling_step_s.value * 1e3));
    }
    out += "\n~ predicted from step, prefill and sampling probes (`--fast`, docs/fast-mode.md §8), not measured: means, "
           "with their 95% prediction intervals; percentiles need a measured run.\n\n";
    return out;
}

}  // namespace

table requests_table(const std::string & name, const std::vector<workload::request_run> & runs, const run_context & c,
                     const engine::llama::engine_params * params, bool interrupted) {
    table t;
    t.name = name;
    t.fields = context_fields();
    if (params) {
        const auto e = engine_fields();
        t.fields.insert(t.fields.end(), e.begin(), e.end());
    }
    const std::vector<field> own = {
        {"mode", field_type::text},          {"engine", field_type::text},         {"arrival", field_type::text},
        {"concurrency", field_type::integer}, {"rate", field_type::real},          {"max_concurrency", field_type::integer},
        {"shard", field_type::integer},      {"n_shards", field_type::integer},
        {"n_slots", field_type::integer},    {"n_ctx", field_type::integer},       {"lengths", field_type::text},
        {"sampling", field_type::text},      {"requests", field_type::integer},    {"warmup_requests", field_type::integer},
        {"n_ok", field_type::integer},       {"n_failed", field_type::integer},    {"failures", field_type::text},
        {"window_s", field_type::real},      {"window_is_whole_run", field_type::boolean},
        {"request_tps", field_type::real},   {"output_tps", field_type::real},     {"total_tps", field_type::real},
        {"decode_tps", field_type::real},
        {"goodput_rps", field_type::real},   {"slo", field_type::text},            {"slo_met", field_type::boolean},
        {"slo_fraction", field_type::real},  {"mean_concurrency", field_type::real},
        {"littles_law_error", field_type::real},
    };
    t.fields.insert(t.fields.end(), own.begin(), own.end());
    for (const char * n : latency_names) {
        for (const char * s : {"mean", "p50", "p90", "p99", "max"}) t.fields.push_back({fmt::format("{}_{}_ms", n, s), field_type::real});
    }
    const std::vector<field> tail = {
        {"n_output_short", field_type::integer}, {"n_usage_mismatch", field_type::integer},
        {"n_steps", field_type::integer},        {"step_ms_mean", field_type::real},
        {"decode_ms_mean", field_type::real},    {"sample_ms_mean", field_type::real},
        {"sample_share", field_type::real},      {"samples_ttft_ms", field_type::real_array},
        {"samples_tpot_ms", field_type::real_array}, {"samples_e2e_ms", field_type::real_array},
        {"rss_start_bytes", field_type::integer}, {"rss_end_bytes", field_type::integer},
        {"interrupted", field_type::boolean},
        // --fast (docs/fast-mode.md §8): a predicted level and its 95% prediction intervals.
        {"predicted", field_type::boolean},
        {"output_tps_lo", field_type::real},     {"output_tps_hi", field_type::real},
        {"request_tps_lo", field_type::real},    {"request_tps_hi", field_type::real},
        {"ttft_mean_ms_lo", field_type::real},   {"ttft_mean_ms_hi", field_type::real},
        {"tpot_mean_ms_lo", field_type::real},   {"tpot_mean_ms_hi", field_type::real},
        {"prediction_note", field_type::text},
    };
    t.fields.insert(t.fields.end(), tail.begin(), tail.end());

    for (const auto & r : runs) {
        auto & row = t.add_row();
        fill_context(t, row, c);
        if (params) fill_engine(t, row, *params, r.n_threads);
        const auto & w = r.workload;
        const auto & m = r.metrics;
        t.set(row, "mode", name);
        t.set(row, "engine", r.engine);
        t.set(row, "arrival", workload::arrival_name(w.arrivals));
        if (w.arrivals == workload::arrival_kind::closed) t.set(row, "concurrency", int64_t{w.concurrency});
        else t.set(row, "rate", w.rate);
        t.set(row, "max_concurrency", int64_t{w.max_concurrency});
        t.set(row, "shard", int64_t{w.shard});
        t.set(row, "n_shards", int64_t{w.n_shards});
        t.set(row, "n_slots", int64_t{r.n_slots});
        t.set(row, "n_ctx", r.n_ctx);
        t.set(row, "lengths", r.lengths);
        t.set(row, "sampling", r.sampling);
        t.set(row, "requests", static_cast<int64_t>(m.n_requests));
        t.set(row, "warmup_requests", int64_t{w.warmup_requests});
        t.set(row, "n_ok", static_cast<int64_t>(m.n_ok));
        t.set(row, "n_failed", static_cast<int64_t>(m.n_failed));
        t.set(row, "failures", failures_text(m));
        t.set(row, "window_s", m.window_s);
        t.set(row, "window_is_whole_run", m.window_is_whole_run);
        t.set(row, "request_tps", m.request_tps);
        t.set(row, "output_tps", m.output_tps);
        t.set(row, "total_tps", m.total_tps);
        if (m.decode_tps > 0) t.set(row, "decode_tps", m.decode_tps);
        t.set(row, "goodput_rps", m.goodput_rps);
        t.set(row, "slo", w.objectives.describe());
        t.set(row, "slo_met", m.slo_met);
        t.set(row, "slo_fraction", m.slo_fraction);
        t.set(row, "mean_concurrency", m.mean_concurrency);
        if (std::isfinite(m.littles_law_error)) t.set(row, "littles_law_error", m.littles_law_error);
        for (int i = 0; i < 7; ++i) {
            const auto & l = latency(m, i);
            if (l.n == 0) continue;
            t.set(row, fmt::format("{}_mean_ms", latency_names[i]), l.mean);
            t.set(row, fmt::format("{}_p50_ms", latency_names[i]), l.p50);
            t.set(row, fmt::format("{}_p90_ms", latency_names[i]), l.p90);
            t.set(row, fmt::format("{}_p99_ms", latency_names[i]), l.p99);
            t.set(row, fmt::format("{}_max_ms", latency_names[i]), l.max);
        }
        t.set(row, "n_output_short", int64_t{m.n_output_short});
        t.set(row, "n_usage_mismatch", int64_t{m.n_usage_mismatch});
        t.set(row, "n_steps", static_cast<int64_t>(m.n_steps));
        if (m.n_steps > 0) {
            t.set(row, "step_ms_mean", m.step_ms_mean);
            t.set(row, "decode_ms_mean", m.decode_ms_mean);
            t.set(row, "sample_ms_mean", m.sample_ms_mean);
            t.set(row, "sample_share", m.sample_share);
        }
        std::vector<double> ttft, tpot, e2e;
        for (const auto & rec : r.records) {
            if (rec.warmup || !rec.ok()) continue;
            ttft.push_back(rec.ttft_ms());
            if (std::isfinite(rec.tpot_ms())) tpot.push_back(rec.tpot_ms());
            e2e.push_back(rec.e2e_ms());
        }
        t.set(row, "samples_ttft_ms", ttft);
        t.set(row, "samples_tpot_ms", tpot);
        t.set(row, "samples_e2e_ms", e2e);
        t.set(row, "rss_start_bytes", static_cast<int64_t>(r.rss_start_bytes));
        t.set(row, "rss_end_bytes", static_cast<int64_t>(r.rss_end_bytes));
        t.set(row, "interrupted", r.interrupted || interrupted);
        t.set(row, "predicted", r.prediction.has_value());
        if (r.prediction) {
            // The predicted means (no samples behind them), and their intervals; an unbounded end is left empty.
            const auto & p = *r.prediction;
            const auto set_interval = [&](const std::string & field, const predict::interval & i, double scale) {
                t.set(row, field + "_lo", finite_or_null(i.lo * scale));
                t.set(row, field + "_hi", finite_or_null(i.hi * scale));
            };
            t.set(row, "ttft_mean_ms", m.ttft.mean);
            t.set(row, "e2e_mean_ms", m.e2e.mean);
            set_interval("output_tps", p.output_tps, 1);
            set_interval("request_tps", p.request_tps, 1);
            set_interval("ttft_mean_ms", p.ttft_s, 1e3);
            if (p.n_output > 1) {
                t.set(row, "tpot_mean_ms", m.tpot.mean);
                set_interval("tpot_mean_ms", p.tpot_s, 1e3);
            }
            if (p.sampling_step_s.value > 0) t.set(row, "sample_ms_mean", m.sample_ms_mean);
            t.set(row, "prediction_note", r.prediction_note);
        }
    }
    mark_empty_interrupted(t, c, interrupted);
    return t;
}

std::string requests_markdown(const std::vector<workload::request_run> & runs, const workload::slo & objectives) {
    if (runs.empty()) return "";
    std::string out;
    const auto & first = runs.front();
    out += fmt::format("**Engine:** {}  \n**Lengths:** {}; **Objectives:** {}\n\n", first.engine, first.lengths,
                       objectives.describe());
    const bool any_predicted = std::any_of(runs.begin(), runs.end(), [](const auto & r) { return r.prediction.has_value(); });
    if (any_predicted) out += predicted_levels_markdown(runs);
    if (std::all_of(runs.begin(), runs.end(), [](const auto & r) { return r.prediction.has_value(); })) return out;
    out += "| Load | Requests (ok/failed) | Req/s | Output t/s | TTFT p50 / p99 (ms) | TPOT p50 / p99 (ms) | "
           "ITL p99 (ms) | E2E p50 / p99 (s) | Queue p99 (ms) | Goodput (req/s) | SLO |\n";
    out += "|------|------|-----:|-----:|-----:|-----:|-----:|-----:|-----:|-----:|:---:|\n";
    for (const auto & r : runs) {
        if (r.prediction) continue;
        const auto & m = r.metrics;
        out += fmt::format("| {}{} | {} / {} | {} | {} | {} / {} | {} / {} | {} | {} / {} | {} | {} | {} |\n", r.load_label(),
                           any_predicted ? " (measured)" : "",
                           m.n_ok, m.n_failed, fmtx::thousands(m.request_tps, 2), fmtx::thousands(m.output_tps, 1),
                           ms(m.ttft.p50), ms(m.ttft.p99), ms(m.tpot.p50), ms(m.tpot.p99), ms(m.itl.p99),
                           fmtx::thousands(m.e2e.p50 / 1e3, 2), fmtx::thousands(m.e2e.p99 / 1e3, 2), ms(m.queue.p99),
                           fmtx::thousands(m.goodput_rps, 2), m.slo_met ? "met" : "missed");
    }
    out += "\n";
    // Where the time of a step goes (in-process engines).
    bool any_steps = false;
    for (const auto & r : runs) any_steps = any_steps || r.metrics.n_steps > 0;
    if (any_steps) {
        out += "| Load | Steps | Step (ms) | Decode (ms) | Sampling (ms) | Sampling share | Decode-step t/s | Mean concurrency | "
               "Little's law |\n";
        out += "|------|-----:|-----:|-----:|-----:|-----:|-----:|-----:|-----:|\n";
        for (const auto & r : runs) {
            if (r.prediction) continue;
            const auto & m = r.metrics;
            out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.load_label(), m.n_steps, ms(m.step_ms_mean),
                               ms(m.decode_ms_mean), ms(m.sample_ms_mean), fmtx::percent(m.sample_share, 1),
                               fmtx::thousands(m.decode_tps, 1),
                               fmtx::thousands(m.mean_concurrency, 2),
                               std::isfinite(m.littles_law_error) ? fmtx::percent(m.littles_law_error, 1) + " off" : "n/a");
        }
        out += "\n";
    }
    for (const auto & r : runs) {
        if (r.prediction) continue;
        const auto & m = r.metrics;
        if (m.window_is_whole_run) {
            out += fmt::format("- {}: no steady window (every request started and ended together); figures over the whole run, "
                               "where Little's law holds by construction (not checked).\n",
                               r.load_label());
        }
        if (m.littles_law_error > 0.05) {
            out += fmt::format("- {}: Little's law is off by {} (mean concurrency {} vs throughput x mean E2E): no steady state "
                               "(arrivals above what the engine serves, or too few requests per user for a steady window: "
                               "`--requests` of parallel --mode continuous / serve runs more; evaluate's serving stage runs "
                               "12 per user in --profile standard, 16 in comprehensive).\n",
                               r.load_label(), fmtx::percent(m.littles_law_error, 1), fmtx::thousands(m.mean_concurrency, 2));
        }
        if (m.n_failed > 0) {
            out += fmt::format("- {}: {} of {} measured requests failed ({}); they are excluded from the latency percentiles.\n",
                               r.load_label(), m.n_failed, m.n_measured, failures_text(m));
        }
        if (m.n_output_short > 0) {
            out += fmt::format("- {}: {} requests delivered fewer tokens than asked for.\n", r.load_label(), m.n_output_short);
        }
        if (m.n_usage_mismatch > 0) {
            out += fmt::format("- {}: for {} requests the server's usage count differs from the tokens streamed.\n",
                               r.load_label(), m.n_usage_mismatch);
        }
        if (r.interrupted) out += fmt::format("- {}: interrupted; the figures cover what finished before the stop.\n", r.load_label());
    }
    return out;
}

std::string shard_alignment_note(const workload::merged_run & m) {
    if (m.shards.size() < 2) return "";
    if (m.run.started_at) {
        return fmt::format("{}: every shard started its schedule at the --start-at instant {}; records are placed on each "
                           "host's wall clock, so what misaligns them is the hosts' clock offset (NTP/chrony: `chronyc tracking`).",
                           m.run.load_label(), clock::rfc3339_ms(m.run.t0_unix_ns));
    }
    const double skew_ms = static_cast<double>(m.start_skew_ns) / 1e6;
    std::string s = fmt::format("{}: the shards started their clocks independently (each shard's t = 0 at its own start), "
                                "{} ms apart; records are placed on each host's wall clock, so the window spans what the "
                                "server really saw.",
                                m.run.load_label(), fmtx::thousands(skew_ms, 1));
    if (workload::start_skew_share(m) > workload::max_start_skew_share) {
        s += fmt::format(" **That is {} of the window: the shards' schedules did not overlap as one schedule's would; give "
                         "every shard the same --start-at.**",
                         fmtx::percent(workload::start_skew_share(m), 1));
    }
    return s;
}

std::string shards_markdown(const std::vector<workload::merged_run> & levels) {
    if (levels.empty()) return "";
    std::string out = "\n### Shards\n\n| Load | Shard | Trace | Requests (ok/failed) | Schedule origin (UTC) | Req/s | Output t/s | "
                      "TTFT p99 (ms) | TPOT p99 (ms) | E2E p99 (s) |\n|------|------|------|------|------|-----:|-----:|-----:|-----:|-----:|\n";
    for (const auto & l : levels) {
        for (size_t i = 0; i < l.shards.size(); ++i) {
            const auto & r = l.shards[i];
            const auto & m = r.metrics;
            out += fmt::format("| {} | {} | `{}` | {} / {} | {} | {} | {} | {} | {} | {} |\n", l.run.load_label(),
                               workload::shard_label(r.workload), l.sources[i], m.n_ok, m.n_failed, clock::rfc3339_ms(r.t0_unix_ns),
                               fmtx::thousands(m.request_tps, 2), fmtx::thousands(m.output_tps, 1), ms(m.ttft.p99), ms(m.tpot.p99),
                               fmtx::thousands(m.e2e.p99 / 1e3, 2));
        }
    }
    out += "\nThe merged rows above are computed from the union of the shards' per-request records (percentiles from the "
           "merged raw samples, throughput over the steady window of the union), not from the shards' figures.\n\n";
    for (const auto & l : levels) {
        const auto note = shard_alignment_note(l);
        if (!note.empty()) out += "- " + note + "\n";
    }
    return out;
}

}  // namespace im::report
