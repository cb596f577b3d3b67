#include "cli/continuous.h"

#include "cli/commands.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "dataset/vocab.h"
#include "model/info.h"
#include "model/ref.h"
#include "report/measurements.h"
#include "report/requests.h"
#include "workload/continuous.h"
#include "workload/continuous_fast.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace im::cli {

void add_continuous_flags(CLI::App * cmd, continuous_flags & f) {
    cmd->add_option("--slots", f.slots, "Continuous: sequence slots (default: the concurrency; open loop: --max-concurrency or 16)");
    cmd->add_option("--step-tokens", f.step_tokens, "Continuous: tokens per step, prompt chunks + decodes (default: -b)");
    cmd->add_option("--temp", f.temp, "Continuous: sampling temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", f.top_k, "Continuous: top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", f.top_p, "Continuous: top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", f.min_p, "Continuous: min-p (0: off)")->capture_default_str();
    cmd->add_flag("--honour-eos", f.honour_eos, "Continuous: stop a request at an end-of-generation token (default: ignore EOS)");
    cmd->add_flag("--no-sample", f.no_sample, "Continuous: choose tokens without reading logits (as lockstep; for parity)");
    cmd->add_flag("--backend-sampling", f.backend_sampling, "Continuous: sample inside the graph (llama.cpp backend sampling)");
    add_request_flags(cmd, f.requests);
}

namespace {

// Progress on one line; the runner's notes as warnings that clear it first.
workload::continuous_callbacks callbacks_for(progress_line & progress) {
    workload::continuous_callbacks cb;
    cb.progress = [&progress](const workload::request_workload & w, const workload::request_progress & p) {
        progress.update(request_progress_text(w, p));
    };
    cb.info = [&progress](const std::string & msg) {
        progress.clear();
        log::warn("{}", msg);
    };
    return cb;
}

engine::llama::sampling_params sampling_of(const continuous_flags & f) {
    if (f.no_sample && f.backend_sampling) throw_usage("--no-sample and --backend-sampling exclude each other");
    if (f.temp < 0 || f.temp > 100) throw_usage("--temp must be in 0..100 (got {})", f.temp);
    if (f.top_k < 0) throw_usage("--top-k must be >= 0 (got {})", f.top_k);
    if (!(f.top_p > 0 && f.top_p <= 1)) throw_usage("--top-p must be in (0, 1] (got {})", f.top_p);
    if (!(f.min_p >= 0 && f.min_p < 1)) throw_usage("--min-p must be in [0, 1) (got {})", f.min_p);
    engine::llama::sampling_params s;
    s.mode = f.no_sample ? engine::llama::sampling_mode::none
             : f.backend_sampling ? engine::llama::sampling_mode::backend
                                  : engine::llama::sampling_mode::cpu;
    s.temp = f.temp;
    s.top_k = f.top_k;
    s.top_p = f.top_p;
    s.min_p = f.min_p;
    s.seed = static_cast<uint32_t>(f.requests.seed);
    s.honour_eos = f.honour_eos;
    return s;
}

// --fast: every closed-loop level predicted from probes; --verify C also measures C and compares.
void run_fast_levels(const continuous_command & c, const workload::continuous_sweep & s,
                     const std::vector<workload::request_workload> & levels, const output_target & out) {
    const auto & f = c.flags;
    if (f.requests.find_capacity) throw_usage("--fast predicts the given --concurrency levels: it does not combine with --find-capacity");
    if (const auto why = workload::continuous_fast_refusal(s, levels); !why.empty()) throw_usage("{}", why);
    const auto verified_level = std::find_if(levels.begin(), levels.end(),
                                             [&](const auto & w) { return w.concurrency == c.verify; });
    if (c.verify > 0 && verified_level == levels.end()) {
        throw_usage("--verify {}: not one of the --concurrency levels", c.verify);
    }
    workload::continuous_fast_result fr;
    std::optional<workload::request_run> measured;
    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);
    const auto runs = [&] {
        auto r = fr.runs;
        if (measured) r.push_back(*measured);
        return r;
    };
    const auto objectives = base_workload(f.requests).objectives;
    const auto markdown = [&](bool interrupted) {
        std::string md = fmt::format("## Serving Under Load (in-process continuous batching, predicted)\n\n{}",
                                     report::requests_markdown(runs(), objectives));
        if (!fr.probes.steps.empty()) md += "\n" + workload::continuous_fast_markdown(fr);
        if (const auto * p = measured ? workload::predicted_run(fr, measured->workload.concurrency) : nullptr) {
            md += workload::continuous_verify_markdown(*p, *measured);
        }
        if (interrupted) md += report::interrupted_note();
        return md;
    };
    results_writer writer(out, c.db, "continuous",
                          [&](bool interrupted) { return report::requests_table("continuous", runs(), ctx, &s.params, interrupted); },
                          markdown);
    writer.update(ctx);
    progress_line progress;
    workload::step_probe_callbacks pcb;
    pcb.progress = [&](const std::string & line) { progress.done("probe " + line); };
    fr = workload::run_continuous_fast(s, levels, pcb);
    progress.clear();
    {
        engine::llama::model m(s.model_path, s.params, /*no_alloc=*/true);
        ctx = report::make_run_context(&m, globals().command_line);
    }
    writer.update(ctx);
    bool interrupted = fr.interrupted;
    if (c.verify > 0 && !interrupted) {
        workload::continuous_runner runner(s);
        const auto cb = callbacks_for(progress);
        auto r = runner.run(*verified_level, cb);
        progress.clear();
        interrupted = r.interrupted;
        if (!interrupted) {
            measured = std::move(r);
            if (const auto * p = workload::predicted_run(fr, c.verify)) {
                log::info("--verify C={}: output predicted {} t/s, measured {} t/s ({:+.1f}%)", c.verify,
                          fmtx::thousands(p->metrics.output_tps), fmtx::thousands(measured->metrics.output_tps),
                          workload::continuous_error_pct(*p, *measured));
            }
        }
    }
    writer.finish(ctx, interrupted);
    if (interrupted) throw error(error_kind::interrupted, "interrupted: the results above are partial");
}

}  // namespace

