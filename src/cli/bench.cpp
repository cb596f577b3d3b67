#include "cli/commands.h"

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
#include "store/store.h"
#include "workload/bench.h"
#include "workload/split.h"

#include <fmt/format.h>

namespace im::cli {

namespace {

constexpr int max_repetitions = 1000;
constexpr int default_max_reps = 100;  // with --min-time and no --max-reps
constexpr double max_min_time_s = 86400;
constexpr int max_tokens = 1 << 24;  // per test; the trained context is checked too

struct bench_args {
    std::string model;
    std::string n_prompt = "512";
    std::string n_gen = "128";
    std::vector<std::string> pg;
    std::string n_depth = "0";
    int repetitions = 5;
    double min_time_s = 0;
    int max_reps = 0;
    bool max_reps_given = false;
    bool no_warmup = false;
    bool allow_ctx_overflow = false;
    std::string output = "md";
    std::string export_path;
    std::string split_baseline;
    store::store_flags db;
    engine_flags engine;
};

void warn_noisy(const workload::bench_result & r) {
    if (r.ts.n_outliers > 0) {
        log::warn("{}: {} of {} samples are outliers (median/MAD); rerun with more repetitions (-r {}) or keep the "
                  "machine idle", r.test.name(), r.ts.n_outliers, r.ts.n, std::max(10, static_cast<int>(r.ts.n) * 2));
    } else if (r.ts.stddev && r.ts.mean > 0 && *r.ts.stddev / r.ts.mean > 0.05) {
        log::warn("{}: stddev is {} of the mean; rerun with more repetitions (-r {})", r.test.name(),
                  fmtx::percent(*r.ts.stddev / r.ts.mean), std::max(10, static_cast<int>(r.ts.n) * 2));
    }
}

// -r, --min-time, --max-reps → the stopping rule (docs/metrics.md): r repetitions when neither of the
// others is given; otherwise at least r, until --min-time seconds and the precision target, at most
// --max-reps (default 100).
workload::bench_policy policy_of(const bench_args & a) {
    check_range(a.repetitions, "-r", 1, max_repetitions);
    if (!(a.min_time_s >= 0 && a.min_time_s <= max_min_time_s)) {
        throw_usage("--min-time: {} is not a number of seconds in 0..{}", a.min_time_s, max_min_time_s);
    }
    workload::bench_policy p;
    p.warmup = !a.no_warmup;
    p.min_reps = a.repetitions;
    p.min_time_s = a.min_time_s;
    p.max_reps = a.repetitions;
    if (a.max_reps_given) {
        check_range(a.max_reps, "--max-reps", 1, max_repetitions);
        if (a.max_reps < a.repetitions) {
            throw_usage("--max-reps {} is below -r {}: -r is the minimum number of repetitions", a.max_reps, a.repetitions);
        }
        p.max_reps = a.max_reps;
    } else if (a.min_time_s > 0) {
        p.max_reps = std::max(a.repetitions, default_max_reps);
    }
    return p;
}

void warn_unsettled(const workload::bench_result & r, const workload::bench_policy & p) {
    if (p.warmup && !r.warmup_converged && !r.partial) {
        log::warn("{}: {} warmup runs never agreed within {}: the machine did not settle; keep it idle", r.test.name(),
                  r.n_warmup, fmtx::percent(p.warmup_agreement));
    }
    if (p.adaptive() && !r.precision_met && !r.partial) {
        log::warn("{}: the 95% interval is ±{} of the median after {} repetitions (--max-reps {}), above the ±{} target",
                  r.test.name(), fmtx::percent(r.ci95_rel, 2), r.samples_ts.size(), p.max_reps, fmtx::percent(p.precision));
    }
}

void run(const bench_args & a) {
    init_engine();
    const auto policy = policy_of(a);
    const auto out = output_target::from_flags(a.output, a.export_path);
    const auto np = parse_int_list(a.n_prompt, "-p", 0, max_tokens);
    const auto ng = parse_int_list(a.n_gen, "-n", 0, max_tokens);
    const auto nd = parse_int_list(a.n_depth, "-d", 0, max_tokens);
    std::vector<std::pair<int, int>> pg;
    for (const auto & s : a.pg) {
        const auto v = parse_int_list(s, "-pg", 1, max_tokens);
        if (v.size() != 2) throw_usage("-pg: '{}' must be two numbers, prompt,generation (e.g. -pg 512,128)", s);
        pg.emplace_back(v[0], v[1]);
    }
    const auto configs = expand(a.engine);
    if (configs.size() * nd.size() * (np.size() + ng.size() + pg.size()) > 10000) {
        throw_usage("-p, -n, -pg, -d and the engine flags combine to more than 10,000 tests; sweep fewer values at once");
    }
    const auto tests = workload::expand_tests(configs, np, ng, pg, nd);
    if (tests.empty()) throw_usage("-p and -n are all 0 and no -pg given: nothing to measure");
    const auto model_path = model::resolve(a.model);
    out.refuse_inputs({{model_path, "-m"}, {a.db.db_path, "--db"}});
    const auto info = model::read_info(model_path);
    for (const auto & t : tests) {
        const int64_t cells = static_cast<int64_t>(t.n_prompt) + t.n_gen + t.n_depth;
        if (info.n_ctx_train > 0 && cells > info.n_ctx_train) {
            if (!a.allow_ctx_overflow) {
                throw_usage("{}: -p/-n/-d need {} cells, more than the model's trained context of {}; pass "
                            "--allow-ctx-overflow to measure it anyway", t.name(), cells, info.n_ctx_train);
            }
            log::warn("{}: {} cells exceed the trained context of {}: quality is meaningless, speed is still measured",
                      t.name(), cells, info.n_ctx_train);
            break;
        }
    }

    const auto baseline = workload::read_split_baseline(a.split_baseline);
    std::vector<workload::bench_result> results;
    std::optional<workload::split_analysis> split;  // when layers sit off the host (--rpc, GPUs)
    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);  // the model's, from the first result
    report::config_summary cfg;
    const auto markdown = [&](bool interrupted) {
        return "## Single Request Performance\n\n" + report::config_markdown(cfg) + "\n" + report::bench_markdown(results) +
               report::bench_repetitions_note(results) + (split ? "\n" + report::split_markdown(*split) : "") +
               (interrupted ? report::interrupted_note() : "");
    };
    results_writer writer(out, a.db, "bench", [&](bool interrupted) { return report::bench_table(results, ctx, interrupted); },
                          markdown);
    progress_line progress;
    workload::bench_callbacks cb;
    cb.progress = [&](size_t i, size_t n, const workload::bench_test & t, int rep) {
        progress.update(fmt::format("bench {}/{}: {} {}", i + 1, n, t.name(),
                                    rep < 0 ? fmt::format("warmup {}", -rep)
                                    : policy.adaptive() ? fmt::format("rep {} ({}..{})", rep + 1, policy.min_reps, policy.max_reps)
                                                        : fmt::format("rep {}/{}", rep + 1, policy.min_reps)));
    };
    cb.result = [&](const workload::bench_result & r, const engine::llama::model & m) {
        if (results.empty()) {
            ctx = report::make_run_context(&m, globals().command_line);
            cfg = {m.info().name, model::ftype_name(m.info().file_type), m.size_bytes(), m.n_params(),
                   ctx.gpu_info.empty() ? ctx.cpu_info : ctx.gpu_info + "; " + ctx.cpu_info, ctx.backends,
                   r.n_threads, ctx.devices, r.test.params};
            note_devices(m);
            split = workload::analyze_split(m, r.test.params);
            if (split) split->baseline_source = a.split_baseline;
        }
        results.push_back(r);
        if (split) {
            // a sweep of model-level settings (-ngl, -sm, -ts) reloads the model elsewhere: only the first placement's rows
            std::vector<workload::bench_result> same;
            for (const auto & x : results) {
                if (engine::llama::model::same_load(x.test.params, results.front().test.params)) same.push_back(x);
            }
            split->steps = workload::attribute_bench(*split, same, baseline);
        }
        progress.done(fmt::format("{}: {} t/s{}", r.test.name(), fmtx::mean_pm(r.ts.mean, r.ts.stddev),
                                  r.partial ? fmt::format(" (partial: {} of {} repetitions)", r.samples_ns.size(), a.repetitions)
                                            : std::string()));
        warn_noisy(r);
        warn_unsettled(r, policy);
        writer.update(ctx);
    };
    writer.update(ctx);  // from the start: an export and the last words exist whenever the run ends
    const bool complete = workload::run_bench(model_path, tests, policy, cb);
    progress.clear();
    writer.finish(ctx, !complete);
    if (split && out.stdout_format != report::format::md) fmt::print(stderr, "\n{}", report::split_markdown(*split));
    if (!complete) throw error(error_kind::interrupted, "interrupted: the results above are partial");
}

}  // namespace

