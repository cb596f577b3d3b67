#include "pipeline/evaluate.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "dataset/synth.h"
#include "dataset/vocab.h"
#include "hardware/probe.h"
#include "hardware/specs.h"
#include "hardware/system.h"
#include "model/info.h"
#include "model/quant.h"
#include "model/ref.h"
#include "engine/backend.h"
#include "pipeline/serving.h"
#include "tune/inprocess.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>

namespace im::pipeline {

profile profile_from_name(const std::string & name) {
    if (name == "quick") return profile::quick;
    if (name == "standard") return profile::standard;
    if (name == "comprehensive") return profile::comprehensive;
    throw_usage("--profile: '{}' is not one of quick, standard, comprehensive", name);
}

const char * profile_name(profile p) {
    switch (p) {
        case profile::quick:         return "quick";
        case profile::standard:      return "standard";
        case profile::comprehensive: return "comprehensive";
    }
    return "standard";
}

report_paths paths_in(const std::filesystem::path & out_dir) {
    return {out_dir / "report.md", out_dir / "report.json", out_dir / "report.html"};
}

void write_reports(const report::evaluation & e, const std::filesystem::path & out_dir) {
    const auto p = paths_in(out_dir);
    auto lock = interrupt::hold_outputs();
    fs::write_output(p.json, report::to_json(e).dump(2) + "\n", "--out");
    fs::write_output(p.md, report::to_markdown(e), "--out");
    fs::write_output(p.html, report::to_html(e), "--out");
    // Should a second Ctrl-C end the process before the next save, the reports say it was interrupted.
    report::evaluation marked = e;
    marked.interrupted = true;
    interrupt::set_last_words("evaluate-reports", [p, json = report::to_json(marked).dump(2) + "\n",
                                                   md = report::to_markdown(marked), html = report::to_html(marked)] {
        fs::write_output(p.json, json, "--out");
        fs::write_output(p.md, md, "--out");
        fs::write_output(p.html, html, "--out");
    });
}

nlohmann::ordered_json model_identity(const std::filesystem::path & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_runtime("cannot read the model {} (-m)", path.string());
    std::vector<char> head(1 << 20);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64 (Fowler, Noll, Vo)
    for (char ch : head) {
        h ^= static_cast<unsigned char>(ch);
        h *= 0x100000001b3ull;
    }
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) throw_runtime("cannot read the size of the model {} (-m): {}", path.string(), ec.message());
    return {{"file_bytes", bytes}, {"header_fnv1a64", fmt::format("{:016x}", h)}};
}

nlohmann::ordered_json run_configuration(const evaluate_options & opts, const nlohmann::ordered_json & model_id,
                                         int n_prompt, int n_predict, const std::vector<int> & workers,
                                         int max_workers, int bench_repetitions) {
    const auto & p = opts.params;
    nlohmann::ordered_json c = {{"model", model_id},
            {"engine",
             {{"n_threads", p.n_threads > 0 ? p.n_threads : engine::llama::default_threads()},
              {"n_gpu_layers", p.n_gpu_layers},
              {"split_mode", engine::llama::split_mode_name(p.split_mode)},
              {"main_gpu", p.main_gpu},
              {"flash_attn", engine::llama::flash_attn_name(p.fa)},
              {"n_batch", p.n_batch},
              {"n_ubatch", p.n_ubatch},
              {"type_k", ggml_type_name(p.type_k)},
              {"type_v", ggml_type_name(p.type_v)},
              {"use_mmap", p.use_mmap},
              {"poll", p.poll}}},
            {"n_prompt", n_prompt},
            {"n_predict", n_predict},
            {"workers", workers},
            {"max_workers", max_workers},
            {"kv_unified", opts.kv_unified},
            {"ctx_min", opts.ctx_min},
            {"bench_repetitions", bench_repetitions}};
    // Only where set: a report written before -ts/--rpc existed still resumes with the defaults.
    if (!p.tensor_split.empty()) c["engine"]["tensor_split"] = engine::llama::tensor_split_name(p.tensor_split);
    if (!p.rpc.empty()) c["engine"]["rpc"] = engine::llama::rpc_name(p.rpc);
    if (opts.fast) c["fast"] = true;  // predicted rows never mix with measured ones on --resume
    return c;
}

