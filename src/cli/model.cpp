#include "cli/commands.h"

#include "cli/engine_flags.h"
#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "model/info.h"
#include "model/quant.h"
#include "model/ref.h"
#include "model/synth.h"
#include "report/split.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>

namespace im::cli {

namespace {

struct synth_args {
    std::string preset;
    std::string arch = "qwen2";
    int layers = 0, embd = 0, ff = 0, heads = 0, kv_heads = 0, ctx_train = 32768;
    std::string vocab;
    std::string quant = "q4_k_m";
    std::string out;
    bool force = false;
    uint64_t seed = 42;
    int threads = 0;
};

// -o onto an existing regular file that is not a GGUF model (a typo'd path, a dataset) needs --force.
void refuse_non_gguf(const std::string & out, bool force) {
    const auto t = fs::resolve_output(out);
    if (force || t.kind != fs::target_kind::regular) return;
    char magic[4] = {};
    std::FILE * f = std::fopen(t.path.c_str(), "rb");
    const bool gguf = f && std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
    if (f) std::fclose(f);
    if (!gguf) {
        throw_usage("-o {}: the file exists and is not a GGUF model; refusing to overwrite it (--force overwrites it)", out);
    }
}

void run_synth(const synth_args & a) {
    init_engine();
    model::synth_options opts;
    if (!a.preset.empty()) {
        auto s = model::find_preset(a.preset);
        if (!s) {
            throw_usage("--preset: unknown preset '{}' (presets: {})", a.preset, fmt::join(model::preset_names(), ", "));
        }
        opts.s = *s;
    } else {
        if (a.layers == 0 || a.embd == 0 || a.ff == 0 || a.heads == 0) {
            throw_usage("model synth: give --preset NAME, or a custom shape with --layers --embd --ff --heads "
                        "[--kv-heads] [--arch]");
        }
        opts.s.arch = a.arch;
        opts.s.name = fmt::format("custom-{}-{}L-{}", a.arch, a.layers, a.embd);
        opts.s.n_layer = a.layers;
        opts.s.n_embd = a.embd;
        opts.s.n_ff = a.ff;
        opts.s.n_head = a.heads;
        opts.s.n_head_kv = a.kv_heads > 0 ? a.kv_heads : a.heads;
        opts.s.n_ctx_train = a.ctx_train;
        const bool qwen = a.arch == "qwen2";
        opts.s.rope_freq_base = qwen ? 1000000.0f : 500000.0f;
        opts.s.rms_norm_eps = qwen ? 1e-6f : 1e-5f;
        opts.s.tied_embeddings = true;
        opts.s.vocab = qwen ? "ggml-vocab-qwen2.gguf" : "ggml-vocab-llama-bpe.gguf";
    }
    model::validate(opts.s);
    check_threads(a.threads, "-t");
    check_range(a.ctx_train, "--ctx-train", 1, 1 << 24);
    const auto ftype = model::ftype_from_name(a.quant);
    if (!ftype) {
        throw_usage("--quant: unknown file type '{}' (one of: {})", a.quant, fmt::join(model::ftype_names(), ", "));
    }
    opts.ftype = *ftype;
    opts.vocab_path = a.vocab;
    opts.seed = a.seed;
    opts.n_threads = a.threads;
    if (!a.out.empty()) {
        opts.out = a.out;
        opts.out_hint = "-o names the output file";
        refuse_non_gguf(a.out, a.force);
        fs::refuse_input_overwrite(a.out, "-o", {{a.vocab, "--vocab"}});
    } else {  // the cache a synth: reference reads, so `-m synth:PRESET-QUANT` finds it
        const std::string base = a.preset.empty() ? opts.s.name : a.preset;
        opts.out = model::synth_cache_path({base, *ftype, model::ftype_id(*ftype)});
        opts.out_hint = "the synth: model cache; set XDG_CACHE_HOME to a writable folder";
    }
    int last_pct = -1;
    const auto res = model::synthesize(opts, [&last_pct](const std::string & stage, double f) {
        const int pct = static_cast<int>(f * 10) * 10;
        if (pct != last_pct) {
            last_pct = pct;
            log::info("{}: {}%", stage, pct);
        }
    });
    if (res.path != "-") fmt::print("{}\n", res.path.string());  // "-": stdout holds the model itself
    if (fs::resolve_output(res.path).kind != fs::target_kind::regular) {  // a device or FIFO: nothing to read back
        log::info("wrote {} ({} of {} embedding rows zeroed), {}", res.path.string(), res.n_rows_zeroed, res.n_vocab,
                  fmtx::duration(res.seconds));
        return;
    }
    const auto m = model::read_info(res.path);
    log::info("wrote {}: {} MiB, {} params, {} of {} embedding rows zeroed (non-text tokens), {}{}",
              res.path.string(), fmtx::thousands(static_cast<double>(m.size_bytes) / fmtx::mib),
              fmtx::count_si(static_cast<double>(m.n_params)), res.n_rows_zeroed, res.n_vocab,
              fmtx::duration(res.seconds),
              res.temp_bytes ? fmt::format(", {} MiB temporary Q8_0 file", fmtx::thousands(
                                   static_cast<double>(res.temp_bytes) / fmtx::mib, 0)) : std::string());
}

nlohmann::ordered_json info_json(const model::info & m) {
    nlohmann::ordered_json j;
    j["path"] = m.path.string();
    j["name"] = m.name;
    j["architecture"] = m.arch;
    j["n_layer"] = m.n_layer;
    j["n_embd"] = m.n_embd;
    j["n_ff"] = m.n_ff;
    j["n_head"] = m.n_head;
    j["n_head_kv"] = m.n_head_kv.empty() ? 0 : m.n_head_kv.front();
    j["head_dim"] = m.head_dim_k;
    j["n_vocab"] = m.n_vocab;
    j["n_ctx_train"] = m.n_ctx_train;
    j["file_type"] = model::ftype_name(m.file_type);
    j["tied_embeddings"] = m.tied_embeddings;
    j["size_bytes"] = m.size_bytes;
    j["size_mib"] = static_cast<double>(m.size_bytes) / fmtx::mib;
    j["file_bytes"] = m.file_bytes;
    j["n_params"] = m.n_params;
    j["kv_bytes_per_token"] = {
        {"f16", model::kv_bytes_per_token(m, GGML_TYPE_F16, GGML_TYPE_F16)},
        {"q8_0", model::kv_bytes_per_token(m, GGML_TYPE_Q8_0, GGML_TYPE_Q8_0)},
        {"q4_0", model::kv_bytes_per_token(m, GGML_TYPE_Q4_0, GGML_TYPE_Q4_0)},
    };
    return j;
}

struct info_args {
    std::string ref;
    bool json = false;
    bool devices = false;
    int n_ctx = 4096;
    engine_flags engine;
};

// Loads the model with the engine flags and a context of n_ctx cells: where llama.cpp put each layer
// and what each device holds (weights, KV cache, compute buffers).
// With layers off the host, also the split analysis (what crosses per step, the probed links).
std::vector<engine::llama::device_use> load_devices(const std::filesystem::path & path, const info_args & a,
                                                    std::optional<workload::split_analysis> & split) {
    const auto p = single(a.engine, "model info --devices");
    check_range(a.n_ctx, "--ctx", 1, 1 << 24);
    engine::llama::model loaded(path, p);
    engine::llama::context ctx(loaded, p, {static_cast<uint32_t>(a.n_ctx), 1, false, false});
    split = workload::analyze_split(loaded, p);
    return engine::llama::devices_in_use(loaded, &ctx.alloc());
}

nlohmann::ordered_json devices_json(const std::vector<engine::llama::device_use> & devs) {
    auto out = nlohmann::ordered_json::array();
    for (const auto & d : devs) {
        out.push_back({{"name", d.name}, {"description", d.description}, {"type", d.type}, {"layers", d.layers},
                       {"input", d.input}, {"output", d.output}, {"model_bytes", d.model_bytes}, {"kv_bytes", d.kv_bytes},
                       {"compute_bytes", d.compute_bytes}, {"memory_free_bytes", d.memory_free},
                       {"memory_total_bytes", d.memory_total}});
    }
    return out;
}

void print_devices(const std::vector<engine::llama::device_use> & devs, int n_ctx) {
    const auto mib = [](uint64_t b) { return fmtx::thousands(static_cast<double>(b) / fmtx::mib, 1); };
    fmt::print("\ndevices (a context of {} cells)\n", n_ctx);
    fmt::print("{:<24} {:<22} {:<20} {:>12} {:>10} {:>12} {:>12}\n", "device", "description", "layers", "weights MiB",
               "KV MiB", "compute MiB", "free MiB");
    for (const auto & d : devs) {
        std::string holds = d.input ? "input" : "";
        if (!d.layers.empty()) holds += (holds.empty() ? "" : "+") + engine::llama::layer_ranges(d.layers);
        if (d.output) holds += (holds.empty() ? "" : "+") + std::string("output");
        fmt::print("{:<24} {:<22} {:<20} {:>12} {:>10} {:>12} {:>12}\n", d.name,
                   d.description.size() > 22 ? d.description.substr(0, 21) + "~" : d.description, holds.empty() ? "-" : holds,
                   mib(d.model_bytes), mib(d.kv_bytes), mib(d.compute_bytes), mib(d.memory_free));
    }
}

void run_info(const info_args & a) {
    init_engine();
    const auto path = model::resolve(a.ref);
    const auto m = model::read_info(path);
    // --rpc and -ts only mean something for a load: they imply --devices.
    const bool devices = a.devices || !a.engine.rpc.empty() || !a.engine.tensor_split.empty();
    std::optional<workload::split_analysis> split;
    const auto devs = devices ? load_devices(path, a, split) : std::vector<engine::llama::device_use>{};
    if (a.json) {
        auto j = info_json(m);
        if (devices) j["devices"] = devices_json(devs);
        if (split) j["split"] = report::split_json(*split);
        fmt::print("{}\n", j.dump(2));
        return;
    }
    const auto kv = [&](ggml_type t) { return fmtx::thousands(static_cast<int64_t>(model::kv_bytes_per_token(m, t, t))); };
    fmt::print("model          {}\n", m.name);
    fmt::print("file           {}\n", m.path.string());
    fmt::print("architecture   {}\n", m.arch);
    fmt::print("layers         {}\n", m.n_layer);
    fmt::print("hidden size    {}\n", m.n_embd);
    fmt::print("FFN size       {}\n", m.n_ff);
    fmt::print("heads          {} (KV heads {}, head dim {})\n", m.n_head, m.n_head_kv.front(), m.head_dim_k);
    fmt::print("vocab size     {}\n", fmtx::thousands(static_cast<int64_t>(m.n_vocab)));
    fmt::print("context length {}\n", fmtx::thousands(static_cast<int64_t>(m.n_ctx_train)));
    fmt::print("file type      {}\n", model::ftype_name(m.file_type));
    fmt::print("embeddings     {}\n", m.tied_embeddings ? "tied (token_embd doubles as output)" : "separate output.weight");
    fmt::print("size           {} MiB ({} GiB)\n", fmtx::thousands(static_cast<double>(m.size_bytes) / fmtx::mib),
               fmtx::thousands(static_cast<double>(m.size_bytes) / fmtx::gib));
    fmt::print("params         {} ({})\n", fmtx::count_si(static_cast<double>(m.n_params)),
               fmtx::thousands(static_cast<int64_t>(m.n_params)));
    fmt::print("KV per token   f16 {} B, q8_0 {} B, q4_0 {} B\n", kv(GGML_TYPE_F16), kv(GGML_TYPE_Q8_0), kv(GGML_TYPE_Q4_0));
    if (devices) print_devices(devs, a.n_ctx);
    if (split) fmt::print("\n{}", report::split_markdown(*split));
}

}  // namespace

void add_model(CLI::App & root) {
    auto * cmd = root.add_subcommand("model", "Synthesize a random-weight GGUF of a real architecture, or describe a model");
    cmd->require_subcommand(1);

    auto a = std::make_shared<synth_args>();
    auto * synth = cmd->add_subcommand("synth", "Write a GGUF with a real architecture and vocabulary and random weights");
    std::string presets;
    for (const auto & n : model::preset_names()) presets += (presets.empty() ? "" : ", ") + n;
    synth->add_option("--preset", a->preset, "Published shape: " + presets);
    synth->add_option("--arch", a->arch, "Custom shape: architecture (qwen2 or llama)")->capture_default_str();
    synth->add_option("--layers", a->layers, "Custom shape: number of layers");
    synth->add_option("--embd", a->embd, "Custom shape: hidden size");
    synth->add_option("--ff", a->ff, "Custom shape: FFN size");
    synth->add_option("--heads", a->heads, "Custom shape: attention heads");
    synth->add_option("--kv-heads", a->kv_heads, "Custom shape: KV heads (default: --heads)");
    synth->add_option("--ctx-train", a->ctx_train, "Custom shape: trained context length")->capture_default_str();
    synth->add_option("--vocab", a->vocab, "Vocabulary file (a ggml-vocab-*.gguf); default: the preset's, from llama.cpp's models/");
    synth->add_option("--quant", a->quant, "llama.cpp file type (q4_k_m, q8_0, f16, ...)")->capture_default_str();
    synth->add_option("-o,--output", a->out, "Output file (default: ~/.cache/infermeter/models/<preset>-<quant>.gguf); "
                                             "replaced atomically, a device or FIFO is written through");
    synth->add_flag("--force", a->force, "Overwrite -o even when it is an existing file that is not a GGUF model");
    synth->add_option("--seed", a->seed, "Random seed for the weights")->capture_default_str();
    synth->add_option("-t,--threads", a->threads, fmt::format("Threads (default: all cores; at most {})", max_threads()));
    synth->callback([a] { run_synth(*a); });

    auto ia = std::make_shared<info_args>();
    auto * info = cmd->add_subcommand("info", "Architecture, size, params and KV bytes per token of a GGUF model; "
                                              "with --devices, where llama.cpp places its layers");
    info->add_option("model", ia->ref, "A .gguf file or synth:PRESET[-QUANT] (e.g. synth:qwen2-1.5b-q4_k_m)")->required();
    info->add_flag("--json", ia->json, "Print JSON");
    info->add_flag("--devices", ia->devices,
                   "Load the model with the engine flags (-ngl, -sm, -mg, -ts, --rpc, ...) and a context of --ctx cells and "
                   "show which device holds which layers and how much memory each uses (implied by --rpc and -ts)");
    info->add_option("--ctx", ia->n_ctx, "Context cells for --devices (KV and compute buffers per device)")->capture_default_str();
    add_engine_flags(info, ia->engine);
    info->callback([ia] { run_info(*ia); });
}

}  // namespace im::cli
