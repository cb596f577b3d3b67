#include "tune/search.h"

#include "core/error.h"
#include "core/interrupt.h"
#include "core/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace im::tune {

const trial * search_result::costliest() const {
    const trial * worst = nullptr;
    for (const auto & t : trials) {
        if (t.rejected || !t.failed.empty() || t.score <= 0) continue;
        if (!worst || t.score < worst->score) worst = &t;
    }
    return worst;
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
            if (!changed.empty() && !ev.same_outputs(c)) {
                t.rejected = true;
            } else {
                t.score = ev.measure(c);
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
            r.confirm_baseline.push_back(ev.measure(r.baseline));
            r.confirm_best.push_back(ev.measure(r.best));
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
