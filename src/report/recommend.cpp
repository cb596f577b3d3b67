#include "report/recommend.h"

#include "core/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace im::report {

namespace {

using fmtx::signed_percent;

std::string ms(double v) { return fmtx::thousands(v, 2) + " ms"; }

double step_ms(const workload::lockstep_row & r) {
    return r.n_predict > 0 ? r.t_tg_mean_s / r.n_predict * 1e3 : 0.0;
}

std::string tps(double v) { return fmtx::thousands(v, 0) + " t/s"; }

}  // namespace

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
    c.joules_per_output_token = row.joules_per_output_token();
    return c;
}

std::vector<const workload::lockstep_row *> ascending_rows(const workload::lockstep_result & r) {
    std::vector<const workload::lockstep_row *> out;
    for (const auto & row : r.rows) {
        if (!row.skipped.empty()) continue;
        if (std::any_of(out.begin(), out.end(), [&](auto * o) { return o->workers == row.workers; })) continue;
        out.push_back(&row);
    }
    std::stable_sort(out.begin(), out.end(), [](auto * a, auto * b) { return a->workers < b->workers; });
    return out;
}

std::vector<scaling_step> scaling_steps(const workload::lockstep_result & r) {
    const auto rows = ascending_rows(r);
    std::vector<scaling_step> out;
    for (size_t i = 1; i < rows.size(); ++i) {
        const auto & a = *rows[i - 1];
        const auto & b = *rows[i];
        scaling_step s;
        s.from_workers = a.workers;
        s.to_workers = b.workers;
        s.marginal = (b.speedup - a.speedup) / (b.workers - a.workers);
        s.gen_gain = a.gen_tps.mean > 0 ? b.gen_tps.mean / a.gen_tps.mean - 1.0 : 0.0;
        s.overall_gain = a.overall_tps.mean > 0 ? b.overall_tps.mean / a.overall_tps.mean - 1.0 : 0.0;
        s.step_ms_from = step_ms(a);
        s.step_ms_to = step_ms(b);
        out.push_back(s);
    }
    return out;
}

std::vector<std::string> irregular_steps(const std::vector<scaling_step> & steps) {
    std::vector<std::string> out;
    for (size_t i = 0; i < steps.size(); ++i) {
        const auto & s = steps[i];
        const scaling_step * next = i + 1 < steps.size() ? &steps[i + 1] : nullptr;
        // A rise smaller than this is run-to-run noise, not a dip.
        const bool dip = next && next->marginal > s.marginal + std::max(0.02, 0.1 * std::fabs(s.marginal));
        if (dip) {
            out.push_back(fmt::format(
                "Non-monotone at W={}: a decode step costs {} at W={} against {} at W={} and {} at W={}; the speedup "
                "per added worker is {:.2f} from {} to {} workers, then {:.2f} from {} to {} (generation {}, then {}){}",
                s.to_workers, ms(s.step_ms_to), s.to_workers, ms(s.step_ms_from), s.from_workers, ms(next->step_ms_to),
                next->to_workers, s.marginal, s.from_workers, s.to_workers, next->marginal, next->from_workers,
                next->to_workers, signed_percent(s.gen_gain), signed_percent(next->gen_gain),
                s.overall_gain < 0 ? fmt::format("; overall throughput falls {} from {} to {} workers",
                                                 signed_percent(s.overall_gain), s.from_workers, s.to_workers)
                                   : std::string()));
        } else if (s.overall_gain < 0) {
            out.push_back(fmt::format("Non-monotone at W={}: overall throughput falls {} from {} to {} workers; a decode "
                                      "step costs {} at W={} against {} at W={}",
                                      s.to_workers, signed_percent(s.overall_gain), s.from_workers, s.to_workers,
                                      ms(s.step_ms_to), s.to_workers, ms(s.step_ms_from), s.from_workers));
        }
    }
    return out;
}

