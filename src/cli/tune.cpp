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
#include "report/tune.h"
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
    std::string workers = "8";
    std::string workload = "lockstep";
    int n_prompt = 128;
    int n_predict = 64;
    std::string budget = "10m";
    bool kv_types = false;
    bool backend_sampling = false;
    std::string output = "md";
    std::string export_path;
};


void run(const tune_args & a) {
    const double budget_s = duration_seconds(a.budget, "--budget");
    const auto workers = parse_int_list(a.workers, "-w", 1, 4096);
    if (a.n_prompt < 1 || a.n_prompt > 131072) throw_usage("-p {}: give 1..131072", a.n_prompt);
    if (a.n_predict < 8 || a.n_predict > 131072) throw_usage("-n {}: give 8..131072 (a score needs some decode steps)", a.n_predict);
    if (a.output != "md" && a.output != "json") throw_usage("-o {}: md or json", a.output);
    init_engine();
    tune::inprocess_config c;
    c.model_path = model::resolve(a.model);
    fs::refuse_input_overwrite(a.export_path, "--export", {{c.model_path, "-m"}});
    c.base = single(a.engine, "tune");
    c.kv_unified = a.kv_unified;
    c.n_prompt = a.n_prompt;
    c.n_predict = a.n_predict;
    c.kv_types = a.kv_types;
    c.workload = tune::workload_from_name(a.workload);
    c.backend_sampling = a.backend_sampling;
    c.offloaded = c.base.n_gpu_layers != 0 && !engine::gpu_info().empty();
    // One search per W, the budget shared evenly; the axes are the same at every W.
    std::vector<report::tune_section> levels;
    int n = 0;
    for (int w : workers) {
        c.workers = w;
        const auto axes = tune::inprocess_axes(c);
        auto ev = tune::inprocess_evaluator(c);
        auto measure = ev.measure;
        ev.measure = [&, w](const tune::candidate & cand) {
            const double s = measure(cand);
            log::info("tune {} (W = {}): {} -> {} t/s", ++n, w, tune::command_flags(axes, cand, {}, false), fmtx::thousands(s, 2));
            return s;
        };
        tune::search_options o;
        o.budget_s = budget_s / static_cast<double>(workers.size());
        levels.push_back({a.model, w, a.n_prompt, a.n_predict, o.budget_s, axes, tune::coordinate_descent(axes, ev, o), "",
                          tune::workload_name(c.workload)});
    }
    std::string md;
    for (const auto & t : levels) md += (md.empty() ? "" : "\n") + report::tune_markdown(t);
    if (levels.size() > 1) md += "\n" + report::pareto_markdown(levels);
    const auto json = [&] {
        if (levels.size() == 1) return report::tune_json(levels.front()).dump(2) + "\n";
        nlohmann::ordered_json j;
        j["schema_version"] = 1;
        j["levels"] = nlohmann::ordered_json::array();
        for (const auto & t : levels) j["levels"].push_back(report::tune_json(t));
        j["pareto"] = report::pareto_json(levels);
        return j.dump(2) + "\n";
    };
    print_stdout(a.output == "json" ? json() : md);
    export_md_or_json(a.export_path, [&] { return md; }, json);
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
    cmd->add_option("--workload", a->workload,
                    "What a score measures: lockstep (generation t/s, no sampling) or continuous (continuous batching's "
                    "decode-step t/s with greedy sampling; adds the --backend-sampling axis)")
        ->capture_default_str();
    cmd->add_flag("--backend-sampling", a->backend_sampling, "Baseline (continuous): greedy sampling in the graph");
    cmd->add_option("-w,--workers", a->workers, "Parallel sequences the settings are tuned for; a list (1,8,64) searches each W (the budget shared) and adds the Pareto front of throughput against per-stream latency")->capture_default_str();
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