std::vector<std::string> configuration_differences(const nlohmann::json & saved, const nlohmann::json & now) {
    std::vector<std::string> out;
    const auto walk = [&](const auto & self, const nlohmann::json & a, const nlohmann::json & b,
                          const std::string & prefix) -> void {
        if (a.is_object() && b.is_object()) {
            for (const auto & [k, v] : a.items()) {
                self(self, v, b.contains(k) ? b.at(k) : nlohmann::json(), prefix.empty() ? k : prefix + "." + k);
            }
            for (const auto & [k, v] : b.items()) {
                if (!a.contains(k)) self(self, nlohmann::json(), v, prefix.empty() ? k : prefix + "." + k);
            }
            return;
        }
        if (a != b) {
            out.push_back(fmt::format("{}: {} → {}", prefix, a.is_null() ? "(none)" : a.dump(),
                                      b.is_null() ? "(none)" : b.dump()));
        }
    };
    walk(walk, saved, now, "");
    return out;
}

namespace {

// Profile defaults (docs/metrics.md, "Profiles"): which dataset scenario sets n-predict, the sweep, repetitions.
// quick is sized for a first look on a 2-core CPU (about 4 minutes there): 128 tokens out, W up to 4.
struct profile_defaults {
    const char * scenario;
    int n_predict_cap;             // 0: none
    std::vector<int> workers;
    int max_workers;
    int bench_repetitions;
    int bench_max_warmup;          // warmup runs until two agree within 2%, at most this many
};

profile_defaults defaults_of(profile p) {
    switch (p) {
        case profile::quick:         return {"conservative", 128, {1, 2, 4}, 4, 3, 3};
        case profile::comprehensive: return {"comprehensive", 0, {1, 2, 4, 8}, 64, 5, 10};
        default:                     return {"recommended", 0, {1, 2, 4, 8}, 32, 5, 10};
    }
}

const dataset::recommendation * find_scenario(const dataset::analysis & a, const std::string & name) {
    for (const auto & r : a.recommendations) {
        if (r.scenario == name) return &r;
    }
    return nullptr;
}

}  // namespace