recommendations recommend(const workload::lockstep_result & r, const recommend_options & opts) {
    recommendations out;
    const auto rows = ascending_rows(r);
    out.steps = scaling_steps(r);
    out.irregular = irregular_steps(out.steps);
    out.max_stop = r.extension_stop;
    if (rows.empty()) return out;

    // Interactive: the largest W whose step still adds knee_min_marginal per added worker, within the SLOs.
    const workload::lockstep_row * previous = nullptr;
    std::vector<worker_choice> choices;
    for (const auto * row : rows) {
        worker_choice c = choice_of(*row, previous);
        previous = row;
        const bool knee = c.marginal >= opts.knee_min_marginal || choices.empty();
        if (knee) out.knee_workers = c.workers;
        const bool ttft_ok = !opts.slo_ttft_s || c.ttft_s <= *opts.slo_ttft_s;
        const bool tpot_ok = !opts.slo_tpot_s || c.tpot_s <= *opts.slo_tpot_s;
        if (knee && ttft_ok && tpot_ok) {
            c.reason = out.interactive.found
                           ? fmt::format("the knee of the scaling curve: the step from {} workers still brings {:.2f}x "
                                         "speedup per added worker (>= {:.2f}) at {} efficiency",
                                         choices.back().workers, c.marginal,
                                         opts.knee_min_marginal, fmtx::percent(c.efficiency))
                           : std::string("the baseline");
            out.interactive = c;
        } else if (!ttft_ok || !tpot_ok) {
            out.notes.push_back(fmt::format("{} workers miss the SLO: TTFT {} (limit {}), TPOT {} ms (limit {})", c.workers,
                                            fmtx::duration(c.ttft_s),
                                            opts.slo_ttft_s ? fmtx::duration(*opts.slo_ttft_s) : std::string("none"),
                                            fmtx::thousands(c.tpot_s * 1e3, 1),
                                            opts.slo_tpot_s ? fmtx::thousands(*opts.slo_tpot_s * 1e3, 1) + " ms" : std::string("none")));
        }
        choices.push_back(c);
    }
    if (out.interactive.found && out.interactive.workers != out.knee_workers) {
        out.interactive.reason += fmt::format(" (the efficiency knee, {} workers, misses the SLO)", out.knee_workers);
    }

    // Maximum: the highest overall t/s measured (every measured row fit in memory).
    const auto peak = std::max_element(choices.begin(), choices.end(),
                                       [](const auto & a, const auto & b) { return a.overall_tps < b.overall_tps; });
    out.max_throughput = *peak;
    out.max_throughput.reason = "the highest overall throughput measured";

    // Batch: the smallest W within batch_within of that peak; never less throughput than Interactive.
    const double floor_tps = (1.0 - opts.batch_within) * peak->overall_tps;
    const auto batch = std::find_if(choices.begin(), choices.end(), [&](const auto & c) { return c.overall_tps >= floor_tps; });
    out.batch = *batch;
    if (batch == peak) {
        out.batch.reason = batch == choices.begin()
                               ? std::string("the highest overall throughput measured")
                               : fmt::format("the highest overall throughput measured; the next smaller worker count, "
                                             "{}, delivers {} ({}), more than {} below it",
                                             std::prev(batch)->workers, tps(std::prev(batch)->overall_tps),
                                             signed_percent(std::prev(batch)->overall_tps / peak->overall_tps - 1.0),
                                             fmtx::percent(opts.batch_within));
    } else {
        out.batch.reason = fmt::format("the smallest worker count within {} of the highest overall throughput measured "
                                       "({} at {} workers): {} of it",
                                       fmtx::percent(opts.batch_within), tps(peak->overall_tps), peak->workers,
                                       fmtx::percent(batch->overall_tps / peak->overall_tps, 1));
    }
    if (out.interactive.found && out.batch.overall_tps < out.interactive.overall_tps) {
        const auto smallest = out.batch;
        out.batch = out.interactive;
        out.batch.reason = fmt::format("the interactive choice: {} workers, the smallest within {} of the peak ({} at {} "
                                       "workers), deliver {}, less than the interactive {}",
                                       smallest.workers, fmtx::percent(opts.batch_within), tps(peak->overall_tps),
                                       peak->workers, tps(smallest.overall_tps), tps(out.interactive.overall_tps));
    }
    return out;
}

}  // namespace im::report