void add_bench(CLI::App & root) {
    auto a = std::make_shared<bench_args>();
    auto * cmd = root.add_subcommand("bench", "Single-request prompt processing (pp) and token generation (tg), llama-bench semantics");
    cmd->add_option("-m,--model", a->model, "A .gguf file or synth:PRESET[-QUANT]")->required();
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt lengths (list/range, 0 to skip; -p + -n + -d within the trained context)")->capture_default_str();
    cmd->add_option("-n,--n-gen", a->n_gen, "Generation lengths (list/range, 0 to skip)")->capture_default_str();
    cmd->add_option("--pg", a->pg, "-pg: prompt + generation tests, -pg 512,128 (repeatable)");
    cmd->add_option("-d,--n-depth", a->n_depth, "KV depth prefilled (untimed) before each test")->capture_default_str();
    cmd->add_option("-r,--repetitions", a->repetitions, fmt::format("Repetitions per test (1..{})", max_repetitions))
        ->capture_default_str();
    cmd->add_option("--min-time", a->min_time_s,
                    "Repeat until at least S seconds of timed samples and a 95% interval within ±1% of the median "
                    "(at least -r, at most --max-reps repetitions)");
    auto * max_reps = cmd->add_option("--max-reps", a->max_reps,
                    fmt::format("Repeat until the 95% interval is within ±1% of the median, at most N repetitions "
                                "(>= -r; default {} with --min-time)", default_max_reps));
    cmd->add_flag("--no-warmup", a->no_warmup, "Skip the warmup runs (by default: until two in a row agree within 2%, at most 10)");
    cmd->add_flag("--allow-ctx-overflow", a->allow_ctx_overflow, "Allow -p + -n + -d beyond the model's trained context");
    cmd->add_option("-o,--output", a->output, "stdout format: md, csv, json, jsonl, sql")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write results to FILE (.md .csv .json .jsonl .sql), updated after each test");
    add_split_baseline_flag(cmd, a->split_baseline);
    add_engine_flags(cmd, a->engine);
    add_store_flags(cmd, a->db);
    cmd->callback([a, max_reps] {
        a->max_reps_given = max_reps->count() > 0;
        run(*a);
    });
}

}  // namespace im::cli
