#include "engine/llama/session.h"

#include "core/error.h"
#include "engine/backend.h"
#include "engine/rpc.h"

#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <string_view>
#include <thread>
#include <sys/resource.h>

namespace im::engine::llama {

int default_threads() {
    // Physical cores, counted as llama.cpp's common_cpu_get_num_physical_cores does: distinct
    // thread-sibling sets.
    std::set<std::string> siblings;
    for (unsigned cpu = 0; cpu < std::max(1u, std::thread::hardware_concurrency()); ++cpu) {
        std::ifstream in("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings");
        std::string line;
        if (in && std::getline(in, line)) siblings.insert(line);
    }
    if (!siblings.empty()) return static_cast<int>(siblings.size());
    const unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n <= 4 ? n : n / 2) : 4;
}

std::string flash_attn_name(flash_attn fa) {
    switch (fa) {
        case flash_attn::on:  return "on";
        case flash_attn::off: return "off";
        default:              return "auto";
    }
}

std::string split_mode_name(llama_split_mode sm) {
    switch (sm) {
        case LLAMA_SPLIT_MODE_NONE:  return "none";
        case LLAMA_SPLIT_MODE_ROW:   return "row";
        default:                     return "layer";
    }
}

std::string tensor_split_name(const std::vector<float> & ts) {
    std::string out;
    for (float v : ts) out += (out.empty() ? "" : "/") + fmt::format("{}", v);
    return out.empty() ? "0" : out;
}

std::string rpc_name(const std::vector<std::string> & endpoints) { return fmt::format("{}", fmt::join(endpoints, ",")); }

namespace {

constexpr const char * address_space_marker = "(ulimit -v)";

// Under `ulimit -v`, ggml aborts (GGML_ASSERT on a failed malloc) when the address space runs out:
// refuse beforehand when the limit leaves less than a step needs (issue 16).
void check_address_space(uint64_t need_bytes, const std::string & what) {
    rlimit rl{};
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    uint64_t used_kb = 0;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmSize:", 0) == 0) used_kb = std::strtoull(line.c_str() + 7, nullptr, 10);
    }
    const uint64_t limit = rl.rlim_cur, used = used_kb * 1024;
    if (used + need_bytes > limit) {
        throw_runtime("{} needs about {} MiB of address space, but the limit {} of {} MiB leaves {} MiB; raise "
                      "ulimit -v", what, address_space_marker, need_bytes >> 20, limit >> 20, used < limit ? (limit - used) >> 20 : 0);
    }
}

}  // namespace

bool is_address_space_refusal(const im::error & e) {
    return e.kind() == error_kind::runtime && std::string_view(e.what()).find(address_space_marker) != std::string_view::npos;
}

std::vector<device_info> offload_devices(const engine_params & p) {
    add_rpc_servers(p.rpc);
    if (p.n_gpu_layers == 0) return {};
    std::vector<device_info> rpc, gpus, igpus;
    const auto all = devices();
    for (size_t i = 0; i < all.size(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        const std::string reg = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
        if (all[i].type == "gpu") (reg.rfind("RPC", 0) == 0 ? rpc : gpus).push_back(all[i]);
        if (all[i].type == "igpu") igpus.push_back(all[i]);
    }
    std::vector<device_info> out = rpc;
    out.insert(out.end(), gpus.begin(), gpus.end());
    if (gpus.empty()) out.insert(out.end(), igpus.begin(), igpus.end());
    if (p.split_mode == LLAMA_SPLIT_MODE_NONE && !out.empty()) {
        if (p.main_gpu < 0 || p.main_gpu >= static_cast<int>(out.size())) return {};
        out = {out[static_cast<size_t>(p.main_gpu)]};
    }
    return out;
}

std::string layer_ranges(const std::vector<int> & layers) {
    std::string out;
    for (size_t i = 0; i < layers.size();) {
        size_t j = i;
        while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
        out += (out.empty() ? "" : ", ") + (j == i ? std::to_string(layers[i]) : fmt::format("{}-{}", layers[i], layers[j]));
        i = j + 1;
    }
    return out.empty() ? "none" : out;
}

std::string device_of_buffer(const std::string & buffer) {
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (ggml_backend_buffer_type_t bt = ggml_backend_dev_buffer_type(dev); bt && buffer == ggml_backend_buft_name(bt)) {
            return ggml_backend_dev_name(dev);
        }
    }
    const auto ends_with = [&](std::string_view suffix) {
        return buffer.size() >= suffix.size() && buffer.compare(buffer.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (buffer.rfind("CPU", 0) == 0 || ends_with("_Host")) {
        if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) return ggml_backend_dev_name(cpu);
        return "CPU";
    }
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        const std::string name = ggml_backend_dev_name(ggml_backend_dev_get(i));
        if (buffer.rfind(name, 0) == 0) return name;
    }
    return buffer;
}

