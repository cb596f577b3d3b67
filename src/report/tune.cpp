#include "report/tune.h"

#include "core/escape.h"
#include "core/format.h"
#include "core/stats.h"

#include <fmt/format.h>

namespace im::report {

std::string tune_markdown(const tune_section & t_) {
    const auto & r = t_.result;
    const auto & axes = t_.axes;
    const auto flags = [&](const tune::candidate & c) { return tune::command_flags(axes, c, r.baseline, false); };
    const bool continuous = t_.workload == "continuous";
    std::string md = fmt::format("## Tune: {} at W = {} ({}, {} prompt + {} generated tokens per {})\n\n",
                                 esc::md_text(t_.model), t_.workers,
                                 continuous ? "continuous batching, greedy sampling" : "lockstep", t_.n_prompt,
                                 t_.n_predict, continuous ? "request, W requests started together" : "worker");
    md += fmt::format("Score: {}. Every candidate is first checked to give the baseline's results: "
                      "2 sequences decode a fixed prompt for 16 greedy steps with the baseline's tokens fed back; a token "
                      "that differs where the baseline's choice was clear, or logits that move far beyond rounding (10% of a "
                      "row's spread), reject it; flips at near ties (margin within 4x the logit noise) are allowed and "
                      "counted. Budget {}, {} pass{}{}.\n\n",
                      continuous ? "decode-step t/s (tokens of pure decode steps per second of those steps, sampling "
                                   "included), best of 2 runs"
                                 : "aggregate generation t/s",
                      fmtx::duration(t_.budget_s), r.passes, r.passes == 1 ? "" : "es",
                      r.budget_exhausted ? " (the budget ran out)" : "");
    md += fmt::format("| # | Change | Settings | {} | vs baseline | Outcome |\n|---:|---|---|---:|---:|---|\n",
                      continuous ? "Decode-step t/s" : "Generation t/s");
    int i = 0;
    for (const auto & t : r.trials) {
        std::string outcome = t.rejected ? "rejected: " + t.check
                              : !t.failed.empty() ? "failed: " + t.failed
                              : t.settings == r.best ? "best" : "";
        if (!t.rejected && t.failed.empty() && t.check.find("near ties") != std::string::npos) outcome += " (" + t.check + ")";
        if (t.changed.rfind("-ctk=", 0) == 0 || t.changed.rfind("-ctv=", 0) == 0) {
            outcome += outcome.empty() ? "quantized KV: changes results by design" : "; quantized KV: changes results by design";
        }
        const bool ran = !t.rejected && t.failed.empty();
        md += fmt::format("| {} | {} | `{}` | {} | {} | {} |\n", ++i, t.changed.empty() ? "baseline" : esc::md_text(t.changed),
                          flags(t.settings), ran ? fmtx::thousands(t.score, 2) : "-",
                          ran && r.baseline_score > 0 ? fmtx::signed_percent(t.score / r.baseline_score - 1, 1) : "-",
                          esc::md_text(outcome));
    }
    md += "\n";
    if (r.best == r.baseline) {
        md += r.confirm_best.empty()
                  ? "**Result:** no setting beat the baseline by 1% or more: the given settings are the best found.\n"
                  : fmt::format("**Result:** the search's best did not hold up in {} alternating confirmation runs "
                                "(baseline median {} t/s); the given settings stay.\n",
                                r.confirm_baseline.size(), fmtx::thousands(stats::percentile(r.confirm_baseline, 50), 2));
    } else {
        md += fmt::format("**Result:** `{}` — {} generation t/s over the baseline, confirmed by {} alternating runs of each.\n",
                          tune::command_flags(axes, r.best, r.baseline, true), fmtx::signed_percent(r.confirmed_gain, 1),
                          r.confirm_best.size());
    }
    md += fmt::format("\n**Recommended command:** {}\n",
                      esc::md_code(continuous ? fmt::format("infermeter parallel -m {} --mode continuous --concurrency {} -p {} -n {} {}",
                                                                esc::shell_quote(t_.model), t_.workers, t_.n_prompt, t_.n_predict,
                                                                flags(r.best))
                                                  : fmt::format("infermeter parallel -m {} -w {} {}", esc::shell_quote(t_.model),
                                                                t_.workers, flags(r.best))));
    if (const auto * worst = r.costliest(); worst && r.best_score > 0 && worst->score < r.best_score) {
        md += fmt::format("\n**Costliest setting measured:** `{}`: {}x lower throughput than the best ({} against {} t/s).\n",
                          worst->changed.empty() ? std::string("the baseline") : worst->changed,
                          fmtx::thousands(r.best_score / worst->score, 2), fmtx::thousands(worst->score, 2),
                          fmtx::thousands(r.best_score, 2));
    }
    return md;
}

nlohmann::ordered_json tune_json(const tune_section & t_) {
    const auto & r = t_.result;
    const auto & axes = t_.axes;
    nlohmann::ordered_json j;
    j["schema_version"] = 1;
    j["workload"] = t_.workload;
    j["workers"] = t_.workers;
    j["n_prompt"] = t_.n_prompt;
    j["n_predict"] = t_.n_predict;
    j["baseline"] = r.baseline;
    j["baseline_gen_tps"] = r.baseline_score;
    j["best"] = r.best;
    j["best_flags"] = tune::command_flags(axes, r.best, r.baseline, false);
    j["best_gen_tps"] = r.best_score;
    if (!t_.applied_flags.empty()) j["applied_flags"] = t_.applied_flags;
    j["confirmed"] = r.confirmed;
    j["confirmed_gain"] = r.confirmed_gain;
    j["confirm_baseline_gen_tps"] = r.confirm_baseline;
    j["confirm_best_gen_tps"] = r.confirm_best;
    j["budget_exhausted"] = r.budget_exhausted;
    j["passes"] = r.passes;
    auto & ts = j["trials"] = nlohmann::ordered_json::array();
    for (const auto & t : r.trials) {
        ts.push_back({{"change", t.changed}, {"settings", t.settings}, {"gen_tps", t.score}, {"rejected", t.rejected},
                      {"check", t.check}, {"failed", t.failed}});
    }
    return j;
}

namespace {

std::vector<tune::pareto_point> front_of(const std::vector<tune_section> & levels) {
    std::vector<std::pair<int, const tune::search_result *>> v;
    for (const auto & t : levels) v.push_back({t.workers, &t.result});
    return tune::pareto_front(v);
}

}  // namespace

std::string pareto_markdown(const std::vector<tune_section> & levels) {
    std::string md = "## Pareto front: aggregate throughput against per-stream latency\n\n"
                     "The measured settings and worker counts that no other beats on both: more generation t/s in "
                     "total, and less time per token for each stream (1000 x W / aggregate t/s).\n\n"
                     "| W | Settings | Aggregate t/s | Per stream (ms/token) | Per stream t/s |\n|---:|---|---:|---:|---:|\n";
    for (const auto & p : front_of(levels)) {
        const auto & axes = levels.front().axes;
        md += fmt::format("| {} | `{}` | {} | {} | {} |\n", p.workers,
                          tune::command_flags(axes, p.settings, levels.front().result.baseline, false),
                          fmtx::thousands(p.aggregate_tps, 2), fmtx::thousands(p.ms_per_token, 2),
                          fmtx::thousands(p.aggregate_tps / p.workers, 2));
    }
    return md;
}

nlohmann::ordered_json pareto_json(const std::vector<tune_section> & levels) {
    auto j = nlohmann::ordered_json::array();
    for (const auto & p : front_of(levels)) {
        j.push_back({{"workers", p.workers}, {"settings", p.settings},
                     {"flags", tune::command_flags(levels.front().axes, p.settings, levels.front().result.baseline, false)},
                     {"aggregate_gen_tps", p.aggregate_tps}, {"ms_per_token", p.ms_per_token}});
    }
    return j;
}

std::string tune_html(const tune_section & t_) {
    const auto & r = t_.result;
    std::string h = fmt::format("<p>{} at W = {} (lockstep, {} prompt + {} generated tokens per worker): aggregate "
                                "generation t/s of each candidate; a candidate that changes the greedy results is rejected.</p>",
                                esc::html(t_.model), t_.workers, t_.n_prompt, t_.n_predict);
    h += "<table><thead><tr><th>#</th><th>Change</th><th>Settings</th><th>Generation t/s</th><th>vs baseline</th>"
         "<th>Outcome</th></tr></thead><tbody>";
    int i = 0;
    for (const auto & t : r.trials) {
        const bool ran = !t.rejected && t.failed.empty();
        const std::string outcome = t.rejected ? "rejected: " + t.check : !t.failed.empty() ? "failed: " + t.failed
                                                                       : t.settings == r.best ? "best" : "";
        h += fmt::format("<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", ++i,
                         esc::html(t.changed.empty() ? std::string("baseline") : t.changed),
                         esc::html(tune::command_flags(t_.axes, t.settings, r.baseline, false)),
                         ran ? fmtx::thousands(t.score, 2) : "-",
                         ran && r.baseline_score > 0 ? fmtx::signed_percent(t.score / r.baseline_score - 1, 1) : "-",
                         esc::html(outcome));
    }
    h += "</tbody></table>";
    if (!t_.applied_flags.empty()) {
        h += fmt::format("<p>Every later stage ran with <code>{}</code>.</p>", esc::html(t_.applied_flags));
    }
    return h;
}

}  // namespace im::report
