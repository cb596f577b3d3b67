#include "cli/engine_flags.h"

#include "core/error.h"
#include "core/ranges.h"
#include "model/info.h"

#include <fmt/format.h>

namespace im::cli {

using engine::llama::engine_params;
using engine::llama::flash_attn;

void add_engine_flags(CLI::App * cmd, engine_flags & f) {
    cmd->add_option("-t,--threads", f.threads,
                    fmt::format("CPU threads (default: physical cores; at most {}: 4 x the logical CPUs, <= 512)",
                                max_threads()));
    cmd->add_option("--n-gpu-layers", f.n_gpu_layers, "-ngl: layers offloaded to the GPU (-1..10000)")->capture_default_str();
    cmd->add_option("--split-mode", f.split_mode, "-sm: multi-GPU split: none, layer, row")->capture_default_str();
    cmd->add_option("--main-gpu", f.main_gpu, "-mg: GPU for split-mode none")->capture_default_str();
    cmd->add_option("--flash-attn", f.flash_attn, "-fa: flash attention: auto, on, off (or 1/0)")->capture_default_str();
    cmd->add_option("-b,--batch-size", f.n_batch, "Logical batch size (tokens per llama_decode, 1..1048576)")->capture_default_str();
    cmd->add_option("--ubatch-size", f.n_ubatch, "-ub: physical batch size (1..1048576)")->capture_default_str();
    cmd->add_option("--cache-type-k", f.type_k, "-ctk: K cache type: f16, q8_0, q4_0, ...")->capture_default_str();
    cmd->add_option("--cache-type-v", f.type_v, "-ctv: V cache type: f16, q8_0, q4_0, ...")->capture_default_str();
    cmd->add_option("--mmap", f.mmap, "Memory-map the model: 1 or 0")->capture_default_str();
    cmd->add_option("--poll", f.poll, "CPU threadpool polling level 0-100 (llama-bench's)")->capture_default_str();
}

std::vector<std::string> expand_short_aliases(int argc, char ** argv) {
    // CLI11 takes one-character short options only; llama-bench's multi-letter ones map to long names.
    static const std::pair<const char *, const char *> aliases[] = {
        {"-ngl", "--n-gpu-layers"}, {"-sm", "--split-mode"},    {"-mg", "--main-gpu"},    {"-fa", "--flash-attn"},
        {"-ub", "--ubatch-size"},   {"-ctk", "--cache-type-k"}, {"-ctv", "--cache-type-v"}, {"-pg", "--pg"},
        {"-npp", "--n-prompt"},     {"-ntg", "--n-predict"},    {"-npl", "--workers"},    {"-kvu", "--kv-unified"},
    };
    std::vector<std::string> out;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            for (; i < argc; ++i) out.emplace_back(argv[i]);
            break;
        }
        for (const auto & [from, to] : aliases) {
            const std::string f = from;
            if (a == f) {
                a = to;
            } else if (a.rfind(f + "=", 0) == 0) {
                a = std::string(to) + a.substr(f.size());
            }
        }
        out.push_back(a);
    }
    return out;
}

namespace {

flash_attn parse_fa(const std::string & s) {
    if (s == "auto" || s == "-1") return flash_attn::auto_;
    if (s == "on" || s == "1" || s == "true") return flash_attn::on;
    if (s == "off" || s == "0" || s == "false") return flash_attn::off;
    throw_usage("-fa: '{}' is not one of auto, on, off", s);
}

llama_split_mode parse_sm(const std::string & s) {
    if (s == "none") return LLAMA_SPLIT_MODE_NONE;
    if (s == "layer") return LLAMA_SPLIT_MODE_LAYER;
    if (s == "row") return LLAMA_SPLIT_MODE_ROW;
    throw_usage("-sm: '{}' is not one of none, layer, row", s);
}

std::vector<int> threads_list(const std::string & s) {
    if (s.empty()) return {engine::llama::default_threads()};
    const auto v = parse_int_list(s, "-t", INT32_MIN);  // check_threads names the bound and why
    for (int t : v) check_threads(t, "-t", false);
    return v;
}

// A batch larger than this never fits a context (llama.cpp clamps n_batch to n_ctx) and would
// only allocate a larger llama_batch.
constexpr int max_batch = 1 << 20;
// The sweep is the product of every list; past this many configurations it would never finish.
constexpr size_t max_configurations = 10000;

}  // namespace

std::vector<engine_params> expand(const engine_flags & f) {
    std::vector<engine_params> out;
    const auto ngl = parse_int_list(f.n_gpu_layers, "-ngl", -1, 10000);
    const auto sm = split_list(f.split_mode);
    const auto mg = parse_int_list(f.main_gpu, "-mg", 0, 1023);
    const auto mmap = parse_int_list(f.mmap, "--mmap", 0, 1);
    const auto threads = threads_list(f.threads);
    const auto nb = parse_int_list(f.n_batch, "-b", 1, max_batch);
    const auto nub = parse_int_list(f.n_ubatch, "-ub", 1, max_batch);
    const auto fa = split_list(f.flash_attn);
    const auto ctk = split_list(f.type_k);
    const auto ctv = split_list(f.type_v);
    const auto poll = parse_int_list(f.poll, "--poll", 0, 100);
    if (sm.empty()) throw_usage("-sm: empty list");
    if (fa.empty()) throw_usage("-fa: empty list");
    if (ctk.empty() || ctv.empty()) throw_usage("{}: empty list", ctk.empty() ? "-ctk" : "-ctv");
    size_t n_configs = 1;
    for (size_t n : {ngl.size(), sm.size(), mg.size(), mmap.size(), threads.size(), nb.size(), nub.size(), fa.size(),
                     ctk.size(), ctv.size(), poll.size()}) {
        n_configs *= n;  // each <= max_list_values: checked below before it could overflow
        if (n_configs > max_configurations) {
            throw_usage("the engine flags (-t, -ngl, -b, -ub, -fa, -ctk, -ctv, ...) combine to more than {} "
                        "configurations; sweep fewer values at once", max_configurations);
        }
    }
    for (int vngl : ngl)
    for (const auto & vsm : sm)
    for (int vmg : mg)
    for (int vmmap : mmap)
    for (int vt : threads)
    for (int vb : nb)
    for (int vub : nub)
    for (const auto & vfa : fa)
    for (const auto & vk : ctk)
    for (const auto & vv : ctv)
    for (int vp : poll) {
        engine_params p;
        p.n_gpu_layers = vngl;
        p.split_mode = parse_sm(vsm);
        p.main_gpu = vmg;
        p.use_mmap = vmmap != 0;
        p.n_threads = vt;
        p.n_batch = vb;
        p.n_ubatch = vub;
        p.fa = parse_fa(vfa);
        p.type_k = model::cache_type_from_name(vk, "-ctk");
        p.type_v = model::cache_type_from_name(vv, "-ctv");
        p.poll = vp;
        if (p.n_ubatch > p.n_batch) p.n_ubatch = p.n_batch;  // llama.cpp clamps the same way
        out.push_back(p);
    }
    return out;
}

engine_params single(const engine_flags & f, const std::string & command) {
    const auto all = expand(f);
    if (all.size() != 1) {
        throw_usage("{} takes one value per engine flag (-t, -ngl, -fa, -b, -ub, -ctk, -ctv, ...); use "
                    "`infermeter bench` to sweep engine settings", command);
    }
    return all.front();
}

}  // namespace im::cli
