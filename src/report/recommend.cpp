#include "report/recommend.h"

#include "core/format.h"

#include <fmt/format.h>

namespace im::report {

worker_choice choice_of(const workload::lockstep_row & row, const workload::lockstep_row * previous) {
    worker_choice c;
    c.found = true;
    c.workers = row.workers;
    c.overall_tps = row.overall_tps.mean;
    c.gen_tps = row.gen_tps.mean;
    c.per_stream_tps = row.gen_tps.mean / row.workers;
    c.speedup = row.speedup;
    c.efficiency = row.efficiency;
    c.marginal = previous ? (row.speedup - previous->speedup) / (row.workers - previous->workers) : 1.0;
    c.kv_bytes = row.kv_bytes;
    c.ttft_s = row.t_pp_mean_s;
    c.tpot_s = row.n_predict > 0 ? row.t_tg_mean_s / row.n_predict : 0;
    c.e2e_s = row.t_pp_mean_s + row.t_tg_mean_s;
    return c;
}

recommendations recommend(const workload::lockstep_result & r, const recommend_options & opts) {
    recommendations out;
    const workload::lockstep_row * previous = nullptr;
    for (const auto & row : r.rows) {
        if (!row.skipped.empty()) continue;
        worker_choice c = choice_of(row, previous);
        previous = &row;
        const bool knee = c.marginal >= opts.knee_min_marginal || !out.interactive.found;
        const bool ttft_ok = !opts.slo_ttft_s || c.ttft_s <= *opts.slo_ttft_s;
        const bool tpot_ok = !opts.slo_tpot_s || c.tpot_s <= *opts.slo_tpot_s;
        if (knee && ttft_ok && tpot_ok) {
            c.reason = out.interactive.found
                           ? fmt::format("each added worker still brings {:.2f}x speedup (>= {:.2f}) at {} efficiency",
                                         c.marginal, opts.knee_min_marginal, fmtx::percent(c.efficiency))
                           : std::string("the baseline");
            out.interactive = c;
        } else if (!ttft_ok || !tpot_ok) {
            out.notes.push_back(fmt::format("{} workers miss the SLO: TTFT {} (limit {}), TPOT {} ms (limit {})", c.workers,
                                            fmtx::duration(c.ttft_s),
                                            opts.slo_ttft_s ? fmtx::duration(*opts.slo_ttft_s) : std::string("none"),
                                            fmtx::thousands(c.tpot_s * 1e3, 1),
                                            opts.slo_tpot_s ? fmtx::thousands(*opts.slo_tpot_s * 1e3, 1) + " ms" : std::string("none")));
        }
        if (!row.extended && (!out.batch.found || c.overall_tps > out.batch.overall_tps)) {
            c.reason = "the highest overall throughput among the requested worker counts";
            out.batch = c;
        }
        if (!out.max_throughput.found || c.overall_tps > out.max_throughput.overall_tps) {
            c.reason = "the highest overall throughput measured";
            out.max_throughput = c;
        }
    }
    if (out.interactive.found && !out.interactive.reason.empty() && out.interactive.reason != "the baseline") {
        out.interactive.reason = "the knee of the scaling curve: " + out.interactive.reason;
    }
    out.max_stop = r.extension_stop;
    return out;
}

}  // namespace im::report
