#include "workload/capacity.h"

#include "core/format.h"
#include "core/interrupt.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::workload {

std::string capacity_probe::label() const { return load_label(workload, false); }

namespace {

capacity_probe probe_of(const request_workload & w, const request_run & r) {
    capacity_probe p;
    p.workload = w;
    p.metrics = r.metrics;
    p.met = r.metrics.slo_met && !r.interrupted;
    const size_t n = r.metrics.n_ok + r.metrics.n_failed;
    const size_t k = static_cast<size_t>(std::llround(r.metrics.slo_fraction * static_cast<double>(r.metrics.n_ok)));
    p.fraction = n ? static_cast<double>(k) / static_cast<double>(n) : 0;
    const auto ci = proportion_ci95(k, n);
    p.fraction_low = ci.first;
    p.fraction_high = ci.second;
    return p;
}

}  // namespace

capacity_result find_capacity(const std::function<request_run(const request_workload &)> & run_level,
                              const request_workload & base, const capacity_options & o) {
    capacity_result res;
    const auto probe = [&](const request_workload & w) -> const capacity_probe * {
        if (static_cast<int>(res.probes.size()) >= o.max_probes || interrupt::requested()) return nullptr;
        request_run r = run_level(w);
        if (r.interrupted) res.interrupted = true;
        res.probes.push_back(probe_of(w, r));
        return &res.probes.back();
    };

    // Closed loop: double until the SLO is missed, then bisect between the last pass and the first miss.
    request_workload w = base;
    w.arrivals = arrival_kind::closed;
    int pass = 0, fail = 0;
    for (int c = 1; c <= o.max_concurrency; c *= 2) {
        w.concurrency = c;
        const auto * p = probe(w);
        if (!p) break;
        if (p->met) {
            pass = c;
        } else {
            fail = c;
            break;
        }
    }
    while (pass > 0 && fail > pass + 1) {
        w.concurrency = (pass + fail) / 2;
        const auto * p = probe(w);
        if (!p) break;
        (p->met ? pass : fail) = w.concurrency;
    }
    if (pass > 0) {
        res.concurrency = pass;
        for (const auto & p : res.probes) {
            if (p.workload.arrivals == arrival_kind::closed && p.workload.concurrency == pass) res.goodput_rps = p.metrics.goodput_rps;
        }
    }

    // Open loop at the concurrency found (the client holds back requests beyond it, as a server with
    // that many slots queues them; queueing counts in TTFT): bracket the rate, then bisect.
    if (o.search_rate && pass > 0 && !res.interrupted) {
        double start = 0;
        for (const auto & p : res.probes) {
            if (p.workload.concurrency == pass) start = p.metrics.request_tps;
        }
        if (start > 0) {
            request_workload ow = base;
            ow.arrivals = base.arrivals == arrival_kind::closed ? arrival_kind::poisson : base.arrivals;
            ow.max_concurrency = pass;
            double lo = 0, hi = 0;
            double r = start * 0.8;
            for (int i = 0; i < 6; ++i) {
                ow.rate = r;
                const auto * p = probe(ow);
                if (!p) break;
                if (p->met) {
                    lo = r;
                    if (hi > 0) break;
                    r *= 1.5;
                } else {
                    hi = r;
                    if (lo > 0) break;
                    r /= 2;
                }
            }
            while (lo > 0 && hi > 0 && hi / lo - 1 > o.rate_precision) {
                ow.rate = std::sqrt(lo * hi);
                const auto * p = probe(ow);
                if (!p) break;
                (p->met ? lo : hi) = ow.rate;
            }
            if (lo > 0) {
                res.rate = lo;
                for (const auto & p : res.probes) {
                    if (p.workload.arrivals != arrival_kind::closed && p.workload.rate == lo) res.goodput_rps = p.metrics.goodput_rps;
                }
            }
        }
    }

    // The summary sentence, from the probes.
    const auto & slo = base.objectives;
    if (!res.concurrency) {
        const capacity_probe * closest = nullptr;
        double best = 1e300;
        for (const auto & p : res.probes) {
            const double miss = slo_miss(p.metrics, slo);
            if (miss < best) {
                best = miss;
                closest = &p;
            }
        }
        res.summary = fmt::format("No load met {}.", slo.describe());
        if (closest) {
            res.summary += fmt::format(" The closest point, {}, had p{:g} TTFT {} ms and p{:g} TPOT {} ms.", closest->label(),
                                       slo.percentile, fmtx::thousands(closest->metrics.ttft.at(slo.percentile), 1), slo.percentile,
                                       fmtx::thousands(closest->metrics.tpot.at(slo.percentile), 2));
        }
    } else {
        res.summary = fmt::format("Within {}: up to {} concurrent users", slo.describe(), *res.concurrency);
        if (res.rate) res.summary += fmt::format(", and {} requests per second arriving at random (goodput {} req/s)",
                                                fmtx::thousands(*res.rate, 2), fmtx::thousands(res.goodput_rps, 2));
        res.summary += fmt::format(" ({} probes).", res.probes.size());
    }
    return res;
}

}  // namespace im::workload
