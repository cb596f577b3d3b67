#include "report/serve.h"

#include "core/escape.h"
#include "core/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace im::report {

namespace {

std::string tps(double v) { return fmtx::thousands(v, v >= 100 ? 0 : 1); }
std::string ms(double v) { return std::isfinite(v) ? fmtx::thousands(v, v >= 100 ? 0 : v >= 10 ? 1 : 2) : "n/a"; }
std::string ratio(double a, double b) { return b > 0 && a >= 0 ? fmt::format("{:.2f}", a / b) : "-"; }
std::string change(double from, double to) {
    if (!(from > 0)) return "-";
    const double c = to / from - 1;
    return fmt::format("{}{}", c >= 0 ? "+" : "−", fmtx::percent(std::abs(c), 1));
}

workload::latency_stats all_same(size_t n, double v) {
    workload::latency_stats s;
    s.n = n;
    s.mean = s.p50 = s.p90 = s.p99 = s.max = v;
    return s;
}

// The in-process run the HTTP one is held against: the sampling the server did.
const std::optional<workload::request_run> & server_twin(const serve_comparison_level & l) {
    return l.server_backend_sampling && l.backend_sampling ? l.backend_sampling : l.cpu_sampling;
}

double pop_std(const std::vector<double> & v) {
    std::vector<double> x;
    for (double d : v) {
        if (std::isfinite(d)) x.push_back(d);
    }
    if (x.empty()) return 0;
    double mean = 0;
    for (double d : x) mean += d;
    mean /= double(x.size());
    double ss = 0;
    for (double d : x) ss += (d - mean) * (d - mean);
    return std::sqrt(ss / double(x.size()));
}

}  // namespace

workload::request_run lockstep_as_run(const workload::lockstep_row & row, const workload::request_workload & w) {
    workload::request_run r;
    r.workload = w;
    r.workload.n_requests = row.workers;
    r.engine = "in-process lockstep (batched-bench semantics)";
    r.sampling = "none (lockstep: tokens not sampled)";
    r.lengths = fmt::format("fixed {} prompt / {} output tokens", row.n_prompt, row.n_predict);
    r.n_slots = row.workers;
    r.n_ctx = row.n_ctx;
    r.interrupted = row.partial;
    auto & m = r.metrics;
    const double t_pp = row.t_pp_mean_s, t_tg = row.t_tg_mean_s, total = t_pp + t_tg;
    const size_t n = static_cast<size_t>(row.workers);
    m.n_requests = m.n_measured = m.n_ok = n;
    m.window_s = total;
    m.window_is_whole_run = true;
    if (total > 0) {
        m.request_tps = double(n) / total;
        m.output_tps = double(n) * row.n_predict / total;
        m.total_tps = double(n) * (row.n_prompt + row.n_predict) / total;
    }
    m.decode_tps = row.gen_tps.mean;
    m.mean_concurrency = double(n);
    m.ttft = all_same(n, t_pp * 1e3);
    m.ttft_sent = m.ttft;
    m.queue = all_same(n, 0);
    m.tpot = all_same(n, row.n_predict > 0 ? t_tg * 1e3 / row.n_predict : 0);
    m.itl = m.tpot;
    m.itl_per_token = m.tpot;
    m.e2e = all_same(n, total * 1e3);
    m.slo_met = m.ttft.at(w.objectives.percentile) <= w.objectives.ttft_ms && m.tpot.at(w.objectives.percentile) <= w.objectives.tpot_ms;
    m.slo_fraction = m.slo_met ? 1 : 0;
    m.goodput_rps = m.slo_met ? m.request_tps : 0;
    return r;
}