namespace {

uint64_t mib_to_bytes(const std::string & mib) { return static_cast<uint64_t>(std::stod(mib) * 1024.0 * 1024.0 + 0.5); }

device_use & row_for(std::vector<device_use> & rows, const std::string & name) {
    for (auto & r : rows) {
        if (r.name == name) return r;
    }
    rows.push_back({});
    rows.back().name = name;
    return rows.back();
}

}  // namespace

std::vector<device_use> parse_placement_log(const std::vector<std::string> & lines, int n_layer,
                                            const std::function<std::string(const std::string &)> & buffer_device) {
    static const std::regex using_dev(R"(using device (\S+) \()");
    static const std::regex layer(R"(layer +([0-9]+) assigned to device ([^,\s]+))");
    static const std::regex model_buf(R"(load_tensors: +(\S+) model buffer size = +([0-9.]+) MiB)");
    std::vector<device_use> rows;
    std::smatch m;
    for (const auto & line : lines) {
        if (std::regex_search(line, m, using_dev)) {
            row_for(rows, m[1]);
        } else if (std::regex_search(line, m, layer)) {
            auto & r = row_for(rows, m[2]);
            const int il = std::stoi(m[1]);
            if (il >= n_layer) {
                r.output = true;
            } else {
                r.layers.push_back(il);
            }
        } else if (std::regex_search(line, m, model_buf)) {
            row_for(rows, buffer_device(m[1])).model_bytes += mib_to_bytes(m[2]);
        }
    }
    // The input layer (token embeddings) stays on the CPU (llama.cpp: "very little benefit to offloading").
    for (auto & r : rows) {
        if (r.name.rfind("CPU", 0) == 0) r.input = true;
        std::sort(r.layers.begin(), r.layers.end());
    }
    // Devices in llama.cpp's order, the host last.
    std::stable_partition(rows.begin(), rows.end(), [](const device_use & r) { return !r.input; });
    return rows;
}

std::vector<device_use> devices_in_use(const model & m, const allocation * ctx) {
    std::vector<device_use> rows = m.placement();
    if (ctx) {
        for (const auto & [buf, bytes] : ctx->kv_by_buffer) row_for(rows, device_of_buffer(buf)).kv_bytes += bytes;
        for (const auto & [buf, bytes] : ctx->compute_by_buffer) row_for(rows, device_of_buffer(buf)).compute_bytes += bytes;
    }
    const auto all = devices();
    for (auto & r : rows) {
        for (size_t i = 0; i < all.size(); ++i) {
            if (all[i].name != r.name) continue;
            r.description = all[i].description;
            r.type = all[i].type;
            const std::string reg = ggml_backend_reg_name(ggml_backend_dev_backend_reg(ggml_backend_dev_get(i)));
            if (reg.rfind("RPC", 0) == 0) r.type = "rpc";
            r.memory_free = all[i].memory_free;
            r.memory_total = all[i].memory_total;
        }
    }
    return rows;
}

std::string describe_devices(const std::vector<device_use> & devices) {
    const auto mib = [](uint64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024.0)); };
    std::string out;
    for (const auto & d : devices) {
        std::string holds;
        if (d.input) holds = "input";
        if (!d.layers.empty()) {
            holds += (holds.empty() ? "" : " + ") + std::string(d.layers.size() == 1 ? "layer " : "layers ") + layer_ranges(d.layers);
        }
        if (d.output) holds += (holds.empty() ? "" : " + ") + std::string("output");
        std::string line = d.name + (d.description.empty() || d.type == "cpu" ? "" : " (" + d.description + ")") + ": " +
                           (holds.empty() ? "no layers" : holds) + ", " + mib(d.model_bytes) + " weights";
        if (d.kv_bytes) line += ", " + mib(d.kv_bytes) + " KV";
        if (d.compute_bytes) line += ", " + mib(d.compute_bytes) + " compute";
        out += (out.empty() ? "" : "; ") + line;
    }
    return out;
}

model::model(const std::filesystem::path & path, const engine_params & p, bool no_alloc) {
    info_ = im::model::read_info(path);  // clean errors for missing, non-GGUF and truncated files
    add_rpc_servers(p.rpc);  // before the load: llama.cpp takes the registered devices then
    if (!no_alloc) check_address_space(info_.file_bytes + (64u << 20), "loading " + path.string());
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = p.n_gpu_layers;
    mp.split_mode = p.split_mode;
    mp.main_gpu = p.main_gpu;
    // llama.cpp reads llama_max_devices() entries; the flags checked the count.
    std::vector<float> split(llama_max_devices(), 0.0f);
    std::copy_n(p.tensor_split.begin(), std::min(p.tensor_split.size(), split.size()), split.begin());
    mp.tensor_split = split.data();
    // the no_alloc dry run maps nothing (llama.cpp asserts on mmap there, as its own fit pass avoids)
    mp.load_mode = p.use_mmap && !no_alloc ? LLAMA_LOAD_MODE_AUTO : LLAMA_LOAD_MODE_NONE;
    mp.no_alloc = no_alloc;
    {
        log_capture capture;
        model_ = llama_model_load_from_file(path.c_str(), mp);
        if (model_) placement_ = parse_placement_log(capture.lines(), info_.n_layer, device_of_buffer);
    }
    if (!model_) {
        const std::string why = last_llama_errors();
        throw_runtime("llama.cpp could not load {} ({}){}", path.string(), info_.arch,
                      why.empty() ? "" : ": " + why);
    }
}