void run_continuous_command(const continuous_command & c) {
    init_engine();
    const auto out = output_target::from_flags(c.output, c.export_path);
    const auto & f = c.flags;
    if (f.slots < 0 || f.slots > 4096) throw_usage("--slots must be in 0..4096 (got {})", f.slots);
    if (f.step_tokens < 0) throw_usage("--step-tokens must be >= 0 (got {})", f.step_tokens);
    const auto model_path = model::resolve(c.model);
    const auto info = model::read_info(model_path);

    workload::continuous_sweep s;
    s.model_path = model_path;
    s.params = single(c.engine, "parallel --mode continuous");
    s.n_slots = f.slots;
    s.ctx_min = c.ctx_min;
    s.kv_unified = c.kv_unified;
    s.step_tokens = f.step_tokens;
    s.sampling = sampling_of(f);
    s.warmup = !c.no_warmup;
    s.seed = f.requests.seed;
    if (c.ctx_min < 0) throw_usage("--ctx-min: {} is out of range (must be >= 0)", c.ctx_min);
    const auto base = base_workload(f.requests);
    const auto levels = f.requests.find_capacity ? std::vector<workload::request_workload>{} : load_levels(f.requests);

    // Dataset prompts are tokenized with the model's own vocabulary (a vocab-only load, alive for the call).
    s.lengths = lengths_of(f.requests, c.n_prompt, c.n_predict,
                           f.requests.dataset.empty() ? nullptr : dataset::vocabulary(model_path).get());
    if (info.n_ctx_train > 0 && s.lengths.shape == workload::length_source::kind::fixed &&
        c.n_prompt + c.n_predict > info.n_ctx_train) {
        throw_usage("-p {} + -n {} = {} tokens per request exceeds the model's trained context of {}", c.n_prompt, c.n_predict,
                    c.n_prompt + c.n_predict, info.n_ctx_train);
    }
    if (c.verify > 0 && !c.fast) throw_usage("--verify {} compares a --fast prediction with a measurement: add --fast", c.verify);
    if (c.fast) {
        run_fast_levels(c, s, levels, out);
        return;
    }

    progress_line progress;
    const auto cb = callbacks_for(progress);
    std::vector<workload::request_run> runs;
    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);  // the model's, from the first level
    bool have_model_ctx = false;
    std::string capacity_summary;
    const auto markdown = [&](bool interrupted) {
        std::string md = fmt::format("## Serving Under Load (in-process continuous batching)\n\n{}",
                                     report::requests_markdown(runs, base.objectives));
        if (!capacity_summary.empty()) md += "\n**Capacity:** " + capacity_summary + "\n";
        if (interrupted) md += report::interrupted_note();
        return md;
    };
    // --export and the store are written through results_writer: marked interrupted until the run
    // completes, and a second Ctrl-C still prints and records what was measured (issue 16).
    results_writer writer(out, c.db, "continuous",
                          [&](bool interrupted) {
                              return report::requests_table("continuous", runs, ctx, &s.params, interrupted);
                          },
                          markdown);
    const auto on_level = [&](const workload::request_run & r, const engine::llama::model & m) {
        if (!have_model_ctx) {
            ctx = report::make_run_context(&m, globals().command_line);
            have_model_ctx = true;
        }
        runs.push_back(r);
        const auto & mt = r.metrics;
        progress.done(fmt::format("{}: {} req/s, output {} t/s, TTFT p99 {} ms, TPOT p99 {} ms, sampling {} of step time{}",
                                  r.load_label(), fmtx::thousands(mt.request_tps, 2), fmtx::thousands(mt.output_tps, 1),
                                  fmtx::thousands(mt.ttft.p99, 1), fmtx::thousands(mt.tpot.p99, 2),
                                  fmtx::percent(mt.sample_share, 1), mt.slo_met ? ", SLO met" : ", SLO missed"));
        writer.update(ctx);
    };
    writer.update(ctx);  // from the start: an export and the last words exist whenever the run ends
    workload::continuous_runner runner(s);
    const auto outcome = run_levels(f.requests, levels, [&](const workload::request_workload & w) {
        auto r = runner.run(w, cb);
        on_level(r, runner.model());
        return r;
    });
    capacity_summary = outcome.capacity_summary;
    if (!capacity_summary.empty()) progress.done(capacity_summary);
    progress.clear();
    writer.finish(ctx, outcome.interrupted);
    if (!f.requests.trace.empty()) write_trace(f.requests.trace, runs);
    if (outcome.interrupted) throw error(error_kind::interrupted, "interrupted: the results above are partial");
}

}  // namespace im::cli