std::string serve_comparison_markdown(const std::vector<serve_comparison_level> & levels) {
    if (levels.empty()) return "";
    std::string out = "\n### Server Against the Same Engine In-Process\n\n"
                      "The same workload (lengths, arrivals, concurrency, seed) over HTTP and in-process on the same model "
                      "and engine flags, greedy, EOS ignored. Output t/s over the steady window (lockstep: W sequences "
                      "started together, over prefill + decode).\n";
    for (const auto & l : levels) {
        const double base = l.no_sample ? l.no_sample->metrics.output_tps : 0;
        out += fmt::format("\n#### {}\n\n| Engine | Output t/s | vs no sampling | vs HTTP | TTFT p50 (ms) | TPOT p50 (ms) | Failed |\n"
                           "|---|---:|---:|---:|---:|---:|---:|\n",
                           l.http.load_label());
        const double http = l.http.metrics.output_tps;
        const auto row = [&](const std::string & name, const std::optional<workload::request_run> & r, const std::string & why) {
            if (!r) {
                out += fmt::format("| {} | not run: {} | | | | | |\n", name, why.empty() ? "interrupted" : why);
                return;
            }
            const auto & m = r->metrics;
            out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", name, tps(m.output_tps), ratio(m.output_tps, base),
                               ratio(m.output_tps, http), ms(m.ttft.p50), ms(m.tpot.p50), m.n_failed);
        };
        row("Lockstep at W = concurrency (not sampled)", l.lockstep, l.lockstep_note);
        row("Continuous batching, no sampling", l.no_sample, "");
        row("Continuous batching, CPU sampling", l.cpu_sampling, "");
        row("Continuous batching, backend sampling", l.backend_sampling, l.backend_sampling_error);
        row(l.server_backend_sampling ? "Server over HTTP (--backend-sampling)" : "Server over HTTP", l.http, "");
        const auto & twin = server_twin(l);
        out += "\nWhere the gap goes:\n\n";
        if (l.no_sample && l.cpu_sampling) {
            out += fmt::format("- Sampling (in-process, no sampling → CPU sampling): {} → {} t/s ({}).\n", tps(base),
                               tps(l.cpu_sampling->metrics.output_tps), change(base, l.cpu_sampling->metrics.output_tps));
        }
        if (twin) {
            out += fmt::format("- Server scheduling, streaming and transport (in-process {} → HTTP): {} → {} t/s ({}).\n",
                               l.server_backend_sampling ? "backend sampling" : "CPU sampling", tps(twin->metrics.output_tps),
                               tps(http), change(twin->metrics.output_tps, http));
            out += fmt::format("- Server / in-process: {} against the same sampling, {} against no sampling{}.\n",
                               ratio(http, twin->metrics.output_tps), ratio(http, base),
                               l.lockstep ? fmt::format(", {} against lockstep", ratio(http, l.lockstep->metrics.output_tps)) : "");
        }
        if (l.backend_sampling && l.cpu_sampling) {
            out += fmt::format("- Backend sampling beside CPU sampling: {} against {} t/s ({}).\n",
                               tps(l.backend_sampling->metrics.output_tps), tps(l.cpu_sampling->metrics.output_tps),
                               change(l.cpu_sampling->metrics.output_tps, l.backend_sampling->metrics.output_tps));
        } else if (!l.backend_sampling_error.empty()) {
            out += "- Backend sampling is not supported here: " + l.backend_sampling_error + "\n";
        }
    }
    return out;
}

namespace {

struct endpoint_figures {
    size_t n = 0, ok = 0, failed = 0;
    workload::latency_stats ttft, tpot, e2e;
    double output_tps = 0;
};

endpoint_figures endpoint_of(const workload::request_run & r, int endpoint) {
    endpoint_figures f;
    std::vector<double> ttft, tpot, e2e;
    int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
    double tokens = 0;
    for (const auto & q : r.records) {
        if (q.warmup || q.endpoint != endpoint) continue;
        ++f.n;
        first = std::min(first, q.t_intended_ns);
        if (!q.ok()) {
            ++f.failed;
            continue;
        }
        ++f.ok;
        ttft.push_back(q.ttft_ms());
        tpot.push_back(q.tpot_ms());
        e2e.push_back(q.e2e_ms());
        tokens += q.n_output;
        last = std::max(last, q.t_end_ns);
    }
    f.ttft = workload::latency_of(ttft);
    f.tpot = workload::latency_of(tpot);
    f.e2e = workload::latency_of(e2e);
    if (f.ok > 0 && last > first) f.output_tps = tokens / (double(last - first) / 1e9);
    return f;
}

}  // namespace

