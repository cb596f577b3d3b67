#include "cli/commands.h"

#include "cli/continuous.h"
#include "cli/engine_flags.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "core/ranges.h"
#include "model/info.h"
#include "model/quant.h"
#include "model/ref.h"
#include "report/measurements.h"
#include "report/split.h"
#include "telemetry/sampler.h"
#include "workload/fast.h"
#include "workload/lockstep.h"
#include "workload/plan.h"

#include <fmt/format.h>

#include <algorithm>

namespace im::cli {

namespace {

struct parallel_args {
    std::string model;
    std::string workers = "1,2,4,8";
    int n_prompt = 128;
    int n_predict = 128;
    std::string ctx = "auto";
    int64_t ctx_min = 0;
    bool kv_unified = false;
    int repetitions = 1;
    bool no_warmup = false;
    bool plan_only = false;
    bool allow_ctx_overflow = false;
    bool fast = false;
    int verify = 0;
    std::string mode = "lockstep";
    std::string output = "md";
    std::string export_path;
    std::string split_baseline;
    store::store_flags db;
    engine_flags engine;
    continuous_flags continuous;
};

workload::lockstep_config config_of(const parallel_args & a, const std::filesystem::path & model_path) {
    workload::lockstep_config c;
    c.model_path = model_path;
    c.params = single(a.engine, "parallel");
    c.workers = parse_int_list(a.workers, "--workers", 1);
    c.n_prompt = a.n_prompt;
    c.n_predict = a.n_predict;
    if (a.ctx != "auto") {
        const auto v = parse_int_list(a.ctx, "--ctx", 1, static_cast<int>(workload::max_ctx_cells));
        if (v.size() != 1) throw_usage("--ctx takes 'auto' or one number of cells (got '{}')", a.ctx);
        c.n_ctx = v.front();
    }
    check_range(a.ctx_min, "--ctx-min", 0, workload::max_ctx_cells, "checked against the trained context and free memory too");
    c.ctx_min = a.ctx_min;
    c.kv_unified = a.kv_unified;
    check_range(a.repetitions, "-r", 1, 1000);
    c.repetitions = a.repetitions;
    c.warmup = !a.no_warmup;
    c.allow_ctx_overflow = a.allow_ctx_overflow;
    return c;
}

// --fast: the sweep predicted from step probes; --verify W also measures W fully and compares.
void run_fast(const parallel_args & a, workload::lockstep_config c, const output_target & out, uint64_t kvpt) {
    if (c.repetitions != 1) throw_usage("--fast predicts one sweep: -r does not apply");
    if (a.verify > 0 && std::find(c.workers.begin(), c.workers.end(), a.verify) == c.workers.end()) {
        throw_usage("--verify {}: not one of the swept worker counts ({})", a.verify, fmt::join(c.workers, ","));
    }
    workload::fast_result f;
    workload::lockstep_row measured;
    bool have_measured = false;
    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);
    const auto result = [&](bool interrupted) {
        workload::lockstep_result r = f.sweep;
        if (have_measured) r.rows.push_back(measured);
        r.interrupted = r.interrupted || interrupted;
        return r;
    };
    const auto markdown = [&](bool interrupted) {
        std::string md = fmt::format("## Parallel Workload Performance ({} prompt / {} output tokens, lockstep, predicted)\n\n",
                                     c.n_prompt, c.n_predict) +
                         report::parallel_markdown(result(interrupted), c, kvpt);
        if (!f.probes.steps.empty()) md += "\n" + workload::fast_markdown(f);
        if (const auto * p = have_measured ? workload::predicted_row(f, measured.workers) : nullptr) {
            md += workload::verify_markdown(*p, measured);
        }
        return md;
    };
    results_writer writer(out, a.db, "parallel", [&](bool interrupted) { return report::parallel_table(result(interrupted), c, ctx); },
                          markdown);
    writer.update(ctx);
    progress_line progress;
    workload::step_probe_callbacks pcb;
    // Each probe point stays on stderr: what the predictions rest on.
    pcb.progress = [&](const std::string & line) { progress.done("probe " + line); };
    f = workload::run_fast(c, pcb);
    progress.clear();
    {
        engine::llama::model m(c.model_path, c.params, /*no_alloc=*/true);
        ctx = report::make_run_context(&m, globals().command_line);
    }
    writer.update(ctx);
    if (a.verify > 0 && !f.sweep.interrupted) {
        workload::lockstep_callbacks cb;
        cb.progress = [&](const workload::lockstep_progress & p) { progress.update(lockstep_progress_text(p)); };
        cb.warn = [&](const std::string & msg) {
            progress.clear();
            log::warn("{}", msg);
        };
        const auto m = workload::verify_one(c, f, a.verify, cb);
        progress.clear();
        if (m) {
            measured = *m;
            have_measured = true;
            if (const auto * p = workload::predicted_row(f, a.verify)) {
                log::info("--verify W={}: overall predicted {} t/s, measured {} t/s ({:+.1f}%)", a.verify,
                          fmtx::thousands(p->overall_tps.mean), fmtx::thousands(measured.overall_tps.mean),
                          workload::prediction_error_pct(*p, measured));
            }
        }
    }
    writer.finish(ctx, f.sweep.interrupted);
    if (f.sweep.interrupted) throw error(error_kind::interrupted, "interrupted: the results above are partial");
}

void run(const parallel_args & a) {
    if (a.mode == "continuous") {
        if (a.plan_only) throw_usage("--plan is for lockstep sweeps; continuous runs size one context per load level");
        if (a.workers != "1,2,4,8") throw_usage("--workers is for lockstep; continuous mode takes --concurrency or --rate");
        continuous_command c;
        c.model = a.model;
        c.n_prompt = a.n_prompt;
        c.n_predict = a.n_predict;
        c.ctx_min = a.ctx_min;
        c.kv_unified = a.kv_unified;
        c.no_warmup = a.no_warmup;
        c.output = a.output;
        c.export_path = a.export_path;
        c.db = a.db;
        c.engine = a.engine;
        c.flags = a.continuous;
        c.fast = a.fast;
        c.verify = a.verify;
        run_continuous_command(c);
        return;
    }
    init_engine();
    if (a.mode != "lockstep") throw_usage("--mode {}: use lockstep (batched-bench semantics) or continuous", a.mode);
    const auto out = output_target::from_flags(a.output, a.export_path);
    if (a.n_prompt <= 0) throw_usage("-p: the prompt length must be > 0 (got {})", a.n_prompt);
    if (a.n_predict <= 0) throw_usage("-n: the number of tokens to generate must be > 0 (got {})", a.n_predict);
    const auto model_path = model::resolve(a.model);
    out.refuse_inputs({{model_path, "-m"}, {a.db.db_path, "--db"}});
    const auto info = model::read_info(model_path);
    auto c = config_of(a, model_path);
    workload::validate(c, info);
    if (c.allow_ctx_overflow && info.n_ctx_train > 0 && c.n_prompt + c.n_predict > info.n_ctx_train) {
        log::warn("{} tokens per sequence exceed the trained context of {}: quality is meaningless, speed is still measured",
                  c.n_prompt + c.n_predict, info.n_ctx_train);
    }
    const uint64_t kvpt = model::kv_bytes_per_token(info, c.params.type_k, c.params.type_v);

    if (a.plan_only && (a.fast || a.verify > 0)) throw_usage("--plan runs nothing: it does not combine with --fast or --verify");
    if (a.verify > 0 && !a.fast) throw_usage("--verify {} compares a --fast prediction with a measurement: add --fast", a.verify);
    if (a.plan_only) {
        const auto p = workload::plan(c);
        if (out.stdout_format == report::format::json) {
            fmt::print("{}\n", report::plan_json(p).dump(2));
        } else if (out.stdout_format == report::format::md) {
            fmt::print("{}", report::plan_markdown(p));
        } else {
            throw_usage("--plan prints md or json (-o md|json)");
        }
        for (const auto & row : p) {
            if (!row.fits && row.refused.empty()) {
                log::warn("{} workers need {} MiB but {} has {} MiB free; {}",
                          row.workers, fmtx::thousands(static_cast<double>(row.total_bytes) / fmtx::mib, 0), row.device,
                          fmtx::thousands(static_cast<double>(row.free_bytes) / fmtx::mib, 0),
                          workload::fits_text(workload::largest_fitting_workers(row, c, kvpt)));
            }
        }
        workload::check_plan(p);  // a configuration llama.cpp rejects is a usage error, after the table
        return;
    }

    if (a.fast) {
        run_fast(a, c, out, kvpt);
        return;
    }

    const auto baseline = workload::read_split_baseline(a.split_baseline);
    std::optional<workload::split_analysis> split;  // when layers sit off the host (--rpc, GPUs)
    workload::lockstep_result partial;
    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);  // the model's, from the first W
    bool have_model_ctx = false;
    const auto with_mark = [&](bool interrupted) {
        workload::lockstep_result r = partial;
        r.interrupted = r.interrupted || interrupted;
        return r;
    };
    const auto markdown = [&](bool interrupted) {
        return fmt::format("## Parallel Workload Performance ({} prompt / {} output tokens, lockstep)\n\n", c.n_prompt,
                           c.n_predict) + report::parallel_markdown(with_mark(interrupted), c, kvpt) +
               (split ? "\n" + report::split_markdown(*split) : "");
    };
    results_writer writer(out, a.db, "parallel",
                          [&](bool interrupted) { return report::parallel_table(with_mark(interrupted), c, ctx); }, markdown);
    progress_line progress;
    workload::lockstep_callbacks cb;
    cb.progress = [&](const workload::lockstep_progress & p) {
        progress.update(lockstep_progress_text(p));
    };
    cb.warn = [&](const std::string & msg) {
        progress.clear();
        log::warn("{}", msg);
    };
    cb.row = [&](const workload::lockstep_row & row, const engine::llama::model & m) {
        if (!have_model_ctx) {
            ctx = report::make_run_context(&m, globals().command_line);
            have_model_ctx = true;
            note_devices(m);
            split = workload::analyze_split(m, c.params);
            if (split) split->baseline_source = a.split_baseline;
        }
        partial.rows.push_back(row);
        if (split) split->steps = workload::attribute_lockstep(*split, partial.rows, c.params.n_ubatch, baseline);
        if (partial.base_workers == 0) partial.base_workers = row.workers;
        if (row.kv_bytes_allocated != 0 && !workload::kv_agrees(row.kv_bytes, row.kv_bytes_allocated)) {
            log::warn("{} workers: computed KV {} B but llama.cpp allocated {} B", row.workers, row.kv_bytes,
                      row.kv_bytes_allocated);
        }
        progress.done(fmt::format("W={}: prompt {} t/s, generation {} t/s, overall {} t/s, KV {} MiB (llama.cpp: {} MiB)",
                                  row.workers, fmtx::thousands(row.prompt_tps.mean), fmtx::thousands(row.gen_tps.mean),
                                  fmtx::thousands(row.overall_tps.mean),
                                  fmtx::thousands(static_cast<double>(row.kv_bytes) / fmtx::mib, 2),
                                  fmtx::thousands(static_cast<double>(row.kv_bytes_allocated) / fmtx::mib, 2)));
        writer.update(ctx);
    };
    writer.update(ctx);  // from the start: an export and the last words exist whenever the run ends
    telemetry::sampler sampler;  // each row's peak GPU memory and RSS (telemetry/sampler.h)
    sampler.set_stage("parallel");
    sampler.start();
    cb.sampler = &sampler;
    auto result = workload::run_lockstep(c, cb);
    sampler.stop();
    progress.clear();
    if (std::none_of(result.rows.begin(), result.rows.end(), [](const auto & r) { return r.skipped.empty(); }) &&
        !result.interrupted) {
        throw_runtime("no worker count fits in memory: {}", result.rows.front().skipped);
    }
    partial = result;
    writer.finish(ctx, result.interrupted);
    if (split && out.stdout_format != report::format::md) fmt::print(stderr, "\n{}", report::split_markdown(*split));
    if (result.interrupted) throw error(error_kind::interrupted, "interrupted: the results above are partial");
}

}  // namespace