report::evaluation run_evaluate(const evaluate_options & given, const evaluate_callbacks & cb) {
    const int64_t t0 = clock::now_ns();
    evaluate_options opts = given;  // --tune replaces the engine settings every later stage uses
    const auto pd = defaults_of(opts.prof);
    const int tuned = opts.tune ? 1 : 0;  // the tune stage comes second
    const int n_stages = (opts.serving ? 6 : 5) + tuned;
    report::evaluation e;
    e.profile = profile_name(opts.prof);
    e.rec_opts.knee_min_marginal = opts.knee_min_marginal;
    e.price_per_hour = opts.price_per_hour;
    e.price_per_kwh = opts.price_per_kwh;
    e.rec_opts.slo_ttft_s = opts.slo_ttft_s;
    e.rec_opts.slo_tpot_s = opts.slo_tpot_s;
    for (const auto & out : {paths_in(opts.out_dir).json, paths_in(opts.out_dir).md, paths_in(opts.out_dir).html}) {
        fs::refuse_input_overwrite(out, "--out", {{opts.dataset, "--dataset"}, {opts.model_ref, "-m"}});
    }
    std::error_code ec;
    std::filesystem::create_directories(opts.out_dir, ec);
    if (ec) throw_runtime("cannot create the output folder {}: {} (--out)", opts.out_dir.string(), ec.message());

    nlohmann::json previous;
    if (opts.resume) {
        const auto p = paths_in(opts.out_dir).json;
        if (std::filesystem::exists(p)) {
            try {
                previous = nlohmann::json::parse(fs::read_file(p));
            } catch (const nlohmann::json::exception & ex) {
                throw_runtime("--resume: {} is not a report.json infermeter can read ({})", p.string(), ex.what());
            }
        } else {
            log::warn("--resume: no {} yet; starting from the beginning", p.string());
        }
    }
    // Power, memory and CPU over the whole run, each sample labelled with the stage (and W or concurrency).
    telemetry::sampler_options tso;
    tso.interval_ns = opts.telemetry_interval_ns;
    telemetry::sampler sampler(tso);
    sampler.start();
    const auto stage = [&](int i, const std::string & name, const std::string & detail, double eta_s = -1) {
        sampler.set_stage(name);
        if (cb.stage) cb.stage({i, n_stages, name, detail, eta_s});
    };
    const auto save = [&] {
        e.seconds = static_cast<double>(clock::now_ns() - t0) / 1e9;
        e.telemetry = sampler.snapshot();
        write_reports(e, opts.out_dir);
    };

    // 1. model and dataset
    const auto model_path = model::resolve(opts.model_ref);
    const auto info = model::read_info(model_path);
    {  // --ctx-min is checked before any stage runs, not after the bench (DESIGN §5)
        workload::lockstep_config early;
        early.params = opts.params;
        early.workers = opts.workers.value_or(pd.workers);
        early.ctx_min = opts.ctx_min;
        early.kv_unified = opts.kv_unified;
        early.n_prompt = early.n_predict = 1;
        workload::validate_ctx_min(early, info, /*overflow_flag=*/false);
    }
    stage(1, "analyze", "dataset token lengths with the model's vocabulary");
    dataset::vocabulary vocab(model_path);
    std::filesystem::path dataset_path = opts.dataset;
    if (dataset_path.empty()) {
        auto so = dataset::reference_synth_options();
        so.out = opts.out_dir / "dataset.jsonl";
        if (!opts.resume || !std::filesystem::exists(so.out)) dataset::synthesize(so, vocab.get());
        dataset_path = so.out;
        e.dataset_synthetic = true;
        e.dataset_note = fmt::format("{} Alpaca records written by `infermeter dataset synth` with the reference's "
                                     "coverages (prompts `{}`, outputs `{}`: 1024 / 2048 / 4096 tokens cover at least "
                                     "75% / 90% / 99% of them)",
                                     so.records, so.prompt_tokens.spec, so.output_tokens.spec);
    }
    e.dataset_path = dataset_path.string();
    dataset::analyze_options ao;
    ao.path = dataset_path;
    ao.fmt = dataset::parse_format(opts.dataset_format);
    ao.prompt_field = opts.prompt_field;
    ao.output_field = opts.output_field;
    ao.tokenizer_name = model_path.filename().string();
    ao.round = opts.round;
    e.analysis = dataset::analyze(ao, vocab.get());
    e.stages_done.push_back("analyze");

    const auto * rec = find_scenario(*e.analysis, pd.scenario);
    if (!rec) throw_runtime("the dataset analysis gave no '{}' recommendation", pd.scenario);
    e.scenario = pd.scenario;
    e.n_prompt = opts.n_prompt.value_or(rec->n_prompt);
    e.n_predict = opts.n_predict.value_or(pd.n_predict_cap > 0 ? std::min(rec->n_predict, pd.n_predict_cap) : rec->n_predict);
    if (pd.n_predict_cap > 0 && !opts.n_predict && rec->n_predict > pd.n_predict_cap) {
        e.scenario += fmt::format(", n-predict capped at {} by the quick profile", pd.n_predict_cap);
    }
    if (opts.n_prompt || opts.n_predict) e.scenario += ", overridden by -p/-n";

    // --tune: the settings search at the sweep's largest W, before anything else is measured; its best
    // settings replace the given ones for every later stage (a resumed run reapplies the saved result).
    if (opts.tune) {
        const auto ws = opts.workers.value_or(pd.workers);
        tune::inprocess_config tc;
        tc.model_path = model_path;
        tc.base = opts.params;
        tc.kv_unified = opts.kv_unified;
        tc.workers = *std::max_element(ws.begin(), ws.end());
        tc.n_prompt = e.n_prompt;
        tc.n_predict = std::clamp(e.n_predict, 8, 128);
        tc.offloaded = opts.params.n_gpu_layers != 0 && !engine::gpu_info().empty();
        report::tune_section t{opts.model_ref, tc.workers, tc.n_prompt, tc.n_predict, opts.tune_budget_s,
                               tune::inprocess_axes(tc), {}, "", "lockstep", "", 0};
        if (previous.contains("tune") && previous["tune"].contains("best")) {
            stage(2, "tune", "reusing the settings the interrupted run found");
            t.result.baseline = previous["tune"]["baseline"].get<tune::candidate>();
            t.result.best = previous["tune"]["best"].get<tune::candidate>();
        } else {
            stage(2, "tune", fmt::format("settings search at W = {} within {}", tc.workers, fmtx::duration(opts.tune_budget_s)));
            tune::search_options so;
            so.budget_s = opts.tune_budget_s;
            try {
                t.result = tune::coordinate_descent(t.axes, tune::inprocess_evaluator(tc), so);
            } catch (const im::error & ex) {
                if (ex.kind() != error_kind::interrupted) throw;
                e.interrupted = true;  // nothing measured yet but the analysis: the report says so
                stage(n_stages, "report", opts.out_dir.string());
                save();
                return e;
            }
        }
        opts.params = tune::params_of(tc, t.result.best, &opts.kv_unified);
        t.applied_flags = tune::command_flags(t.axes, t.result.best, t.result.baseline, false);
        e.tune = std::move(t);
        e.stages_done.push_back("tune");
        save();
    }

    // Every W the sweep may reach is checked, llama.cpp's dry run included, before anything is measured.
    auto & c = e.lockstep_cfg;
    c.model_path = model_path;
    c.params = opts.params;
    c.workers = opts.workers.value_or(pd.workers);
    c.n_prompt = e.n_prompt;
    c.n_predict = e.n_predict;
    c.ctx_min = opts.ctx_min;
    c.kv_unified = opts.kv_unified;
    c.repetitions = 1;
    c.extend = true;
    c.max_workers = opts.max_workers.value_or(pd.max_workers);
    c.allow_ctx_overflow = true;
    workload::validate(c, info);
    workload::check_plan(workload::plan(c));
    if (opts.verify > 0) {
        const auto reach = workload::reachable_workers(c);
        if (std::find(reach.begin(), reach.end(), opts.verify) == reach.end()) {
            throw_usage("--verify {}: not a worker count this sweep can reach ({})", opts.verify, fmt::join(reach, ","));
        }
    }

    // --resume reuses rows only from a run of exactly this configuration.
    e.configuration = run_configuration(opts, model_identity(model_path), e.n_prompt, e.n_predict, c.workers,
                                        c.max_workers, pd.bench_repetitions);
    if (!previous.is_null()) {
        const auto json_path = paths_in(opts.out_dir).json.string();
        if (!previous.contains("configuration")) {
            throw_usage("--resume: {} holds no run configuration (written by an older infermeter), so its rows "
                        "cannot be matched to this run; rerun without --resume or with another --out",
                        json_path);
        }
        const auto diff = configuration_differences(previous["configuration"], e.configuration);
        if (!diff.empty()) {
            throw_usage("--resume: {} was measured with another configuration ({}); resuming would mix two "
                        "configurations in one report. Rerun with the same flags and model, or without --resume, "
                        "or with another --out",
                        json_path, fmt::format("{}", fmt::join(diff, "; ")));
        }
    }

    // 2. single request
    e.kv_bytes_per_token = model::kv_bytes_per_token(info, opts.params.type_k, opts.params.type_v);
    stage(2 + tuned, "bench", fmt::format("pp{} and tg{}, {} repetitions", e.n_prompt, e.n_predict, pd.bench_repetitions));
    sampler.set_level(1);  // one request at a time
    std::unique_ptr<engine::llama::model> loaded;
    {
        auto done = report::bench_from_json(previous);
        const bool have = std::any_of(done.begin(), done.end(), [&](auto & b) { return b.test.n_prompt == e.n_prompt && b.test.n_gen == 0; }) &&
                          std::any_of(done.begin(), done.end(), [&](auto & b) { return b.test.n_gen == e.n_predict && b.test.n_prompt == 0; });
        if (have) {
            for (auto & b : done) b.test.params = opts.params;
            e.bench = done;
            log::info("bench: reusing the results of the interrupted run");
        } else {
            const auto tests = workload::expand_tests({opts.params}, {e.n_prompt}, {e.n_predict}, {}, {0});
            workload::bench_callbacks bc;
            bc.progress = cb.bench_progress;
            bc.result = [&](const workload::bench_result & r, const engine::llama::model & m) {
                if (e.ctx.test_time.empty()) {
                    e.ctx = report::make_run_context(&m, opts.command_line);
                    e.split = workload::analyze_split(m, opts.params);
                }
                e.bench.push_back(r);
                save();
            };
            workload::bench_policy policy;  // bench's rules: warm until settled, a fixed count of repetitions
            policy.min_reps = policy.max_reps = pd.bench_repetitions;
            policy.max_warmup = pd.bench_max_warmup;
            if (!workload::run_bench(model_path, tests, policy, bc)) e.interrupted = true;
        }
    }
    if (e.ctx.test_time.empty()) {
        engine::llama::model m(model_path, opts.params, /*no_alloc=*/true);
        e.ctx = report::make_run_context(&m, opts.command_line);
    }
    e.ctx.command_line = opts.command_line;
    e.config = {info.name, model::ftype_name(info.file_type), e.ctx.model_size, e.ctx.model_n_params,
                e.ctx.gpu_info.empty() ? e.ctx.cpu_info : e.ctx.gpu_info + "; " + e.ctx.cpu_info, e.ctx.backends,
                e.bench.empty() ? engine::llama::default_threads() : e.bench.front().n_threads, e.ctx.devices, opts.params};
    if (!e.interrupted) e.stages_done.push_back("bench");

    // 3. parallel sweep
    c.done = report::lockstep_rows_from_json(previous);
    if (!e.interrupted) {
        double eta = -1;
        if (const auto tg = std::find_if(e.bench.begin(), e.bench.end(), [](auto & b) { return b.test.n_gen > 0; });
            tg != e.bench.end()) {
            // Rough: generation throughput growing like sqrt(W), a guess until the sweep measures it.
            eta = 0;
            for (int w : c.workers) eta += w * static_cast<double>(e.n_predict) / (tg->ts.mean * std::sqrt(w));
        }
        if (opts.fast) {
            stage(3 + tuned, "parallel", fmt::format("lockstep sweep over {} workers, {}+{} tokens each, predicted from step probes "
                                             "(--fast){}", fmt::join(c.workers, ","), c.n_prompt, c.n_predict,
                                             opts.verify > 0 ? fmt::format(", then W={} measured", opts.verify) : ""));
        } else {
            stage(3 + tuned, "parallel", fmt::format("lockstep sweep over {} workers, {}+{} tokens each, doubling while it gains",
                                             fmt::join(c.workers, ","), c.n_prompt, c.n_predict), eta);
        }
        workload::lockstep_callbacks lc;
        lc.progress = cb.lockstep_progress;
        lc.warn = cb.warn;
        lc.sampler = &sampler;
        lc.row = [&](const workload::lockstep_row & row, const engine::llama::model &) {
            e.lockstep.rows.push_back(row);
            e.lockstep.base_workers = e.lockstep.base_workers ? e.lockstep.base_workers : row.workers;
            save();
        };
        workload::lockstep_result result;
        if (opts.fast) {
            workload::step_probe_callbacks pcb;
            pcb.progress = cb.probe_progress;
            e.fast = workload::run_fast(c, pcb);
            result = e.fast->sweep;
            if (opts.verify > 0 && !result.interrupted) {
                e.verified = workload::verify_one(c, *e.fast, opts.verify, lc);
                result.interrupted = e.fast->sweep.interrupted;
            }
        } else {
            result = workload::run_lockstep(c, lc);
        }
        e.lockstep = result;
        if (result.interrupted) e.interrupted = true;
        else e.stages_done.push_back("parallel");
    }
    e.rec = report::recommend(e.lockstep, e.rec_opts);
    if (e.split) {  // bench's pp and tg steps, then the measured lockstep rows (predicted --fast rows are not steps)
        std::vector<workload::lockstep_row> rows;
        if (!e.fast) {
            for (const auto * r : report::measured_rows(e.lockstep)) rows.push_back(*r);
        }
        if (e.verified) rows.push_back(*e.verified);
        e.split->steps = workload::attribute_bench(*e.split, e.bench);
        const auto lockstep = workload::attribute_lockstep(*e.split, rows, opts.params.n_ubatch);
        e.split->steps.insert(e.split->steps.end(), lockstep.begin(), lockstep.end());
    }

    // 4. serving under load: continuous batching with real sampling (DESIGN §2.3, §3)
    if (!e.interrupted && opts.serving) {
        serving_options so;
        so.model_path = model_path;
        so.params = opts.params;
        so.dataset = dataset_path;
        for (const auto * r : report::measured_rows(e.lockstep)) {
            so.workers.push_back(r->workers);
            so.lockstep_gen_tps.push_back(r->gen_tps.mean);
        }
        so.n_prompt = e.n_prompt;
        so.ctx_min = opts.ctx_min;
        so.kv_unified = opts.kv_unified;
        so.objectives = opts.slo;
        // Sized per profile (docs/metrics.md, "Profiles"): quick keeps the stage near a minute on a 2-core CPU.
        switch (opts.prof) {
            case profile::quick:
                so.output_cap = 32, so.requests_per_user = 1, so.min_requests = 2, so.capacity = false;
                so.every_level = false, so.backend_sampling = false;
                so.n_predict = std::min(e.n_predict, 32);
                break;
            case profile::comprehensive:
                so.output_cap = e.n_predict, so.requests_per_user = 16, so.min_requests = 64, so.capacity = true;
                so.probe_requests_per_user = 4;
                so.capacity_max_probes = 12;
                so.n_predict = std::min(e.n_predict, 1024);
                break;
            default:
                so.output_cap = std::min(e.n_predict, 512), so.requests_per_user = 12, so.min_requests = 48, so.capacity = true;
                so.probe_requests_per_user = 2;
                so.capacity_max_probes = 6;
                so.n_predict = std::min(e.n_predict, 512);
                break;
        }
        stage(n_stages - 2, "serving", fmt::format("continuous batching with real sampling at {} concurrent requests{}",
                                                    fmt::join(serving_levels(so), ","), so.capacity ? ", then the capacity search" : ""));
        serving_callbacks sc;
        int level = -1;
        sc.progress = [&](const workload::request_workload & w, const workload::request_progress & p) {
            const int now = w.arrivals == workload::arrival_kind::closed ? w.concurrency : w.max_concurrency;
            if (now != level) sampler.set_level(level = now);
            if (cb.request_progress) cb.request_progress(w, p);
        };
        sc.warn = cb.warn;
        sc.saved = [&](const report::serving_result & s) {
            e.serving = s;
            save();
        };
        e.serving = run_serving(so, sc);
        if (interrupt::requested()) e.interrupted = true;
        else e.stages_done.push_back("serving");
    }

    // 5. roofline. Over --rpc the model's layers run on the servers' devices: probing them means sending the
    // probes' GiB-sized tensors over the network (minutes on loopback, and a ggml-rpc-server was seen to stop
    // accepting connections after it), and the local device's ceilings would describe hardware the model does
    // not run on. --device-spec gives the servers' figures.
    if (!e.interrupted && !opts.params.rpc.empty() && opts.device_spec.empty()) {
        e.roofline_note = "the model runs on RPC servers (--rpc), whose ceilings are not probed over the network; pass "
                          "--device-spec with their hardware (a datasheet name or bw=...,flops=...) for this section";
        log::warn("roofline: {}", e.roofline_note);
    } else if (!e.interrupted) {
        stage(n_stages - 1, "roofline", opts.device_spec.empty() ? "measuring memory bandwidth and matmul rate (cached per machine)"
                                                      : "against --device-spec " + opts.device_spec);
        hardware::ceilings ceil;
        if (!opts.device_spec.empty()) {
            const auto spec = hardware::parse_device_spec(opts.device_spec);
            if (!spec) throw_usage("--device-spec: '{}' is neither a known device nor bw=...,flops=...", opts.device_spec);
            ceil = *spec;
        } else {
            ceil = hardware::probe(opts.params.n_gpu_layers == 0 ? "CPU" : "", opts.params.n_threads, opts.reprobe,
                                   hardware::weight_type_of_ftype(info.file_type) == GGML_TYPE_COUNT
                                       ? GGML_TYPE_Q4_K : hardware::weight_type_of_ftype(info.file_type));
        }
        std::vector<hardware::observation> obs;
        int max_w = 1;
        for (const auto & r : e.lockstep.rows) {
            if (!r.skipped.empty()) continue;
            max_w = std::max(max_w, r.workers);
            obs.push_back({"decode", r.workers, r.gen_tps.mean, e.n_prompt + e.n_predict / 2.0, e.n_prompt,
                           opts.params.n_ubatch});
            obs.push_back({"prefill", r.workers, r.prompt_tps.mean, 0.0, e.n_prompt, opts.params.n_ubatch});
        }
        if (opts.device_spec.empty()) {
            std::vector<int> n_cols;
            for (const auto & o : obs) {
                n_cols.push_back(o.phase == "decode" ? o.workers : hardware::prefill_ubatch_tokens(o));
            }
            hardware::probe_model_matmuls(ceil, opts.params.n_gpu_layers == 0 ? "CPU" : "", opts.params.n_threads,
                                          opts.reprobe, info.layer_matmuls, n_cols);
        }
        std::vector<int> curve;
        for (int w = 1; w <= std::max(64, max_w); w *= 2) curve.push_back(w);
        e.roofline = hardware::make_report(hardware::describe_system(), ceil,
                                           hardware::cost_of(info, opts.params.type_k, opts.params.type_v), obs, curve,
                                           e.n_prompt + e.n_predict / 2.0);
        e.stages_done.push_back("roofline");
    }

    // 6. reports
    stage(n_stages, "report", opts.out_dir.string());
    sampler.stop();
    save();
    return e;
}

}  // namespace im::pipeline