endpoint_balance endpoint_imbalance(const workload::request_run & r, size_t n_endpoints) {
    endpoint_balance b;
    if (n_endpoints < 2) return b;
    size_t total = 0, most = 0;
    double fastest = 0, slowest = 0;
    for (size_t e = 0; e < n_endpoints; ++e) {
        const auto f = endpoint_of(r, static_cast<int>(e));
        total += f.n;
        if (f.n > most) {
            most = f.n;
            b.busiest = static_cast<int>(e);
        }
        const double t = f.tpot.p50;
        if (!(f.ok > 0) || !std::isfinite(t)) continue;
        if (fastest == 0 || t < fastest) fastest = t;
        if (t > slowest) {
            slowest = t;
            b.slowest = static_cast<int>(e);
        }
    }
    if (total > 0) b.requests_max_over_mean = double(most) / (double(total) / double(n_endpoints));
    if (fastest > 0) b.tpot_p50_slowest_over_fastest = slowest / fastest;
    return b;
}

std::string per_endpoint_markdown(const std::vector<workload::request_run> & runs, const std::vector<std::string> & urls,
                                  const std::string & balance) {
    if (urls.size() < 2) return "";
    std::string md = fmt::format("\n### Latency and Throughput per Endpoint\n\nRequests spread {} over the URLs; latencies of each "
                                 "endpoint's successful measured requests, output t/s over its first start to last end.\n\n",
                                 balance);
    md += "| load | URL | requests | share | failed | TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 | E2E p99 | output t/s |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    std::string notes;
    for (const auto & r : runs) {
        size_t total = 0;
        std::vector<endpoint_figures> figs;
        for (size_t e = 0; e < urls.size(); ++e) {
            figs.push_back(endpoint_of(r, static_cast<int>(e)));
            total += figs.back().n;
        }
        for (size_t e = 0; e < urls.size(); ++e) {
            const auto & f = figs[e];
            md += fmt::format("| {} | {} | {} | {} | {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} |\n", r.load_label(),
                              esc::md_code(urls[e]), f.n, total > 0 ? fmtx::percent(double(f.n) / double(total), 1) : "n/a",
                              f.failed, ms(f.ttft.p50), ms(f.ttft.p99), ms(f.tpot.p50), ms(f.tpot.p99), ms(f.e2e.p99),
                              tps(f.output_tps));
        }
        const auto b = endpoint_imbalance(r, urls.size());
        if (b.requests_max_over_mean > 0 && b.tpot_p50_slowest_over_fastest > 0) {
            notes += fmt::format("- {}: the busiest endpoint ({}) took {}x the mean number of requests; TPOT p50 of the "
                                 "slowest ({}) is {}x the fastest's.\n",
                                 r.load_label(), esc::md_code(urls[size_t(b.busiest)]),
                                 fmtx::thousands(b.requests_max_over_mean, 2), esc::md_code(urls[size_t(b.slowest)]),
                                 fmtx::thousands(b.tpot_p50_slowest_over_fastest, 2));
        }
    }
    if (!notes.empty()) md += "\n**Imbalance** (docs/metrics.md):\n\n" + notes;
    return md;
}

