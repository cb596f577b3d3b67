#include "workload/shards.h"

#include "core/clock.h"
#include "core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace im::workload {

namespace {

// What makes two runs parts of one schedule, flag by flag (the shard itself excluded).
std::vector<std::pair<std::string, std::string>> schedule_identity(const request_run & r) {
    const auto & w = r.workload;
    return {{"--shard N", std::to_string(w.n_shards)},
            {"arrivals", arrival_name(w.arrivals)},
            {"--concurrency", std::to_string(w.concurrency)},
            {"--rate", fmt::format("{}", w.rate)},
            {"--burstiness", fmt::format("{}", w.burstiness)},
            {"--max-concurrency", std::to_string(w.max_concurrency)},
            {"--think-time", fmt::format("{}", w.think_time_s)},
            {"--requests", std::to_string(w.n_requests)},
            {"--duration", fmt::format("{}", w.duration_s)},
            {"--warmup-requests", std::to_string(w.warmup_requests)},
            {"--seed", std::to_string(w.seed)},
            {"--slo", w.objectives.describe()},
            {"lengths", r.lengths},
            {"sampling", r.sampling}};
}

// The record with every time moved by `shift_ns` (unknown times, -1, stay unknown).
request_record shifted(request_record q, int64_t shift_ns) {
    for (int64_t * t : {&q.t_intended_ns, &q.t_sent_ns, &q.t_admitted_ns, &q.t_first_ns, &q.t_end_ns}) {
        if (*t >= 0) *t += shift_ns;
    }
    for (auto & t : q.chunk_ns) t += shift_ns;
    return q;
}

}  // namespace

double start_skew_share(const merged_run & m) {
    if (m.run.started_at || m.run.metrics.window_s <= 0) return 0;
    return static_cast<double>(m.start_skew_ns) / 1e9 / m.run.metrics.window_s;
}

merged_run merge_shards(const std::vector<shard_run> & parts) {
    IM_CHECK(!parts.empty());
    const auto & first = parts.front();
    const auto identity = schedule_identity(first.run);
    const int n = first.run.workload.n_shards;
    std::vector<const shard_run *> by_shard(static_cast<size_t>(n), nullptr);
    for (const auto & p : parts) {
        const auto id = schedule_identity(p.run);
        for (size_t i = 0; i < id.size(); ++i) {
            if (id[i].second != identity[i].second) {
                throw_usage("merge: {} and {} are not shards of one schedule: {} {} vs {}", first.source, p.source, id[i].first,
                            identity[i].second, id[i].second);
            }
        }
        if (p.run.started_at != first.run.started_at || (p.run.started_at && p.run.t0_unix_ns != first.run.t0_unix_ns)) {
            const auto start = [](const request_run & r) { return r.started_at ? clock::rfc3339_ms(r.t0_unix_ns) : std::string("none"); };
            throw_usage("merge: {} and {} are not shards of one run: --start-at {} vs {} (give every shard the same instant)",
                        first.source, p.source, start(first.run), start(p.run));
        }
        const int k = p.run.workload.shard;
        IM_CHECK(k >= 1 && k <= n, fmt::format("shard {}/{}", k, n));
        auto & slot = by_shard[static_cast<size_t>(k - 1)];
        if (slot) throw_usage("merge: shard {}/{} is given twice: {} and {}", k, n, slot->source, p.source);
        slot = &p;
        for (const auto & q : p.run.records) {
            if (!in_shard(p.run.workload, q.id)) {
                throw_usage("merge: {}: request {} does not belong to shard {}/{} (an edited or mixed-up trace)", p.source, q.id, k, n);
            }
        }
    }
    for (int k = 1; k <= n; ++k) {
        if (by_shard[static_cast<size_t>(k - 1)]) continue;
        std::string given;
        for (const auto * s : by_shard) {
            if (s) given += fmt::format("{}{} ({})", given.empty() ? "" : ", ", shard_label(s->run.workload), s->source);
        }
        throw_usage("merge: shard {}/{} is missing (given: {}); merge needs the trace of every shard", k, n, given);
    }

    merged_run m;
    m.run.workload = first.run.workload;
    m.run.workload.shard = 0;
    m.run.lengths = first.run.lengths;
    m.run.sampling = first.run.sampling;
    m.run.started_at = first.run.started_at;  // the same on every shard (checked above)
    int64_t t0_min = std::numeric_limits<int64_t>::max(), t0_max = std::numeric_limits<int64_t>::min();
    for (const auto * s : by_shard) {
        const auto & r = s->run;
        request_run own = r;
        own.records.clear();
        own.steps.clear();  // HTTP runs have none; in-process ones are not merged
        const int64_t shift = r.t0_unix_ns - r.t0_ns;
        for (const auto & q : r.records) own.records.push_back(shifted(q, shift));
        own.t0_ns = own.t0_unix_ns = r.t0_unix_ns;
        own.metrics = compute_metrics(own.records, {}, own.workload);
        m.run.records.insert(m.run.records.end(), own.records.begin(), own.records.end());
        if (m.run.engine.empty()) m.run.engine = r.engine;
        else if (m.run.engine.find(r.engine) == std::string::npos) m.run.engine += "; " + r.engine;
        m.run.interrupted = m.run.interrupted || r.interrupted;
        t0_min = std::min(t0_min, r.t0_unix_ns);
        t0_max = std::max(t0_max, r.t0_unix_ns);
        m.shards.push_back(std::move(own));
        m.sources.push_back(s->source);
    }
    std::sort(m.run.records.begin(), m.run.records.end(), [](const auto & a, const auto & b) { return a.id < b.id; });
    m.run.t0_ns = m.run.t0_unix_ns = t0_min;
    m.start_skew_ns = t0_max - t0_min;
    m.run.metrics = compute_metrics(m.run.records, {}, m.run.workload);
    return m;
}

}  // namespace im::workload
