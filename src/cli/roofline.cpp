#include "cli/commands.h"

#include "cli/output.h"
#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "hardware/probe.h"
#include "hardware/roofline.h"
#include "hardware/specs.h"
#include "hardware/system.h"
#include "model/info.h"
#include "model/ref.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

namespace im::cli {

namespace {

struct roofline_args {
    std::string model;
    std::vector<std::string> observed;
    std::string device_spec;
    std::string device;
    bool reprobe = false;
    int threads = 0;
    int n_ubatch = 512;
    std::string type_k = "f16";
    std::string type_v = "f16";
    double depth = -1;
    bool depth_given = false;
    int max_workers = 64;
    std::string output = "md";
    std::string export_path;
    bool list_specs = false;
};

std::string specs_table() {
    std::string out = "| Name | Kind | Memory bandwidth | Matmul | What the FLOPS are | Source |\n|---|---|---:|---:|---|---|\n";
    for (const auto & d : hardware::datasheets()) {
        out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", d.name, d.kind, hardware::format_bytes_per_s(d.mem_bw_bytes_per_s),
                           hardware::format_flops_per_s(d.flops_per_s), d.flops_note, d.source);
    }
    return out;
}

void run(const roofline_args & a) {
    if (a.list_specs) {
        fmt::print("{}", specs_table());
        return;
    }
    if (a.model.empty()) throw_usage("roofline: -m MODEL is required (a .gguf file or synth:PRESET)");
    if (a.output != "md" && a.output != "json") throw_usage("-o '{}': roofline writes md or json", a.output);
    if (a.max_workers < 1 || a.max_workers > 4096) throw_usage("--max-workers {}: give 1..4096", a.max_workers);
    check_threads(a.threads, "-t");
    if (a.depth_given && (!std::isfinite(a.depth) || a.depth < 0 || a.depth > 1e8)) {
        throw_usage("--depth {}: give a KV depth in tokens, 0..100,000,000", a.depth);
    }
    if (a.n_ubatch < 1 || a.n_ubatch > 1048576) throw_usage("-ub {}: give 1..1048576", a.n_ubatch);
    std::vector<hardware::observation> obs;
    for (const auto & o : a.observed) {
        for (auto & x : hardware::parse_observation(o, a.n_ubatch)) obs.push_back(x);
    }
    auto spec = hardware::parse_device_spec(a.device_spec);
    const ggml_type type_k = model::cache_type_from_name(a.type_k, "-ctk");
    const ggml_type type_v = model::cache_type_from_name(a.type_v, "-ctv");

    init_engine();
    const auto model_path = model::resolve(a.model);
    fs::refuse_input_overwrite(a.export_path, "--export", {{model_path, "-m"}});
    const auto m = model::read_info(model_path);
    const auto cost = hardware::cost_of(m, type_k, type_v);
    const auto sys = hardware::describe_system();
    hardware::ceilings ceil;
    if (spec) {
        ceil = *spec;
        log::info("ceilings from --device-spec ({}): bandwidth {}, matmul {}", ceil.source,
                  hardware::format_bytes_per_s(ceil.mem_bw_bytes_per_s),
                  hardware::format_flops_per_s(ceil.matmul_f16_flops_per_s));
    } else {
        ggml_type qt = hardware::weight_type_of_ftype(m.file_type);
        if (qt == GGML_TYPE_COUNT || !ggml_is_quantized(qt)) qt = GGML_TYPE_Q4_K;
        ceil = hardware::probe(a.device, a.threads, a.reprobe, qt);
        // The matmul rate at the model's own shapes for every N the observations need (decode: W
        // columns; prefill: one micro-batch), and for W = 1 and a full micro-batch.
        std::vector<int> n_cols = {1, a.n_ubatch};
        for (const auto & o : obs) {
            n_cols.push_back(o.phase == "decode" ? o.workers : hardware::prefill_ubatch_tokens(o));
        }
        hardware::probe_model_matmuls(ceil, a.device, a.threads, a.reprobe, m.layer_matmuls, n_cols);
    }

    double depth = a.depth;
    if (!a.depth_given) {
        depth = 0;
        for (const auto & o : obs) {
            if (o.phase == "decode") {
                depth = o.mean_depth_tokens;
                break;
            }
        }
    }
    std::vector<int> curve;
    for (int w = 1; w <= a.max_workers; w *= 2) curve.push_back(w);
    const auto report = hardware::make_report(sys, ceil, cost, obs, curve, depth);

    const std::string text =
        a.output == "json" ? hardware::to_json(report).dump(2) + "\n" : hardware::to_markdown(report);
    print_stdout(text);
    export_md_or_json(a.export_path, [&] { return hardware::to_markdown(report); },
                      [&] { return hardware::to_json(report).dump(2) + "\n"; });
}

}  // namespace

void add_roofline(CLI::App & root) {
    auto a = std::make_shared<roofline_args>();
    auto * cmd = root.add_subcommand(
        "roofline", "Hardware ceilings (measured), bytes and FLOPs per token, and the bound of each measured phase");
    cmd->add_option("-m,--model", a->model, "A .gguf file or synth:PRESET[-QUANT] (e.g. synth:qwen2-1.5b-q4_k_m)");
    cmd->add_option("--observed", a->observed,
                    "A measured throughput to classify (repeatable): \"workers=8,gen_tps=181.59,depth=2176\" "
                    "(decode; depth = mean KV depth, or give n_prompt= and n_gen=) or "
                    "\"workers=8,pp_tps=1319.9,n_prompt=128\" (prefill)")
        ->take_all()
        ->allow_extra_args(false);
    cmd->add_option("--device-spec", a->device_spec,
                    "Analyze against given ceilings instead of probing: \"bw=200GB/s,flops=5.2TF\" or a datasheet "
                    "name (--list-specs)");
    cmd->add_option("--device", a->device, "ggml device to probe, e.g. CPU, CUDA0 (default: first GPU, else CPU)");
    cmd->add_flag("--reprobe", a->reprobe, "Measure the ceilings again instead of using ~/.cache/infermeter/hardware.json");
    cmd->add_option("-t,--threads", a->threads,
                    fmt::format("CPU threads for the probes (default: all logical CPUs; at most {})", max_threads()));
    cmd->add_option("--ubatch-size", a->n_ubatch,
                    "-ub: physical batch the observed run used: prefill streams the weights once per micro-batch of this "
                    "many tokens (an --observed n_ubatch= overrides it)")
        ->capture_default_str();
    cmd->add_option("--cache-type-k", a->type_k, "K cache type (-ctk): f16, q8_0, q4_0, ...")->capture_default_str();
    cmd->add_option("--cache-type-v", a->type_v, "V cache type (-ctv): f16, q8_0, q4_0, ...")->capture_default_str();
    cmd->add_option("--depth", a->depth,
                    "KV depth per sequence for the ideal curve (default: the first decode --observed depth, else 0)");
    cmd->add_option("--max-workers", a->max_workers, "Ideal curve for W = 1, 2, 4, ... up to this")->capture_default_str();
    cmd->add_option("-o,--output", a->output, "stdout format: md or json")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write the report to FILE (.json for JSON, else markdown)");
    cmd->add_flag("--list-specs", a->list_specs, "Print the datasheet table usable with --device-spec NAME and exit");
    cmd->callback([a, cmd] {
        a->depth_given = cmd->count("--depth") > 0;
        run(*a);
    });
}

}  // namespace im::cli