nlohmann::ordered_json vllm_result(const workload::request_run & r, const std::string & model_id, const std::string & date,
                                   bool interrupted) {
    const auto & w = r.workload;
    std::vector<double> ttft, tpot, itl, e2e;
    auto input_lens = nlohmann::ordered_json::array(), output_lens = nlohmann::ordered_json::array();
    auto ttfts = nlohmann::ordered_json::array(), itls = nlohmann::ordered_json::array(), errors = nlohmann::ordered_json::array();
    size_t completed = 0, failed = 0, measured = 0, good = 0;
    int64_t total_in = 0, total_out = 0;
    int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
    for (const auto & q : r.records) {
        if (q.warmup) continue;
        ++measured;
        first = std::min(first, q.t_intended_ns);
        if (q.t_end_ns >= 0) last = std::max(last, q.t_end_ns);
        input_lens.push_back(q.n_prompt);
        if (!q.ok()) {
            ++failed;
            output_lens.push_back(0);
            ttfts.push_back(0.0);
            itls.push_back(nlohmann::ordered_json::array());
            errors.push_back(fmt::format("{}{}{}", engine::failure_name(q.cause), q.message.empty() ? "" : ": ", q.message));
            continue;
        }
        ++completed;
        total_in += q.n_prompt;
        total_out += q.n_output;
        output_lens.push_back(q.n_output);
        ttft.push_back(q.ttft_ms());
        ttfts.push_back(q.ttft_ms() / 1e3);
        tpot.push_back(q.tpot_ms());
        e2e.push_back(q.e2e_ms());
        auto gaps = nlohmann::ordered_json::array();
        for (size_t i = 1; i < q.chunk_ns.size(); ++i) {
            const double g = double(q.chunk_ns[i] - q.chunk_ns[i - 1]) / 1e6;
            itl.push_back(g);
            gaps.push_back(g / 1e3);
        }
        itls.push_back(gaps);
        errors.push_back("");
        const double t = q.tpot_ms();
        if (q.ttft_ms() <= w.objectives.ttft_ms && (!std::isfinite(t) || t <= w.objectives.tpot_ms)) ++good;
    }
    const double duration = last > first ? double(last - first) / 1e9 : 0;
    const auto per_s = [&](double x) { return duration > 0 ? x / duration : 0.0; };
    nlohmann::ordered_json j;
    j["date"] = date;
    j["backend"] = "infermeter";
    j["model_id"] = model_id;
    j["tokenizer_id"] = model_id;
    j["num_prompts"] = measured;
    j["request_rate"] = w.arrivals == workload::arrival_kind::closed ? nlohmann::ordered_json("inf") : nlohmann::ordered_json(w.rate);
    j["burstiness"] = w.burstiness;
    j["max_concurrency"] = w.arrivals == workload::arrival_kind::closed ? nlohmann::ordered_json(w.concurrency)
                           : w.max_concurrency > 0                     ? nlohmann::ordered_json(w.max_concurrency)
                                                                       : nlohmann::ordered_json(nullptr);
    j["duration"] = duration;
    j["completed"] = completed;
    j["failed"] = failed;
    j["total_input_tokens"] = total_in;
    j["total_output_tokens"] = total_out;
    j["request_throughput"] = per_s(double(completed));
    j["request_goodput"] = per_s(double(good));
    j["output_throughput"] = per_s(double(total_out));
    j["total_token_throughput"] = per_s(double(total_in + total_out));
    j["input_lens"] = input_lens;
    j["output_lens"] = output_lens;
    j["ttfts"] = ttfts;
    j["itls"] = itls;
    j["errors"] = errors;
    const auto metric = [&](const char * name, const std::vector<double> & v) {
        const auto s = workload::latency_of(v);
        j[fmt::format("mean_{}_ms", name)] = s.mean;
        j[fmt::format("median_{}_ms", name)] = s.p50;
        j[fmt::format("std_{}_ms", name)] = pop_std(v);
        j[fmt::format("p90_{}_ms", name)] = s.p90;
        j[fmt::format("p99_{}_ms", name)] = s.p99;
    };
    metric("ttft", ttft);
    metric("tpot", tpot);
    metric("itl", itl);
    metric("e2el", e2e);
    j["interrupted"] = interrupted || r.interrupted;
    if (r.workload.n_shards > 1) {  // infermeter's own keys too: this dict is one shard's part of a schedule
        j["shard"] = r.workload.shard;
        j["n_shards"] = r.workload.n_shards;
    }
    return j;
}

std::string vllm_json(const std::vector<workload::request_run> & runs, const std::string & model_id, const std::string & date,
                      bool interrupted) {
    if (runs.size() == 1) return vllm_result(runs.front(), model_id, date, interrupted).dump(2) + "\n";
    auto arr = nlohmann::ordered_json::array();
    for (const auto & r : runs) arr.push_back(vllm_result(r, model_id, date, interrupted));
    return arr.dump(2) + "\n";
}

}  // namespace im::report
