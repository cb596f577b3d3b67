#include "tune/search.h"

#include "core/error.h"
#include "core/interrupt.h"
#include "core/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace im::tune {

std::vector<std::string> values_first(const std::string & base, const std::vector<std::string> & others) {
    std::vector<std::string> v{base};
    for (const auto & o : others) {
        if (std::find(v.begin(), v.end(), o) == v.end()) v.push_back(o);
    }
    return v;
}

const trial * search_result::costliest() const {
    const trial * worst = nullptr;
    for (const auto & t : trials) {
        if (t.rejected || !t.failed.empty() || t.score <= 0) continue;
        if (!worst || t.score < worst->score) worst = &t;
    }
    return worst;
}

output_check compare_greedy(const greedy_trace & baseline, const greedy_trace & cand, double max_rel_noise) {
    IM_CHECK(baseline.n_vocab > 0 && baseline.n_vocab == cand.n_vocab && baseline.tokens.size() == cand.tokens.size() &&
                 baseline.logits.size() == cand.logits.size() &&
                 baseline.logits.size() == baseline.tokens.size() * static_cast<size_t>(baseline.n_vocab),
             "tune: greedy traces of different shapes");
    output_check r;
    r.n_rows = static_cast<int>(baseline.tokens.size());
    const size_t nv = static_cast<size_t>(baseline.n_vocab);
    std::vector<double> absdiff(nv);
    int worst_flip_row = -1;
    double worst_flip_ratio = 0;  // margin / noise of the clearest flip
    for (size_t row = 0; row < baseline.tokens.size(); ++row) {
        const float * b = baseline.logits.data() + row * nv;
        const float * c = cand.logits.data() + row * nv;
        double sum = 0, sq = 0;
        for (size_t i = 0; i < nv; ++i) {
            sum += b[i];
            sq += static_cast<double>(b[i]) * b[i];
            absdiff[i] = std::fabs(static_cast<double>(c[i]) - b[i]);
        }
        const double mean = sum / static_cast<double>(nv);
        const double sd = std::sqrt(std::max(0.0, sq / static_cast<double>(nv) - mean * mean));
        // The row's noise, robust to the few logits a real change moves most: 1.4826 × median |Δ|
        // (the sd of normal noise).
        std::nth_element(absdiff.begin(), absdiff.begin() + static_cast<std::ptrdiff_t>(nv / 2), absdiff.end());
        const double rms = 1.4826 * absdiff[nv / 2];
        const double rel = sd > 0 ? rms / sd : (rms > 0 ? 1.0 : 0.0);
        r.max_rel_noise = std::max(r.max_rel_noise, rel);
        const int32_t tb = baseline.tokens[row], tc = cand.tokens[row];
        if (tb == tc) continue;
        ++r.n_flips;
        const double margin = static_cast<double>(b[tb]) - b[tc];  // >= 0: tb is the baseline's argmax
        if (margin <= 4 * rms) {
            ++r.n_near_ties;
        } else if (rms <= 0 || margin / rms > worst_flip_ratio) {
            worst_flip_ratio = rms > 0 ? margin / rms : std::numeric_limits<double>::infinity();
            worst_flip_row = static_cast<int>(row);
        }
    }
    const std::string noise = fmt::format("logits moved by at most {:.3g}% of a row's spread", 100 * r.max_rel_noise);
    if (r.n_flips > r.n_near_ties) {
        r.detail = fmt::format("other greedy tokens: {} of {} differ, {} where the baseline's choice was clear (row {}: "
                               "margin {:.3g}x the logit noise); {}",
                               r.n_flips, r.n_rows, r.n_flips - r.n_near_ties, worst_flip_row, worst_flip_ratio, noise);
    } else if (r.max_rel_noise > max_rel_noise) {
        r.detail = fmt::format("other logits: {} (more than {:.3g}%: not rounding)", noise, 100 * max_rel_noise);
    } else {
        r.same = true;
        r.detail = r.n_flips == 0 ? fmt::format("identical tokens; {}", noise)
                                  : fmt::format("{} of {} tokens flipped at near ties (margin within 4x the logit noise); {}",
                                                r.n_flips, r.n_rows, noise);
    }
    return r;
}

std::vector<pareto_point> pareto_front(const std::vector<std::pair<int, const search_result *>> & levels) {
    std::vector<pareto_point> all;
    for (const auto & [w, r] : levels) {
        for (const auto & t : r->trials) {
            if (t.rejected || !t.failed.empty() || t.score <= 0) continue;
            all.push_back({w, t.settings, t.score, t.tpot_p50_ms >= 0 ? t.tpot_p50_ms : 1000.0 * w / t.score, t.ttft_p50_ms});
        }
    }
    std::vector<pareto_point> front;
    for (const auto & p : all) {
        const bool dominated = std::any_of(all.begin(), all.end(), [&](const pareto_point & q) {
            return q.aggregate_tps >= p.aggregate_tps && q.ms_per_token <= p.ms_per_token &&
                   (q.aggregate_tps > p.aggregate_tps || q.ms_per_token < p.ms_per_token);
        });
        const bool repeat = std::any_of(front.begin(), front.end(), [&](const pareto_point & q) {
            return q.aggregate_tps == p.aggregate_tps && q.ms_per_token == p.ms_per_token;
        });
        if (!dominated && !repeat) front.push_back(p);
    }
    std::sort(front.begin(), front.end(), [](const pareto_point & a, const pareto_point & b) {
        return a.workers != b.workers ? a.workers < b.workers : a.aggregate_tps > b.aggregate_tps;
    });
    return front;
}

