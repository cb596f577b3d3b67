#include "cli/engine_flags.h"

#include "core/error.h"
#include "core/log.h"
#include "core/ranges.h"
#include "model/info.h"

#include <fmt/format.h>

#if __has_include("ggml-rpc.h")
#include "ggml-rpc.h"
#endif

#include <charconv>
#include <cmath>
#include <set>

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
    cmd->add_option("--tensor-split", f.tensor_split,
                    "-ts: share of the layers (rows with -sm row) per device, in llama.cpp's device order (--rpc "
                    "servers first): 3/1 or 3,1; a sweep as llama-bench takes it: 3/1,1/1 (default: by free memory)");
    cmd->add_option("--rpc", f.rpc,
                    "-rpc: ggml-rpc-server endpoints HOST:PORT[,HOST:PORT...] whose devices hold layers (needs a build "
                    "with INFERMETER_RPC=1 ./scripts/build; docs/scale-out.md)");
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
        {"-ts", "--tensor-split"},  {"-rpc", "--rpc"},
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

#ifdef GGML_RPC_MAX_SERVERS
constexpr size_t max_rpc_servers = GGML_RPC_MAX_SERVERS;
#else
constexpr size_t max_rpc_servers = 16;  // ggml-rpc.h's GGML_RPC_MAX_SERVERS where the header is not installed
#endif

std::vector<float> parse_one_split(const std::vector<std::string> & items, const std::string & whole) {
    std::vector<float> out;
    for (const auto & item : items) {
        float v = 0;
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (ec != std::errc() || ptr != item.data() + item.size()) {
            throw_usage("-ts: '{}' in '{}' is not a number (proportions per device, e.g. -ts 3/1)", item, whole);
        }
        if (!std::isfinite(v) || v < 0) {
            throw_usage("-ts: {} in '{}' must be a finite proportion >= 0", item, whole);
        }
        out.push_back(v);
    }
    if (out.empty()) throw_usage("-ts: '{}' holds no proportions (e.g. -ts 3/1)", whole);
    const size_t max_dev = llama_max_devices();
    if (out.size() > max_dev) {
        throw_usage("-ts: '{}' has {} proportions; llama.cpp takes at most {} devices", whole, out.size(), max_dev);
    }
    if (std::all_of(out.begin(), out.end(), [](float x) { return x == 0.0f; })) {
        if (out.size() == 1) return {};  // "0": llama-bench's spelling of the default split
        throw_usage("-ts: '{}' gives every device 0; give at least one a share (or -ts 0 for the default split)", whole);
    }
    return out;
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

std::vector<std::vector<float>> parse_tensor_split(const std::string & text) {
    const auto values = split_list(text);
    if (values.empty()) return {{}};
    const bool any_device_separator = text.find_first_of("/;") != std::string::npos;
    if (!any_device_separator) return {parse_one_split(values, text)};  // "3,1" (llama-server's way) or "3"
    std::vector<std::vector<float>> out;
    for (const auto & v : values) {
        std::vector<std::string> items;
        for (const auto & a : split_list(v, '/')) {
            for (const auto & b : split_list(a, ';')) items.push_back(b);
        }
        out.push_back(parse_one_split(items, v));
    }
    return out;
}

std::vector<std::string> parse_rpc_endpoints(const std::string & text) {
    std::vector<std::string> out;
    if (text.find_first_not_of(" \t") == std::string::npos) return out;
    std::set<std::string> seen;
    for (const auto & e : split_list(text)) {
        const size_t colon = e.rfind(':');
        if (colon == std::string::npos || colon == 0) {
            throw_usage("--rpc: '{}' is not HOST:PORT (e.g. --rpc 127.0.0.1:50052,127.0.0.1:50053)", e);
        }
        const std::string host = e.substr(0, colon), port_text = e.substr(colon + 1);
        if (host.find(':') != std::string::npos || host.front() == '[') {
            throw_usage("--rpc: '{}': ggml's RPC client takes a host name or IPv4 address, not an IPv6 address", e);
        }
        if (host.find_first_of(" \t/@") != std::string::npos) throw_usage("--rpc: '{}': '{}' is not a host name", e, host);
        int port = 0;
        const auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 1 || port > 65535) {
            throw_usage("--rpc: '{}': the port must be a number in 1..65535", e);
        }
        if (!seen.insert(e).second) throw_usage("--rpc: {} is listed twice", e);
        out.push_back(e);
    }
    if (out.empty()) throw_usage("--rpc: no endpoint given (HOST:PORT[,HOST:PORT...])");
    if (out.size() > max_rpc_servers) {
        throw_usage("--rpc: {} endpoints; ggml's RPC backend takes at most {} (GGML_RPC_MAX_SERVERS)", out.size(),
                    max_rpc_servers);
    }
    return out;
}

std::vector<engine_params> expand(const engine_flags & f) {
    std::vector<engine_params> out;
    const auto ngl = parse_int_list(f.n_gpu_layers, "-ngl", -1, 10000);
    const auto sm = split_list(f.split_mode);
    const auto mg = parse_int_list(f.main_gpu, "-mg", 0, 1023);
    const auto ts = parse_tensor_split(f.tensor_split);
    const auto rpc = parse_rpc_endpoints(f.rpc);
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
    for (size_t n : {ngl.size(), sm.size(), mg.size(), ts.size(), mmap.size(), threads.size(), nb.size(), nub.size(), fa.size(),
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
    for (const auto & vts : ts)
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
        p.tensor_split = vts;
        p.rpc = rpc;
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
        throw_usage("{} takes one value per engine flag (-t, -ngl, -sm, -ts, -fa, -b, -ub, -ctk, -ctv, ...); use "
                    "`infermeter bench` to sweep engine settings{}", command,
                    parse_tensor_split(f.tensor_split).size() > 1 ? " (-ts: ',' separates sweep values once a '/' is "
                                                                     "used; write one split as 3/1)" : "");
    }
    return all.front();
}

void note_devices(const engine::llama::model & m) {
    const auto & placement = m.placement();
    const bool offloaded = std::any_of(placement.begin(), placement.end(),
                                       [](const auto & d) { return !d.input && (!d.layers.empty() || d.output); });
    if (offloaded) log::info("devices: {}", engine::llama::describe_devices(engine::llama::devices_in_use(m)));
}

void add_split_baseline_flag(CLI::App * cmd, std::string & path) {
    cmd->add_option("--split-baseline", path,
                    "With --rpc or several devices: the -o json output of the same run on one device; the split "
                    "analysis then attributes the rest of the difference (lost overlap / other)");
}

}  // namespace im::cli