void add_parallel(CLI::App & root) {
    auto a = std::make_shared<parallel_args>();
    auto * cmd = root.add_subcommand("parallel", "Worker sweep in-process: auto context, KV memory, prompt/generation/overall t/s, speedup");
    cmd->add_option("-m,--model", a->model, "A .gguf file or synth:PRESET[-QUANT]")->required();
    cmd->add_option("-w,--workers", a->workers, "Worker counts (list/range: 1,2,4,8 or 1-64*2)")->capture_default_str();
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens per worker")->capture_default_str();
    cmd->add_option("-n,--n-predict", a->n_predict, "Tokens generated per worker")->capture_default_str();
    cmd->add_option("--ctx", a->ctx, "Context cells: auto = max(ctx-min, W*pad256(p+n)), or a number")->capture_default_str();
    cmd->add_option("--ctx-min", a->ctx_min, "Smallest auto context (cells; within the trained context per sequence and free memory)")->capture_default_str();
    cmd->add_flag("--kv-unified", a->kv_unified, "One KV buffer shared by all sequences (default: one stream per worker)");
    cmd->add_option("-r,--repetitions", a->repetitions, "Repetitions per worker count (1..1000)")->capture_default_str();
    cmd->add_flag("--no-warmup", a->no_warmup, "Skip the warmup decode");
    cmd->add_flag("--plan", a->plan_only, "Print per-W context, KV and memory needs (llama.cpp dry run) without running");
    cmd->add_flag("--allow-ctx-overflow", a->allow_ctx_overflow, "Allow p+n beyond the model's trained context");
    cmd->add_flag("--fast", a->fast, "Predict the sweep from short decode-step and prefill probes (rows marked ~, with 95% "
                                     "prediction intervals; a kernel switch between the swept W is located by a few bisection probes; "
                                     "with --mode continuous, closed-loop levels from step, prefill and sampling probes; "
                                     "docs/fast-mode.md)");
    cmd->add_option("--verify", a->verify, "With --fast: also measure this W (continuous: this concurrency) fully and print "
                                           "predicted against measured");
    cmd->add_option("--mode", a->mode,
                    "lockstep (batched-bench semantics: W sequences start and end together, no sampling) or continuous "
                    "(continuous batching with real sampling, arrivals, latency percentiles)")->capture_default_str();
    cmd->add_option("-o,--output", a->output, "stdout format: md, csv, json, jsonl, sql")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write results to FILE (.md .csv .json .jsonl .sql), updated after each W");
    add_split_baseline_flag(cmd, a->split_baseline);
    add_engine_flags(cmd, a->engine);
    add_continuous_flags(cmd, a->continuous);
    add_store_flags(cmd, a->db);
    cmd->callback([a] { run(*a); });
}

}  // namespace im::cli