search_result coordinate_descent(const std::vector<axis> & axes, const evaluator & ev, const search_options & o) {
    IM_CHECK(ev.measure && ev.same_outputs && ev.elapsed_s, "tune: an evaluator without measure/same_outputs/clock");
    IM_CHECK(o.confirm_runs >= 1, "tune: at least one confirmation run per side");
    search_result r;
    for (const auto & a : axes) {
        IM_CHECK(!a.values.empty(), fmt::format("tune axis {} without values", a.name));
        r.baseline[a.name] = a.values.front();
    }
    // Every candidate is measured at most once; a second visit reuses the trial.
    std::map<candidate, size_t> seen;
    const auto run = [&](const candidate & c, const std::string & changed) -> const trial & {
        if (auto it = seen.find(c); it != seen.end()) return r.trials[it->second];
        trial t;
        t.settings = c;
        t.changed = changed;
        try {
            output_check chk;
            chk.same = true;
            if (!changed.empty() || ev.check_baseline) chk = ev.same_outputs(c);
            t.check = chk.detail;
            if (!chk.same && !changed.empty()) {
                t.rejected = true;
            } else {
                const measurement m = ev.measure(c);
                t.score = m.score;
                t.ttft_p50_ms = m.ttft_p50_ms;
                t.tpot_p50_ms = m.tpot_p50_ms;
            }
        } catch (const im::error & e) {
            if (e.kind() == error_kind::interrupted) throw;
            t.failed = e.what();
        }
        seen[c] = r.trials.size();
        r.trials.push_back(t);
        return r.trials.back();
    };

    const trial & base = run(r.baseline, "");
    if (!base.failed.empty()) throw_runtime("tune: the baseline settings cannot run: {}", base.failed);
    r.baseline_score = base.score;
    r.best = r.baseline;
    r.best_score = base.score;

    const auto out_of_time = [&] {
        if (ev.elapsed_s() < o.budget_s) return false;
        r.budget_exhausted = true;
        return true;
    };
    for (int pass = 0; pass < o.max_passes && !r.budget_exhausted; ++pass) {
        bool moved = false;
        r.passes = pass + 1;
        for (const auto & a : axes) {
            if (interrupt::requested() || out_of_time()) break;
            candidate keep = r.best;
            double keep_score = r.best_score;
            for (const auto & v : a.values) {
                if (v == r.best.at(a.name)) continue;
                if (interrupt::requested() || out_of_time()) break;
                candidate c = r.best;
                c[a.name] = v;
                const trial & t = run(c, fmt::format("{}={}", a.name, v));
                if (!t.rejected && t.failed.empty() && t.score > keep_score * (1 + o.min_gain)) {
                    keep = c;
                    keep_score = t.score;
                }
            }
            if (keep != r.best) {
                r.best = keep;
                r.best_score = keep_score;
                moved = true;
            }
        }
        if (!moved) break;
    }

    // Confirmation: one measurement per side is not a result (DESIGN §2.2); alternate them so a drift
    // of the machine falls on both.
    r.confirmed = false;
    if (r.best != r.baseline && !interrupt::requested()) {
        for (int i = 0; i < o.confirm_runs; ++i) {
            r.confirm_baseline.push_back(ev.measure(r.baseline).score);
            r.confirm_best.push_back(ev.measure(r.best).score);
        }
        const double b = stats::percentile(r.confirm_baseline, 50), t = stats::percentile(r.confirm_best, 50);
        r.confirmed_gain = b > 0 ? t / b - 1 : 0;
        r.confirmed = r.confirmed_gain >= o.min_gain;  // a gain inside the noise is not one
        if (!r.confirmed) {
            r.best = r.baseline;
            r.best_score = r.baseline_score;
        }
    }
    return r;
}

std::string command_flags(const std::vector<axis> & axes, const candidate & c, const candidate & baseline,
                          bool only_changed) {
    std::string s;
    for (const auto & a : axes) {
        const auto it = c.find(a.name);
        if (it == c.end()) continue;
        if (only_changed && baseline.count(a.name) && baseline.at(a.name) == it->second) continue;
        if (a.is_switch) {  // a flag without a value: present when "1"
            if (it->second == "1") s += fmt::format("{}{}", s.empty() ? "" : " ", a.name);
            else if (only_changed) s += fmt::format("{}(no {})", s.empty() ? "" : " ", a.name);
            continue;
        }
        s += fmt::format("{}{} {}", s.empty() ? "" : " ", a.name, it->second);
    }
    return s;
}

}  // namespace im::tune
