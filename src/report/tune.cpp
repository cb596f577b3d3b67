#include "report/tune.h"

#include "core/escape.h"
#include "core/format.h"
#include "core/stats.h"

#include <fmt/format.h>

namespace im::report {

namespace {

// What the JSON and the tables call a trial's outcome.
std::string verdict_of(const tune::trial & t) {
    if (t.changed.empty()) return "baseline";
    if (t.rejected) return "rejected";
    if (!t.failed.empty()) return "failed";
    return t.check.find("near ties") != std::string::npos ? "accepted (near ties)" : "accepted";
}

std::string ms_or_dash(double ms) { return ms >= 0 ? fmtx::thousands(ms, 2) : "-"; }

// `tune --workload serve`: the header, the output check's rule, and the table with latencies.
std::string serve_markdown_head(const tune_section & t_) {
    const auto & r = t_.result;
    std::string md = fmt::format("## Tune: {} at C = {} (llama-server, closed loop, {} prompt + {} generated tokens per request)\n\n",
                                 esc::md_text(t_.model), t_.workers, t_.n_prompt, t_.n_predict);
    md += fmt::format("Each candidate launches llama-server (`-np {}`, continuous batching) with its flags, runs C users of "
                      "fixed requests through the HTTP client (greedy: temperature 0, fixed seed and prompts, ignore EOS; each "
                      "user's first request is warmup), and stops it. Score: aggregate output t/s over the steady window, "
                      "with the p50 TTFT and TPOT beside it. Output check: HTTP cannot teacher-force, so every probe request's "
                      "streamed text is compared with the baseline's reference answer to the same request up to the first "
                      "divergence; a divergence where the baseline's top-2 probabilities (llama-server's `n_probs`) differ by "
                      "{:g} or more rejects the candidate, one below is a near tie (accepted, counted). Budget {}, {} pass{}{}.\n\n",
                      t_.workers, t_.tie_margin, fmtx::duration(t_.budget_s), r.passes, r.passes == 1 ? "" : "es",
                      r.budget_exhausted ? " (the budget ran out)" : "");
    if (!r.trials.empty() && !r.trials.front().check.empty()) {
        md += "**Output check, baseline:** " + esc::md_text(r.trials.front().check) + ".\n\n";
    }
    md += "| # | Change | Settings | Output t/s | vs baseline | p50 TTFT (ms) | p50 TPOT (ms) | Outcome |\n"
          "|---:|---|---|---:|---:|---:|---:|---|\n";
    int i = 0;
    for (const auto & t : r.trials) {
        const bool ran = !t.rejected && t.failed.empty();
        std::string outcome = t.rejected ? "rejected: " + t.check : !t.failed.empty() ? "failed: " + t.failed : "";
        if (ran && !t.changed.empty()) outcome = t.check;
        if (ran && t.settings == r.best) outcome = outcome.empty() ? "best" : "best; " + outcome;
        md += fmt::format("| {} | {} | `{}` | {} | {} | {} | {} | {} |\n", ++i,
                          t.changed.empty() ? "baseline" : esc::md_text(t.changed),
                          tune::command_flags(t_.axes, t.settings, r.baseline, false), ran ? fmtx::thousands(t.score, 2) : "-",
                          ran && r.baseline_score > 0 ? fmtx::signed_percent(t.score / r.baseline_score - 1, 1) : "-",
                          ran ? ms_or_dash(t.ttft_p50_ms) : "-", ran ? ms_or_dash(t.tpot_p50_ms) : "-", esc::md_text(outcome));
    }
    return md + "\n";
}

// lockstep / continuous: the header, the output check's rule, and the table.
std::string inprocess_markdown_head(const tune_section & t_) {
    const auto & r = t_.result;
    const auto flags = [&](const tune::candidate & c) { return tune::command_flags(t_.axes, c, r.baseline, false); };
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
    return md + "\n";
}

}  // namespace

std::string tune_markdown(const tune_section & t_) {
    const auto & r = t_.result;
    const auto & axes = t_.axes;
    const auto flags = [&](const tune::candidate & c) { return tune::command_flags(axes, c, r.baseline, false); };
    const bool continuous = t_.workload == "continuous";
    const bool serve = t_.workload == "serve";
    const char * unit = serve ? "output t/s" : "generation t/s";
    std::string md = serve ? serve_markdown_head(t_) : inprocess_markdown_head(t_);
    if (r.best == r.baseline) {
        md += r.confirm_best.empty()
                  ? "**Result:** no setting beat the baseline by 1% or more: the given settings are the best found.\n"
                  : fmt::format("**Result:** the search's best did not hold up in {} alternating confirmation runs "
                                "(baseline median {} t/s); the given settings stay.\n",
                                r.confirm_baseline.size(), fmtx::thousands(stats::percentile(r.confirm_baseline, 50), 2));
    } else {
        md += fmt::format("**Result:** `{}` — {} {} over the baseline, confirmed by {} alternating runs of each.\n",
                          tune::command_flags(axes, r.best, r.baseline, true), fmtx::signed_percent(r.confirmed_gain, 1), unit,
                          r.confirm_best.size());
    }
    const std::string command =
        serve ? t_.server_command
              : continuous ? fmt::format("infermeter parallel -m {} --mode continuous --concurrency {} -p {} -n {} {}",
                                         esc::shell_quote(t_.model), t_.workers, t_.n_prompt, t_.n_predict, flags(r.best))
                           : fmt::format("infermeter parallel -m {} -w {} {}", esc::shell_quote(t_.model), t_.workers, flags(r.best));
    md += fmt::format("\n**Recommended command:** {}\n", esc::md_code(command));
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
    if (!t_.server_command.empty()) j["recommended_command"] = t_.server_command;
    if (t_.workload == "serve") j["tie_margin"] = t_.tie_margin;
    if (!t_.applied_flags.empty()) j["applied_flags"] = t_.applied_flags;
    j["confirmed"] = r.confirmed;
    j["confirmed_gain"] = r.confirmed_gain;
    j["confirm_baseline_gen_tps"] = r.confirm_baseline;
    j["confirm_best_gen_tps"] = r.confirm_best;
    j["budget_exhausted"] = r.budget_exhausted;
    j["passes"] = r.passes;
    auto & ts = j["trials"] = nlohmann::ordered_json::array();
    for (const auto & t : r.trials) {
        nlohmann::ordered_json tj{{"change", t.changed}, {"settings", t.settings}, {"gen_tps", t.score},
                                  {"rejected", t.rejected}, {"verdict", verdict_of(t)}, {"check", t.check}, {"failed", t.failed}};
        if (t.ttft_p50_ms >= 0) tj["ttft_p50_ms"] = t.ttft_p50_ms;
        if (t.tpot_p50_ms >= 0) tj["tpot_p50_ms"] = t.tpot_p50_ms;
        ts.push_back(std::move(tj));
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
    if (levels.front().workload == "serve") {
        std::string md = "## Pareto front: aggregate throughput against per-stream latency\n\n"
                         "The measured settings and concurrencies that no other beats on both: more output t/s in total, and a "
                         "lower p50 time per output token (TPOT) for each stream; p50 TTFT beside them.\n\n"
                         "| C | Settings | Aggregate t/s | p50 TPOT (ms) | p50 TTFT (ms) |\n|---:|---|---:|---:|---:|\n";
        for (const auto & p : front_of(levels)) {
            md += fmt::format("| {} | `{}` | {} | {} | {} |\n", p.workers,
                              tune::command_flags(levels.front().axes, p.settings, levels.front().result.baseline, false),
                              fmtx::thousands(p.aggregate_tps, 2), fmtx::thousands(p.ms_per_token, 2), ms_or_dash(p.ttft_p50_ms));
        }
        return md;
    }
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
        if (p.ttft_p50_ms >= 0) j.back()["ttft_p50_ms"] = p.ttft_p50_ms;
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