model::~model() { llama_model_free(model_); }

std::string model::type_desc() const {
    char buf[256];
    llama_model_desc(model_, buf, sizeof(buf));
    return buf;
}

bool model::same_load(const engine_params & a, const engine_params & b) {
    return a.n_gpu_layers == b.n_gpu_layers && a.split_mode == b.split_mode && a.main_gpu == b.main_gpu &&
           a.tensor_split == b.tensor_split && a.rpc == b.rpc && a.use_mmap == b.use_mmap;
}

void parse_allocation_log(const std::vector<std::string> & lines, allocation & a) {
    static const std::regex kv(R"(llama_kv_cache: size = +([0-9.]+) MiB)");
    static const std::regex kv_buffer(R"(: +(\S+) KV buffer size = +([0-9.]+) MiB)");
    static const std::regex compute(R"((\S+) compute buffer size = +([0-9.]+) MiB)");
    std::smatch m;
    for (const auto & line : lines) {
        if (std::regex_search(line, m, kv)) {
            a.kv_bytes += mib_to_bytes(m[1]);
        } else if (std::regex_search(line, m, kv_buffer)) {
            a.kv_by_buffer.emplace_back(m[1], mib_to_bytes(m[2]));
        } else if (std::regex_search(line, m, compute)) {
            a.compute_bytes += mib_to_bytes(m[2]);
            a.compute_by_buffer.emplace_back(m[1], mib_to_bytes(m[2]));
        }
    }
}

context::context(const model & m, const engine_params & p, const context_request & r) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = r.n_ctx;
    cp.n_batch = static_cast<uint32_t>(p.n_batch);
    cp.n_ubatch = static_cast<uint32_t>(p.n_ubatch);
    cp.n_seq_max = r.n_seq_max;
    cp.kv_unified = r.kv_unified;
    cp.type_k = p.type_k;
    cp.type_v = p.type_v;
    cp.flash_attn_type = p.fa == flash_attn::on    ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                         : p.fa == flash_attn::off ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                                   : LLAMA_FLASH_ATTN_TYPE_AUTO;
    cp.swa_full = false;
    cp.samplers = const_cast<llama_sampler_seq_config *>(r.samplers);
    cp.n_samplers = r.n_samplers;
    n_threads_ = p.n_threads > 0 ? p.n_threads : default_threads();
    // KV cache, the logits of one ubatch, thread stacks and ggml's graph contexts.
    check_address_space(static_cast<uint64_t>(r.n_ctx) * im::model::kv_bytes_per_token(m.info(), p.type_k, p.type_v) +
                            static_cast<uint64_t>(std::min<uint32_t>(cp.n_ubatch, r.n_ctx)) *
                                static_cast<uint64_t>(std::max(m.info().n_vocab, 0)) * 4 +
                            static_cast<uint64_t>(n_threads_) * (8u << 20) + (64u << 20),
                        fmt::format("a context of {} cells", r.n_ctx));
    cp.n_threads = n_threads_;
    cp.n_threads_batch = n_threads_;
    {
        log_capture capture;
        ctx_ = llama_init_from_model(m.get(), cp);
        parse_allocation_log(capture.lines(), alloc_);
    }
    if (!ctx_) {
        const std::string why = last_llama_errors();
        throw_runtime("llama.cpp could not create a context of {} cells for {} sequences{} (lower --workers, -n or "
                      "-ub, or quantize the cache with -ctk/-ctv q8_0)",
                      r.n_ctx, r.n_seq_max, why.empty() ? "" : ": " + why);
    }
    alloc_.n_ctx = llama_n_ctx(ctx_);
    alloc_.n_ctx_seq = llama_n_ctx_seq(ctx_);

    // Own threadpool, as llama-bench attaches one: same thread placement and polling.
    ggml_backend_dev_t cpu = r.own_threadpool ? ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) : nullptr;
    if (cpu) {
        ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(cpu);
        auto * tp_new = reinterpret_cast<decltype(ggml_threadpool_new) *>(
            ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new"));
        if (tp_new) {
            ggml_threadpool_params tpp = ggml_threadpool_params_default(n_threads_);
            tpp.poll = static_cast<uint32_t>(p.poll);
            threadpool_ = tp_new(&tpp);
            if (threadpool_) {
                llama_attach_threadpool(ctx_, threadpool_, nullptr);
            }
        }
    }
}

context::~context() {
    llama_free(ctx_);
    if (threadpool_) {
        if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
            auto * tp_free = reinterpret_cast<decltype(ggml_threadpool_free) *>(
                ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_threadpool_free"));
            if (tp_free) tp_free(threadpool_);
        }
    }
}

void context::clear() { llama_memory_clear(llama_get_memory(ctx_), false); }

}  // namespace im::engine::llama
