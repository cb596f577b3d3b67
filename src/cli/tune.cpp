// `infermeter tune`: the settings that change speed but not results, searched on this machine
// (issue 11; src/tune/search.h for the search, src/tune/inprocess.h for the in-process evaluator).
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/output.h"
#include "cli/server_launch.h"
#include "core/error.h"
#include "core/escape.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "core/stats.h"
#include "dataset/vocab.h"
#include "engine/backend.h"
#include "model/info.h"
#include "model/ref.h"
#include "report/tune.h"
#include "tune/inprocess.h"
#include "tune/serve.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>
#include <unistd.h>

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
    // --workload serve
    std::string server_bin;
    std::vector<std::string> server_args;
    double tie_margin = 0.03;
    int probe_requests = 3;
};

// serve --launch-server's machinery behind the evaluator's interface: one llama-server per probe.
class launched_probe_server : public tune::running_server {
  public:
    explicit launched_probe_server(const launch_options & o) : server_(o) {}
    std::string url() const override { return server_.url(); }

  private:
    launched_server server_;
};

// The serve workload's configuration: the engine flags' values are the axes' baselines (as llama-server
// reads them), the rest of them and --server-arg are passed through unchanged.
tune::serve_config serve_config_of(const tune_args & a, const std::filesystem::path & model_path,
                                   const engine::llama::engine_params & base) {
    tune::serve_config c;
    c.model_path = model_path;
    c.fixed_args = server_engine_args(a.engine, false);
    c.fixed_args.insert(c.fixed_args.end(), a.server_args.begin(), a.server_args.end());
    c.flash_attn = engine::llama::flash_attn_name(base.fa);
    c.n_batch = base.n_batch;
    c.n_ubatch = base.n_ubatch;
    c.n_threads = a.engine.threads.empty() ? 0 : base.n_threads;
    c.backend_sampling = a.backend_sampling;
    c.kv_unified = a.kv_unified;
    c.offloaded = base.n_gpu_layers != 0 && !engine::gpu_info().empty();
    c.n_prompt = a.n_prompt;
    c.n_predict = a.n_predict;
    c.tie_margin = a.tie_margin;
    c.requests_per_user = a.probe_requests;
    return c;
}


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
    const bool serve = c.workload == tune::workload_kind::serve;
    if (!serve && a.probe_requests != 3) throw_usage("--probe-requests: only with --workload serve");
    if (serve) {
        if (a.kv_types) throw_usage("--kv-types: not with --workload serve (quantized KV changes results; give -ctk/-ctv to fix them)");
        if (a.tie_margin <= 0 || a.tie_margin >= 1) throw_usage("--tie-margin {}: give a probability gap in (0, 1)", a.tie_margin);
        if (a.probe_requests < 2 || a.probe_requests > 1000) {
            throw_usage("--probe-requests {}: give 2..1000 (the first request of each user is warmup)", a.probe_requests);
        }
        if (!a.server_bin.empty() && access(a.server_bin.c_str(), X_OK) != 0) {
            throw_usage("--server-bin {}: not an executable file", a.server_bin);
        }
        // A searched or sized flag given again would be overridden by (or override) the candidate's.
        for (const auto & arg : a.server_args) {
            const std::string name = arg.substr(0, arg.find('='));
            for (const char * f : {"-fa", "--flash-attn", "-ub", "--ubatch-size", "-b", "--batch-size", "-t", "--threads",
                                   "--threads-http", "-kvu", "--kv-unified", "-no-kvu", "--no-kv-unified", "-bs",
                                   "--backend-sampling", "-np", "--parallel", "-c", "--ctx-size", "-m", "--model", "--host",
                                   "--port"}) {
                if (name == f) {
                    throw_usage("--server-arg {}: tune sets it for every candidate (give a searched flag's baseline as "
                                "tune's own flag, e.g. -ub 256; -np is -w)",
                                arg);
                }
            }
        }
    } else if (!a.server_bin.empty() || !a.server_args.empty()) {
        throw_usage("--server-bin and --server-arg are for --workload serve");
    }
    std::unique_ptr<dataset::vocabulary> vocab;
    if (serve) vocab = std::make_unique<dataset::vocabulary>(c.model_path);
    const tune::server_launcher launch = [&a](const std::vector<std::string> & args) -> std::unique_ptr<tune::running_server> {
        launch_options lo;
        lo.bin = a.server_bin;
        lo.args = args;
        try {
            return std::make_unique<launched_probe_server>(lo);
        } catch (const error & e) {
            if (e.kind() != error_kind::runtime) throw;
            // A candidate the server refuses is a failed trial: its table cell gets the first line and the
            // log's last one, not the whole tail.
            const std::string m = e.what();
            const auto first = m.substr(0, m.find('\n'));
            auto tail = m.substr(0, m.find_last_not_of("\n ") + 1);
            tail = tail.substr(tail.find_last_of('\n') + 1);
            throw error(error_kind::runtime, tail == first ? first : first + " ... " + tail);
        }
    };
    // One search per W, the budget shared evenly; the axes are the same at every W (serve: but -np and
    // --threads-http follow C).
    std::vector<report::tune_section> levels;
    int n = 0;
    for (int w : workers) {
        c.workers = w;
        auto sc = serve ? serve_config_of(a, c.model_path, c.base) : tune::serve_config{};
        sc.concurrency = w;
        const auto axes = serve ? tune::serve_axes(sc) : tune::inprocess_axes(c);
        auto ev = serve ? tune::serve_evaluator(sc, axes, launch, vocab->get()) : tune::inprocess_evaluator(c);
        auto measure = ev.measure;
        ev.measure = [&, w](const tune::candidate & cand) {
            const auto m = measure(cand);
            log::info("tune {} ({} = {}): {} -> {} t/s", ++n, serve ? "C" : "W", w, tune::command_flags(axes, cand, {}, false),
                      fmtx::thousands(m.score, 2));
            return m;
        };
        tune::search_options o;
        o.budget_s = budget_s / static_cast<double>(workers.size());
        auto result = tune::coordinate_descent(axes, ev, o);
        const std::string command = serve ? tune::server_command(sc, axes, result.best) : "";
        levels.push_back({a.model, w, a.n_prompt, a.n_predict, o.budget_s, axes, std::move(result), "",
                          tune::workload_name(c.workload), command, serve ? a.tie_margin : 0});
    }
    std::string md;
    for (const auto & t : levels) md += (md.empty() ? "" : "\n") + report::tune_markdown(t);
    // serve: the Pareto front also at one C (its latency axis is measured, not derived from the score).
    if (levels.size() > 1 || serve) md += "\n" + report::pareto_markdown(levels);
    const auto json = [&] {
        if (levels.size() == 1) {
            auto j = report::tune_json(levels.front());
            if (serve) j["pareto"] = report::pareto_json(levels);
            return j.dump(2) + "\n";
        }
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
                "polling) for the lockstep workload at W workers; each candidate's greedy tokens must match the baseline's. "
                "--workload serve tunes llama-server's own flags instead (a server launched per candidate)");
    cmd->add_option("-m,--model", a->model, "A .gguf file or synth:PRESET[-QUANT]")->required();
    add_engine_flags(cmd, a->engine);
    cmd->add_flag("--kv-unified", a->kv_unified, "Baseline: one KV buffer shared by all sequences");
    cmd->add_option("--workload", a->workload,
                    "What a score measures: lockstep (generation t/s, no sampling), continuous (continuous batching's "
                    "decode-step t/s with greedy sampling; adds the --backend-sampling axis), or serve (llama-server's flags: "
                    "--backend-sampling, -fa, --kv-unified, -ub, -b, and on a CPU -t and --threads-http; each candidate "
                    "launches build/bin/llama-server with -np = W on 127.0.0.1, runs W closed-loop users of --probe-requests "
                    "greedy requests each (-p/-n) over HTTP and is scored by aggregate output t/s, p50 TTFT and TPOT beside it; its streamed "
                    "text must match the baseline's up to a divergence at a near tie, see --tie-margin)")
        ->capture_default_str();
    cmd->add_flag("--backend-sampling", a->backend_sampling, "Baseline (continuous, serve): greedy sampling in the graph");
    cmd->add_option("--server-bin", a->server_bin, "serve: the llama-server executable (default: the one beside infermeter)");
    cmd->add_option("--server-arg", a->server_args,
                    "serve: an extra llama-server argument for every candidate, not searched (repeatable; --server-arg=--flag "
                    "for dashed ones)");
    cmd->add_option("--probe-requests", a->probe_requests,
                    "serve: requests per user in each probe, the first of each user warmup (more: steadier scores on a noisy "
                    "machine, longer probes)")
        ->capture_default_str();
    cmd->add_option("--tie-margin", a->tie_margin,
                    "serve: a candidate's text may leave the baseline's only where the baseline's top-2 token probabilities "
                    "differ by less than this (a near tie: reordered float arithmetic can flip it)")
        ->capture_default_str();
    cmd->add_option("-w,--workers", a->workers, "Parallel sequences the settings are tuned for (serve: the concurrency C and the server's -np); a list (1,8,64) searches each W (the budget shared) and adds the Pareto front of throughput against per-stream latency")->capture_default_str();
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
