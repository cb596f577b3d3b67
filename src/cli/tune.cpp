// `infermeter tune`: the settings that change speed but not results, searched on this machine
// (issue 11; src/tune/search.h for the search, src/tune/inprocess.h for the in-process evaluator).
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/escape.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "core/stats.h"
#include "engine/backend.h"
#include "model/info.h"
#include "model/ref.h"
#include "tune/inprocess.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>

namespace im::cli {

namespace {

struct tune_args {
    std::string model;
    engine_flags engine;
    bool kv_unified = false;
    int workers = 8;
    int n_prompt = 128;
    int n_predict = 64;
    std::string budget = "10m";
    bool kv_types = false;
    std::string output = "md";
    std::string export_path;
};

// "90", "90s", "10m", "1h" -> seconds.
double budget_seconds(const std::string & s) {
    const auto bad = [&] { throw_usage("--budget {}: give seconds, or a number with s, m or h (e.g. 10m)", s); };
    if (s.empty()) bad();
    double mult = 1;
    std::string num = s;
    switch (s.back()) {
        case 's': num.pop_back(); break;
        case 'm': mult = 60; num.pop_back(); break;
        case 'h': mult = 3600; num.pop_back(); break;
        default: break;
    }
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(num, &used);
    } catch (const std::exception &) {
        bad();
    }
    if (used != num.size() || !std::isfinite(v) || v <= 0 || v * mult > 7 * 24 * 3600.0) bad();
    return v * mult;
}

std::string markdown(const tune::search_result & r, const std::vector<tune::axis> & axes, const tune_args & a,
                     const std::string & model_label, double budget_s) {
    const auto flags = [&](const tune::candidate & c) { return tune::command_flags(axes, c, r.baseline, false); };
    std::string md = fmt::format("## Tune: {} at W = {} (lockstep, {} prompt + {} generated tokens per worker)\n\n",
                                 esc::md_text(model_label), a.workers, a.n_prompt, a.n_predict);
    md += fmt::format("Score: aggregate generation t/s. Every candidate is first checked to give the baseline's results: "
                      "2 sequences decode a fixed prompt for 16 greedy steps with the baseline's tokens fed back; a token "
                      "that differs where the baseline's choice was clear, or logits that move far beyond rounding (10% of a "
                      "row's spread), reject it; flips at near ties (margin within 4x the logit noise) are allowed and "
                      "counted. Budget {}, {} pass{}{}.\n\n",
                      fmtx::duration(budget_s), r.passes, r.passes == 1 ? "" : "es",
                      r.budget_exhausted ? " (the budget ran out)" : "");
    md += "| # | Change | Settings | Generation t/s | vs baseline | Outcome |\n|---:|---|---|---:|---:|---|\n";
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
                      esc::md_code(fmt::format("infermeter parallel -m {} -w {} {}", esc::shell_quote(a.model), a.workers, flags(r.best))));
    if (const auto * worst = r.costliest(); worst && r.best_score > 0 && worst->score < r.best_score) {
        md += fmt::format("\n**Costliest setting measured:** `{}`: {}x lower throughput than the best ({} against {} t/s).\n",
                          worst->changed.empty() ? std::string("the baseline") : worst->changed,
                          fmtx::thousands(r.best_score / worst->score, 2), fmtx::thousands(worst->score, 2),
                          fmtx::thousands(r.best_score, 2));
    }
    return md;
}

nlohmann::ordered_json to_json(const tune::search_result & r, const std::vector<tune::axis> & axes, const tune_args & a) {
    nlohmann::ordered_json j;
    j["schema_version"] = 1;
    j["workload"] = "lockstep";
    j["workers"] = a.workers;
    j["n_prompt"] = a.n_prompt;
    j["n_predict"] = a.n_predict;
    j["baseline"] = r.baseline;
    j["baseline_gen_tps"] = r.baseline_score;
    j["best"] = r.best;
    j["best_flags"] = tune::command_flags(axes, r.best, r.baseline, false);
    j["best_gen_tps"] = r.best_score;
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

void run(const tune_args & a) {
    const double budget_s = budget_seconds(a.budget);
    if (a.workers < 1 || a.workers > 4096) throw_usage("-w {}: give 1..4096 workers", a.workers);
    if (a.n_prompt < 1 || a.n_prompt > 131072) throw_usage("-p {}: give 1..131072", a.n_prompt);
    if (a.n_predict < 8 || a.n_predict > 131072) throw_usage("-n {}: give 8..131072 (a score needs some decode steps)", a.n_predict);
    if (a.output != "md" && a.output != "json") throw_usage("-o {}: md or json", a.output);
    init_engine();
    tune::inprocess_config c;
    c.model_path = model::resolve(a.model);
    fs::refuse_input_overwrite(a.export_path, "--export", {{c.model_path, "-m"}});
    c.base = single(a.engine, "tune");
    c.kv_unified = a.kv_unified;
    c.workers = a.workers;
    c.n_prompt = a.n_prompt;
    c.n_predict = a.n_predict;
    c.kv_types = a.kv_types;
    c.offloaded = c.base.n_gpu_layers != 0 && !engine::gpu_info().empty();
    const auto axes = tune::inprocess_axes(c);
    auto ev = tune::inprocess_evaluator(c);
    auto measure = ev.measure;
    int n = 0;
    ev.measure = [&](const tune::candidate & cand) {
        const double s = measure(cand);
        log::info("tune {}: {} -> {} t/s", ++n, tune::command_flags(axes, cand, {}, false), fmtx::thousands(s, 2));
        return s;
    };
    tune::search_options o;
    o.budget_s = budget_s;
    const auto r = tune::coordinate_descent(axes, ev, o);
    const std::string md = markdown(r, axes, a, a.model, budget_s);
    print_stdout(a.output == "json" ? to_json(r, axes, a).dump(2) + "\n" : md);
    export_md_or_json(a.export_path, [&] { return md; }, [&] { return to_json(r, axes, a).dump(2) + "\n"; });
}

}  // namespace

void add_tune(CLI::App & root) {
    auto a = std::make_shared<tune_args>();
    auto * cmd = root.add_subcommand(
        "tune", "Search the engine settings that change speed but not results (flash attention, -ub, KV layout, threads, "
                "polling) for the lockstep workload at W workers; each candidate's greedy tokens must match the baseline's");
    cmd->add_option("-m,--model", a->model, "A .gguf file or synth:PRESET[-QUANT]")->required();
    add_engine_flags(cmd, a->engine);
    cmd->add_flag("--kv-unified", a->kv_unified, "Baseline: one KV buffer shared by all sequences");
    cmd->add_option("-w,--workers", a->workers, "Parallel sequences the settings are tuned for")->capture_default_str();
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens per worker of each probe run")->capture_default_str();
    cmd->add_option("-n,--n-predict", a->n_predict, "Generated tokens per worker of each probe run")->capture_default_str();
    cmd->add_option("--budget", a->budget, "Time for the search: seconds, or 90s, 10m, 1h (confirmation runs come after)")
        ->capture_default_str();
    cmd->add_flag("--kv-types", a->kv_types, "Also try q8_0 K/V caches (they change results by design: listed as such, and rejected when a clear greedy token changes)");
    cmd->add_option("-o,--output", a->output, "stdout format: md or json")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write the result to FILE (.json for JSON, else markdown)");
    cmd->callback([a] { run(*a); });
}

}  // namespace im::cli
