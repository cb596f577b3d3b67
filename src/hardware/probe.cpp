#include "hardware/probe.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/fs.h"
#include "core/log.h"
#include "engine/backend.h"
#include "hardware/specs.h"
#include "hardware/system.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <unistd.h>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace im::hardware {

namespace {

std::string lower(std::string s) {
    for (auto & c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

double seconds_since(int64_t t0_ns) { return static_cast<double>(clock::now_ns() - t0_ns) * 1e-9; }

int resolve_threads(int n_threads) {
    if (n_threads > 0) return n_threads;
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Repeats `fn` (which returns its own elapsed seconds) at least `min_reps` times and until `budget_s`
// has passed or `max_reps` ran; returns every sample.
template <typename Fn> std::vector<double> repeat(Fn && fn, double budget_s, int min_reps, int max_reps) {
    std::vector<double> t_s;
    const int64_t t0 = clock::now_ns();
    while (static_cast<int>(t_s.size()) < max_reps &&
           (static_cast<int>(t_s.size()) < min_reps || seconds_since(t0) < budget_s)) {
        t_s.push_back(fn());
    }
    return t_s;
}

double min_of(const std::vector<double> & v) { return *std::min_element(v.begin(), v.end()); }

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

ggml_backend_dev_t find_device(const std::string & device_name) {
    if (device_name.empty()) {
        for (auto type : {GGML_BACKEND_DEVICE_TYPE_GPU, GGML_BACKEND_DEVICE_TYPE_IGPU, GGML_BACKEND_DEVICE_TYPE_CPU}) {
            if (auto * dev = ggml_backend_dev_by_type(type)) return dev;
        }
        throw_runtime("no ggml backend device found (is llama.cpp built with a CPU backend?)");
    }
    const std::string want = lower(device_name);
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (lower(ggml_backend_dev_name(dev)) == want) return dev;
    }
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (lower(ggml_backend_dev_description(dev)).find(want) != std::string::npos) return dev;
    }
    std::string names;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", ggml_backend_dev_name(dev),
                             ggml_backend_dev_description(dev));
    }
    throw_usage("--device '{}': no such ggml device (devices: {})", device_name, names);
}

// One backend on one device, freed on scope exit; the CPU thread count applied through the
// registry's generic "ggml_backend_set_n_threads" entry point (no ggml-cpu.h needed).
class backend_session {
  public:
    backend_session(const std::string & device_name, int n_threads) {
        dev_ = find_device(device_name);
        backend_ = ggml_backend_dev_init(dev_, nullptr);
        if (!backend_) {
            throw_runtime("cannot initialize ggml backend on device {} ({}): {}", ggml_backend_dev_name(dev_),
                          ggml_backend_dev_description(dev_), engine::last_llama_errors());
        }
        auto set_threads = reinterpret_cast<ggml_backend_set_n_threads_t>(
            ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev_), "ggml_backend_set_n_threads"));
        if (set_threads) set_threads(backend_, resolve_threads(n_threads));
    }
    ~backend_session() {
        if (buffer_) ggml_backend_buffer_free(buffer_);
        for (ggml_backend_buffer_t b : weight_buffers_) ggml_backend_buffer_free(b);
        if (ctx_) ggml_free(ctx_);
        ggml_backend_free(backend_);
    }
    backend_session(const backend_session &) = delete;
    backend_session & operator=(const backend_session &) = delete;

    // A context for up to `n_tensors` tensors and one graph of as many nodes; tensors are allocated on
    // the device by alloc().
    ggml_context * ctx(size_t n_tensors = 128) {
        if (!ctx_) {
            ggml_init_params p{};
            p.mem_size = ggml_tensor_overhead() * n_tensors + ggml_graph_overhead_custom(n_tensors, false);
            p.no_alloc = true;
            ctx_ = ggml_init(p);
        }
        return ctx_;
    }
    // Allocates every tensor of ctx() (inputs and results) in one device buffer, zeroed.
    void alloc() {
        buffer_ = ggml_backend_alloc_ctx_tensors(ctx_, backend_);
        if (!buffer_) {
            throw_runtime("probe: cannot allocate device memory on {} ({})", ggml_backend_dev_name(dev_),
                          ggml_backend_dev_description(dev_));
        }
        ggml_backend_buffer_clear(buffer_, 0);
    }
    // Allocates `w` (a matmul weight, alone in its own context) where llama.cpp would put it: the
    // device's first extra buffer type that can run `op` (the CPU's repacked/AMX layouts), else the
    // default buffer. Call before alloc(); returns the buffer type's name.
    std::string alloc_weight(ggml_context * w_ctx, ggml_tensor * op) {
        auto get_extra = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
            ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev_), "ggml_backend_dev_get_extra_bufts"));
        if (get_extra) {
            for (ggml_backend_buffer_type_t * b = get_extra(dev_); b && *b; ++b) {
                ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(w_ctx, *b);
                if (!buf) continue;
                if (ggml_backend_dev_supports_op(dev_, op)) {
                    weight_buffers_.push_back(buf);
                    return ggml_backend_buft_name(*b);
                }
                ggml_backend_buffer_free(buf);
                for (ggml_tensor * t = ggml_get_first_tensor(w_ctx); t; t = ggml_get_next_tensor(w_ctx, t)) {
                    t->buffer = nullptr;
                    t->data = nullptr;
                    t->extra = nullptr;
                }
            }
        }
        ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(w_ctx, backend_);
        if (!buf) {
            throw_runtime("probe: cannot allocate device memory on {} ({})", ggml_backend_dev_name(dev_),
                          ggml_backend_dev_description(dev_));
        }
        weight_buffers_.push_back(buf);
        return ggml_backend_buft_name(ggml_backend_buffer_get_type(buf));
    }
    bool supports(const ggml_tensor * op) const { return ggml_backend_supports_op(backend_, op); }
    // Seconds to compute `graph` and wait for the device.
    double run(ggml_cgraph * graph) {
        const int64_t t0 = clock::now_ns();
        if (ggml_backend_graph_compute(backend_, graph) != GGML_STATUS_SUCCESS) {
            throw_runtime("probe: graph compute failed on {}: {}", ggml_backend_dev_name(dev_), engine::last_llama_errors());
        }
        ggml_backend_synchronize(backend_);
        return seconds_since(t0);
    }
    ggml_backend_dev_t dev() const { return dev_; }

  private:
    ggml_backend_dev_t dev_ = nullptr;
    ggml_backend_t backend_ = nullptr;
    ggml_context * ctx_ = nullptr;
    ggml_backend_buffer_t buffer_ = nullptr;
    std::vector<ggml_backend_buffer_t> weight_buffers_;  // one per alloc_weight call
};

struct ctx_deleter {
    void operator()(ggml_context * c) const { ggml_free(c); }
};
using ctx_ptr = std::unique_ptr<ggml_context, ctx_deleter>;

// Fills a [k x rows] weight tensor of `type` with data quantized from N(0, 0.02) floats. Only a tile
// of rows is quantized and then repeated: the values do not change the speed, and quantizing a
// 64 M-element q4_K matrix on the host would take longer than the probe itself. Host memory: one
// copy of the tensor (128 MiB for the GPU shape in f16).
std::vector<uint8_t> weight_bytes(ggml_type type, int k, int rows) {
    const int tile_rows = std::min(rows, 64);
    std::vector<float> src(static_cast<size_t>(k) * static_cast<size_t>(tile_rows));
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    for (auto & x : src) x = dist(rng);
    const size_t row_bytes = ggml_row_size(type, k);
    std::vector<uint8_t> tile(row_bytes * static_cast<size_t>(tile_rows));
    if (type == GGML_TYPE_F32) {
        std::memcpy(tile.data(), src.data(), tile.size());
    } else if (type == GGML_TYPE_F16) {
        ggml_fp32_to_fp16_row(src.data(), reinterpret_cast<ggml_fp16_t *>(tile.data()), static_cast<int64_t>(src.size()));
    } else {
        ggml_quantize_chunk(type, src.data(), tile.data(), 0, tile_rows, k, nullptr);
    }
    std::vector<uint8_t> all(row_bytes * static_cast<size_t>(rows));
    for (size_t off = 0; off < all.size(); off += tile.size()) {
        std::memcpy(all.data() + off, tile.data(), std::min(tile.size(), all.size() - off));
    }
    return all;
}

void fill_weights(ggml_tensor * w, ggml_type type, int k, int rows) {
    // One set of the whole tensor: repacking buffers (CPU_REPACK) accept nothing else.
    const auto all = weight_bytes(type, k, rows);
    ggml_backend_tensor_set(w, all.data(), 0, all.size());
}


}  // namespace

resolved_device resolve_device(const std::string & device_name) {
    ggml_backend_dev_t dev = find_device(device_name);
    resolved_device r;
    r.name = ggml_backend_dev_name(dev);
    r.description = ggml_backend_dev_description(dev);
    r.backend = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
    r.is_cpu = ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU;
    return r;
}

namespace probes {

cpu_bandwidth_result cpu_bandwidth(int n_threads, size_t bytes, double budget_s) {
    const int nt = resolve_threads(n_threads);
    const size_t n = std::max<size_t>(bytes / sizeof(double), 1024 * static_cast<size_t>(nt));
    // Uninitialized on purpose: each thread first-touches its own slice so pages land near it (NUMA).
    std::unique_ptr<double[]> a(new double[n]), b(new double[n]), c(new double[n]);
    std::atomic<uint64_t> sink{0};

    auto parallel = [&](auto && body) {
        const int64_t t0 = clock::now_ns();
        std::vector<std::thread> pool;
        for (int t = 0; t < nt; ++t) {
            const size_t beg = n * static_cast<size_t>(t) / static_cast<size_t>(nt);
            const size_t end = n * static_cast<size_t>(t + 1) / static_cast<size_t>(nt);
            pool.emplace_back([&body, beg, end] { body(beg, end); });
        }
        for (auto & th : pool) th.join();
        return seconds_since(t0);
    };
    parallel([&](size_t beg, size_t end) {
        for (size_t i = beg; i < end; ++i) {
            a[i] = 0.0;
            b[i] = 1.0;
            c[i] = 2.0;
        }
    });
    // Integer sums of the bit patterns vectorize without -ffast-math; four accumulators hide latency.
    auto read_pass = [&](size_t beg, size_t end) {
        const auto * p = reinterpret_cast<const uint64_t *>(b.get());
        const auto * q = reinterpret_cast<const uint64_t *>(c.get());
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t i = beg;
        for (; i + 4 <= end; i += 4) {
            s0 += p[i] ^ q[i];
            s1 += p[i + 1] ^ q[i + 1];
            s2 += p[i + 2] ^ q[i + 2];
            s3 += p[i + 3] ^ q[i + 3];
        }
        for (; i < end; ++i) s0 += p[i] ^ q[i];
        sink.fetch_add(s0 + s1 + s2 + s3, std::memory_order_relaxed);
    };
    // Stores bypass the cache where the CPU can (SSE2 streaming stores; memcpy, which glibc does with
    // non-temporal stores at these sizes): a plain store first reads the line (write-allocate), so
    // the traffic would be a third more than the bytes counted and the figure would read low
    // against STREAM (0.70 of it on the 2-core VM before).
    auto triad_pass = [&](size_t beg, size_t end) {
        double * __restrict pa = a.get();
        const double * __restrict pb = b.get();
        const double * __restrict pc = c.get();
        const double s = 3.0;
        size_t i = beg;
#if defined(__SSE2__)
        for (; i < end && (reinterpret_cast<uintptr_t>(pa + i) & 15) != 0; ++i) pa[i] = pb[i] + s * pc[i];
        const __m128d vs = _mm_set1_pd(s);
        for (; i + 2 <= end; i += 2) {
            _mm_stream_pd(pa + i, _mm_add_pd(_mm_loadu_pd(pb + i), _mm_mul_pd(vs, _mm_loadu_pd(pc + i))));
        }
        _mm_sfence();
#endif
        for (; i < end; ++i) pa[i] = pb[i] + s * pc[i];
    };
    auto copy_pass = [&](size_t beg, size_t end) { std::memcpy(a.get() + beg, b.get() + beg, (end - beg) * sizeof(double)); };
    cpu_bandwidth_result r;
    const double array_bytes = static_cast<double>(n) * sizeof(double);
    // One untimed pass of each kind first: page-table and TLB warm-up are not memory bandwidth.
    parallel(read_pass);
    parallel(copy_pass);
    parallel(triad_pass);
    r.read_bytes_per_s = 2.0 * array_bytes / min_of(repeat([&] { return parallel(read_pass); }, budget_s / 3, 3, 50));
    r.copy_bytes_per_s = 2.0 * array_bytes / min_of(repeat([&] { return parallel(copy_pass); }, budget_s / 3, 3, 50));
    r.triad_bytes_per_s = 3.0 * array_bytes / min_of(repeat([&] { return parallel(triad_pass); }, budget_s / 3, 3, 50));
    return r;
}

ggml_bandwidth_result ggml_bandwidth(const std::string & device_name, int n_threads, size_t bytes, double budget_s,
                                     int ops_per_batch) {
    // A row of 16 K floats: ggml_sum_rows then runs one block per row, thousands of blocks for a
    // tensor far larger than L2; the other kernels do not care about the shape of a contiguous tensor.
    const int64_t ne0 = 1 << 14;
    const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(bytes / sizeof(float)) / ne0);
    const double tensor_bytes = static_cast<double>(ne0) * static_cast<double>(rows) * sizeof(float);
    int n_ops = ops_per_batch;
    if (n_ops <= 0) n_ops = static_cast<int>(std::clamp((8.0 * (1ull << 30)) / tensor_bytes, 4.0, 32.0));

    // One session per kind: each graph is the only work its backend sees while it is timed. A graph
    // is n_ops nodes of `op(ctx, x, y, previous node)`; the first node is checked for support.
    auto measure = [&](const char * kind, double bytes_per_op, auto && op) {
        backend_session s(device_name, n_threads);
        ggml_context * ctx = s.ctx();
        ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, rows);
        ggml_tensor * y = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, rows);
        ggml_cgraph * graph = ggml_new_graph_custom(ctx, 128, false);
        ggml_tensor * first = nullptr;
        ggml_tensor * prev = x;
        for (int i = 0; i < n_ops; ++i) {
            prev = op(ctx, x, y, prev);
            ggml_build_forward_expand(graph, prev);
            if (!first) first = prev;
        }
        if (!s.supports(first)) {
            log::info("probe: {} cannot run {} on f32; that bandwidth kind is left out", ggml_backend_dev_name(s.dev()), kind);
            return 0.0;
        }
        s.alloc();
        s.run(graph);  // untimed: first-touch, kernel loading, CUDA graph capture
        const double t = min_of(repeat([&] { return s.run(graph); }, budget_s / 4, 3, 200));
        const double rate = bytes_per_op * n_ops / t;
        log::info("  {} x {} {} MiB: {}", n_ops, kind, static_cast<int64_t>(tensor_bytes) >> 20, format_bytes_per_s(rate));
        return rate;
    };
    ggml_bandwidth_result r;
    // Read-only: independent reductions of the same tensor, each its own node and output.
    auto sum = [](ggml_context * ctx, ggml_tensor * x, ggml_tensor *, ggml_tensor *) {
        ggml_tensor * t = ggml_sum(ctx, x);
        ggml_set_output(t);
        return t;
    };
    auto sum_rows = [](ggml_context * ctx, ggml_tensor * x, ggml_tensor *, ggml_tensor *) {
        ggml_tensor * t = ggml_sum_rows(ctx, x);
        ggml_set_output(t);
        return t;
    };
    auto copy = [](ggml_context * ctx, ggml_tensor * x, ggml_tensor * y, ggml_tensor *) { return ggml_cpy(ctx, x, y); };
    // x += y, chained: zeros stay zeros, the traffic is what counts.
    auto add = [](ggml_context * ctx, ggml_tensor *, ggml_tensor * y, ggml_tensor * prev) {
        return ggml_add_inplace(ctx, prev, y);
    };
    // ggml_sum is one CUB device reduction on CUDA but a single-threaded loop on the CPU backend;
    // ggml_sum_rows spreads over rows everywhere. The better of the two is the read figure.
    r.read_bytes_per_s = std::max(measure("ggml_sum", tensor_bytes, sum), measure("ggml_sum_rows", tensor_bytes, sum_rows));
    r.copy_bytes_per_s = measure("ggml_cpy", 2.0 * tensor_bytes, copy);
    r.add_bytes_per_s = measure("ggml_add", 3.0 * tensor_bytes, add);
    return r;
}

double ggml_matmul(const std::string & device_name, int n_threads, ggml_type weight_type, int m, int n, int k,
                   double budget_s) {
    backend_session s(device_name, n_threads);
    ggml_init_params wp{};
    wp.mem_size = ggml_tensor_overhead() * 2;
    wp.no_alloc = true;
    ctx_ptr w_ctx(ggml_init(wp));
    ggml_tensor * w = ggml_new_tensor_2d(w_ctx.get(), weight_type, k, m);
    ggml_context * ctx = s.ctx();
    ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n);
    ggml_tensor * out = ggml_mul_mat(ctx, w, x);
    const std::string buft = s.alloc_weight(w_ctx.get(), out);
    if (!s.supports(out)) {
        log::warn("probe: {} cannot run mul_mat with {} weights; that rate is left unknown",
                  ggml_backend_dev_name(s.dev()), ggml_type_name(weight_type));
        return 0.0;
    }
    ggml_cgraph * graph = ggml_new_graph_custom(ctx, 4, false);
    ggml_build_forward_expand(graph, out);
    s.alloc();
    fill_weights(w, weight_type, k, m);
    {
        std::vector<float> act(static_cast<size_t>(k) * static_cast<size_t>(n));
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        for (auto & v : act) v = dist(rng);
        ggml_backend_tensor_set(x, act.data(), 0, ggml_nbytes(x));
    }
    s.run(graph);
    const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const double rate = flops / min_of(repeat([&] { return s.run(graph); }, budget_s, 3, 500));
    log::info("  mul_mat {} {}x{}x{} ({}): {:.1f} GFLOP/s", ggml_type_name(weight_type), m, n, k, buft, rate / 1e9);
    return rate;
}

double ggml_matmul_shapes(const std::string & device_name, int n_threads, const std::vector<model::weight_matrix> & shapes,
                          int n_cols, double budget_s) {
    struct distinct {
        ggml_type type;
        int64_t k, m;
        int count;
    };
    std::vector<distinct> todo;
    for (const auto & w : shapes) {
        if (ggml_quantize_requires_imatrix(w.type) || w.type >= GGML_TYPE_COUNT || ggml_get_type_traits(w.type)->blck_size == 0 ||
            w.k % ggml_blck_size(w.type) != 0) {
            log::info("probe: {} {}x{} cannot be synthesized here; left out of the model-shape rate", ggml_type_name(w.type),
                      w.m, w.k);
            continue;
        }
        auto it = std::find_if(todo.begin(), todo.end(),
                               [&](const distinct & d) { return d.type == w.type && d.k == w.k && d.m == w.m; });
        if (it != todo.end()) ++it->count;
        else todo.push_back({w.type, w.k, w.m, 1});
    }
    if (todo.empty()) return 0.0;
    // As a decode step runs them: one graph of many layers' matrices, each its own weights (a set
    // repeated until it streams >= 512 MiB, far past any L2 or LLC, so no weight is served from a
    // cache), and one synchronize. Timing one small matmul per graph measured the launch and the sync
    // on a GPU (1.2 TFLOP/s at N = 1 on an H200, below what decode itself reached) and cached weights
    // on a CPU.
    // At large N the matmuls are compute-bound and caches do not matter: the copies are also bounded
    // to 50 GFLOP per run (a second on a 2-core CPU; prefill-sized N need no more than one set).
    double set_bytes = 0, set_flops = 0;
    for (const auto & d : todo) {
        set_bytes += static_cast<double>(ggml_row_size(d.type, d.k)) * static_cast<double>(d.m) * d.count;
        set_flops += 2.0 * static_cast<double>(d.m) * n_cols * static_cast<double>(d.k) * d.count;
    }
    const int copies = std::clamp(std::min(static_cast<int>(std::ceil(512.0 * 1024 * 1024 / set_bytes)),
                                           static_cast<int>(5e10 / set_flops)),
                                  1, 64);
    size_t n_weights = 0;
    for (const auto & d : todo) n_weights += static_cast<size_t>(d.count) * copies;
    backend_session s(device_name, n_threads);
    ggml_context * ctx = s.ctx(2 * n_weights + todo.size() + 8);
    ggml_cgraph * graph = ggml_new_graph_custom(ctx, 2 * n_weights + todo.size() + 8, false);
    std::vector<ctx_ptr> w_ctxs;
    std::vector<std::vector<ggml_tensor *>> weights(todo.size());
    std::vector<ggml_tensor *> inputs;
    double flops = 0;
    for (size_t i = 0; i < todo.size(); ++i) {
        const auto & d = todo[i];
        ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, d.k, n_cols);
        inputs.push_back(x);
        ggml_init_params wp{};
        wp.mem_size = ggml_tensor_overhead() * static_cast<size_t>(d.count * copies + 1);
        wp.no_alloc = true;
        w_ctxs.emplace_back(ggml_init(wp));
        ggml_tensor * first_out = nullptr;
        for (int j = 0; j < d.count * copies; ++j) {
            ggml_tensor * w = ggml_new_tensor_2d(w_ctxs.back().get(), d.type, d.k, d.m);
            weights[i].push_back(w);
            ggml_tensor * out = ggml_mul_mat(ctx, w, x);
            ggml_set_output(out);
            ggml_build_forward_expand(graph, out);
            if (!first_out) first_out = out;
        }
        s.alloc_weight(w_ctxs.back().get(), first_out);
        if (!s.supports(first_out)) {
            log::warn("probe: {} cannot run mul_mat with {} weights; the model-shape rate is left unknown",
                      ggml_backend_dev_name(s.dev()), ggml_type_name(d.type));
            return 0.0;
        }
        flops += 2.0 * static_cast<double>(d.m) * n_cols * static_cast<double>(d.k) * d.count * copies;
    }
    s.alloc();
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (size_t i = 0; i < todo.size(); ++i) {
        const auto bytes = weight_bytes(todo[i].type, static_cast<int>(todo[i].k), static_cast<int>(todo[i].m));
        for (ggml_tensor * w : weights[i]) ggml_backend_tensor_set(w, bytes.data(), 0, bytes.size());
        std::vector<float> act(static_cast<size_t>(todo[i].k) * static_cast<size_t>(n_cols));
        for (auto & v : act) v = dist(rng);
        ggml_backend_tensor_set(inputs[i], act.data(), 0, ggml_nbytes(inputs[i]));
    }
    s.run(graph);  // untimed: kernel loading, CUDA graph capture
    const double rate = flops / min_of(repeat([&] { return s.run(graph); }, budget_s, 3, 200));
    log::info("  mul_mat at the model's shapes, N = {}: {} copies of one layer's set ({:.0f} MiB): {:.1f} GFLOP/s", n_cols,
              copies, set_bytes * copies / (1024.0 * 1024.0), rate / 1e9);
    return rate;
}

double ggml_launch_overhead(const std::string & device_name, int n_threads, double budget_s) {
    backend_session s(device_name, n_threads);
    ggml_context * ctx = s.ctx();
    ggml_tensor * x = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 16);
    ggml_tensor * y = ggml_scale(ctx, x, 0.5f);
    ggml_cgraph * graph = ggml_new_graph_custom(ctx, 4, false);
    ggml_build_forward_expand(graph, y);
    s.alloc();
    for (int i = 0; i < 10; ++i) s.run(graph);
    return median_of(repeat([&] { return s.run(graph); }, budget_s, 20, 2000));
}

}  // namespace probes

namespace {

// 2: read/copy/triad bandwidth kinds and model-shape matmul rates; entries of 1 came from a probe
// that read 57% of an H200's bandwidth, so they are measured again.
constexpr int cache_schema_version = 2;

nlohmann::ordered_json ceilings_json(const ceilings & c) {
    nlohmann::ordered_json j;
    j["backend"] = c.backend;
    j["device"] = c.device;
    j["mem_bw_bytes_per_s"] = c.mem_bw_bytes_per_s;
    j["mem_read_bytes_per_s"] = c.mem_read_bytes_per_s;
    j["mem_copy_bytes_per_s"] = c.mem_copy_bytes_per_s;
    j["mem_triad_bytes_per_s"] = c.mem_triad_bytes_per_s;
    j["mem_bw_kind"] = c.mem_bw_kind;
    j["mem_probe_bytes"] = c.mem_probe_bytes;
    j["matmul_f16_flops_per_s"] = c.matmul_f16_flops_per_s;
    j["matmul_quant_flops_per_s"] = c.matmul_quant_flops_per_s;
    j["quant_type"] = c.quant_type;
    j["launch_overhead_s"] = c.launch_overhead_s;
    j["n_threads"] = c.n_threads;
    j["source"] = c.source;
    j["probed_at"] = c.probed_at;
    return j;
}

ceilings ceilings_from_json(const nlohmann::json & j) {
    ceilings c;
    c.backend = j.value("backend", "");
    c.device = j.value("device", "");
    c.mem_bw_bytes_per_s = j.value("mem_bw_bytes_per_s", 0.0);
    c.mem_read_bytes_per_s = j.value("mem_read_bytes_per_s", 0.0);
    c.mem_copy_bytes_per_s = j.value("mem_copy_bytes_per_s", 0.0);
    c.mem_triad_bytes_per_s = j.value("mem_triad_bytes_per_s", 0.0);
    c.mem_bw_kind = j.value("mem_bw_kind", "");
    c.mem_probe_bytes = j.value("mem_probe_bytes", int64_t{0});
    c.matmul_f16_flops_per_s = j.value("matmul_f16_flops_per_s", 0.0);
    c.matmul_quant_flops_per_s = j.value("matmul_quant_flops_per_s", 0.0);
    c.quant_type = j.value("quant_type", "");
    c.launch_overhead_s = j.value("launch_overhead_s", 0.0);
    c.n_threads = j.value("n_threads", 0);
    c.source = j.value("source", "measured");
    c.probed_at = j.value("probed_at", "");
    return c;
}

nlohmann::json read_cache(const std::filesystem::path & path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return nlohmann::json::object();
    try {
        auto j = nlohmann::json::parse(fs::read_file(path));
        if (j.value("schema_version", 0) == cache_schema_version && j.contains("entries")) return j;
        log::warn("{}: written by another infermeter version; probing again", path.string());
    } catch (const std::exception & e) {
        log::warn("{}: unreadable ({}); probing again (delete it to silence this)", path.string(), e.what());
    }
    return nlohmann::json::object();
}

// Big enough to be compute-bound on the device (arithmetic intensity ~n FLOP per weight byte), small
// enough to finish in well under a second per repetition.
struct matmul_shape {
    int m, n, k;
};
std::string device_key(const system_info & sys, const resolved_device & dev, int nt) {
    return fmt::format("{}|{}|{}|{}|t{}", sys.hostname, sys.cpu_model, dev.backend, dev.description, nt);
}

void write_cache(const std::filesystem::path & path, nlohmann::json & cache) {
    try {
        fs::write_atomic(path, cache.dump(2) + "\n");
    } catch (const error & e) {
        log::warn("could not cache hardware ceilings: {}", e.what());
    }
}

matmul_shape shape_for(bool is_cpu) { return is_cpu ? matmul_shape{2048, 512, 2048} : matmul_shape{8192, 4096, 8192}; }

}  // namespace

ceilings probe(const std::string & device_name, int n_threads, bool reprobe, ggml_type quant_type) {
    const resolved_device dev = resolve_device(device_name);
    if (ggml_quantize_requires_imatrix(quant_type) || !ggml_is_quantized(quant_type)) {
        log::info("probe: {} cannot be probed without an importance matrix or is not quantized; probing q4_K instead",
                  ggml_type_name(quant_type));
        quant_type = GGML_TYPE_Q4_K;
    }
    const int nt = dev.is_cpu ? resolve_threads(n_threads) : 0;
    const system_info sys = describe_system();
    const std::string key = fmt::format("{}|{}", device_key(sys, dev, nt), ggml_type_name(quant_type));
    const auto path = fs::cache_dir() / "hardware.json";
    nlohmann::json cache = read_cache(path);
    if (!reprobe && cache.contains("entries") && cache["entries"].contains(key)) {
        ceilings c = ceilings_from_json(cache["entries"][key]);
        log::info("hardware ceilings of {} ({}) from {} (probed {}; --reprobe measures again)", dev.name,
                  dev.description, path.string(), c.probed_at);
        return c;
    }

    ceilings c;
    c.backend = dev.backend;
    c.device = dev.description;
    c.quant_type = ggml_type_name(quant_type);
    c.n_threads = nt;
    c.source = "measured";
    if (dev.is_cpu) {
        // Each array >= 8x the last-level cache and >= 512 MiB (STREAM asks for 4x; a VM may report
        // a fraction of the host's L3), three arrays within an eighth of memory (so on a small
        // machine with a large L3 the factor can drop to ~4x).
        // sysfs may show one CCX's L3 while CPUID (sysconf) reports the socket's: the larger counts.
        uint64_t llc = sys.llc_bytes();
#ifdef _SC_LEVEL3_CACHE_SIZE
        if (const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE); l3 > 0) llc = std::max<uint64_t>(llc, static_cast<uint64_t>(l3));
#endif
        size_t bytes = std::max<size_t>(512ull << 20, 8 * llc);
        if (sys.memory_total_bytes > 0) bytes = std::min<size_t>(bytes, sys.memory_total_bytes / 24);
        bytes = std::max<size_t>(bytes, 64ull << 20);
        log::info("probing {} memory bandwidth: read, copy, triad; {} threads, 3 x {} MiB ...", dev.name, nt, bytes >> 20);
        const auto bw = probes::cpu_bandwidth(nt, bytes, 3.0);
        c.mem_read_bytes_per_s = bw.read_bytes_per_s;
        c.mem_copy_bytes_per_s = bw.copy_bytes_per_s;
        c.mem_triad_bytes_per_s = bw.triad_bytes_per_s;
        c.mem_probe_bytes = static_cast<int64_t>(bytes);
    } else {
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(find_device(dev.name), &free, &total);
        // Two tensors live at once: each at most an eighth of free memory, 1 GiB when >= 16 GiB are
        // free (H200 L2: 60 MiB, so ~17x), never below 64 MiB.
        size_t bytes = free > 0 ? std::min<size_t>(1ull << 30, free / 8) : (256ull << 20);
        bytes = std::max<size_t>(bytes, 64ull << 20);
        log::info("probing {} memory bandwidth: ggml sum, copy, add; 2 x {} MiB tensors ...", dev.name, bytes >> 20);
        const auto bw = probes::ggml_bandwidth(dev.name, nt, bytes, 2.0);
        c.mem_read_bytes_per_s = bw.read_bytes_per_s;
        c.mem_copy_bytes_per_s = bw.copy_bytes_per_s;
        c.mem_triad_bytes_per_s = bw.add_bytes_per_s;
        c.mem_probe_bytes = static_cast<int64_t>(bytes);
    }
    c.mem_bw_bytes_per_s = 0.0;
    for (const auto & [kind, v] : {std::pair<const char *, double>{"read", c.mem_read_bytes_per_s},
                                   {"copy", c.mem_copy_bytes_per_s},
                                   {"triad", c.mem_triad_bytes_per_s}}) {
        if (v > c.mem_bw_bytes_per_s) {
            c.mem_bw_bytes_per_s = v;
            c.mem_bw_kind = kind;
        }
    }
    const auto shape = shape_for(dev.is_cpu);
    log::info("probing {} matmul rate: {}x{}x{}, f16 and {} weights ...", dev.name, shape.m, shape.n, shape.k,
              c.quant_type);
    c.matmul_f16_flops_per_s = probes::ggml_matmul(dev.name, nt, GGML_TYPE_F16, shape.m, shape.n, shape.k, 0.6);
    c.matmul_quant_flops_per_s = probes::ggml_matmul(dev.name, nt, quant_type, shape.m, shape.n, shape.k, 0.6);
    c.launch_overhead_s = probes::ggml_launch_overhead(dev.name, nt, 0.2);
    c.probed_at = clock::rfc3339_now();
    if (c.mem_bw_bytes_per_s <= 0 || (c.matmul_f16_flops_per_s <= 0 && c.matmul_quant_flops_per_s <= 0)) {
        throw_runtime("probe of {} ({}) measured nothing usable; pass --device-spec \"bw=...,flops=...\" instead",
                      dev.name, dev.description);
    }
    log::info("{}: bandwidth {} ({}; read {}, copy {}, triad {})", dev.name, format_bytes_per_s(c.mem_bw_bytes_per_s),
              c.mem_bw_kind, format_bytes_per_s(c.mem_read_bytes_per_s), format_bytes_per_s(c.mem_copy_bytes_per_s),
              format_bytes_per_s(c.mem_triad_bytes_per_s));
    log::info("{}: bandwidth {}, matmul f16 {}, {} {}, launch+sync {:.1f} us", dev.name,
              format_bytes_per_s(c.mem_bw_bytes_per_s), format_flops_per_s(c.matmul_f16_flops_per_s), c.quant_type,
              format_flops_per_s(c.matmul_quant_flops_per_s), c.launch_overhead_s * 1e6);

    // Probes cut short by SIGINT/SIGTERM may have measured less than they should: never cache them.
    if (interrupt::requested()) {
        log::warn("probe of {} interrupted: its ceilings are used for this run only; {} was left as it was", dev.name,
                  path.string());
        return c;
    }
    if (!cache.contains("entries")) cache = {{"schema_version", cache_schema_version}, {"entries", nlohmann::json::object()}};
    cache["entries"][key] = ceilings_json(c);
    write_cache(path, cache);
    return c;
}

void probe_model_matmuls(ceilings & c, const std::string & device_name, int n_threads, bool reprobe,
                         const std::vector<model::weight_matrix> & shapes, std::vector<int> n_cols) {
    if (shapes.empty() || c.source != "measured") return;
    const resolved_device dev = resolve_device(device_name);
    const int nt = dev.is_cpu ? resolve_threads(n_threads) : 0;
    std::string signature;
    for (const auto & w : shapes) {
        signature += fmt::format("{}{} {} {}x{}", signature.empty() ? "" : ", ", w.name.substr(0, w.name.rfind(".weight")),
                                 ggml_type_name(w.type), w.k, w.m);
    }
    c.matmul_model_shapes = signature;
    c.matmul_model.clear();
    std::sort(n_cols.begin(), n_cols.end());
    n_cols.erase(std::unique(n_cols.begin(), n_cols.end()), n_cols.end());
    // "layers": measured as one graph of many layers' weights (before: one matmul per graph, too low on a GPU).
    const std::string base = fmt::format("{}|layers|{}", device_key(describe_system(), dev, nt), signature);
    const auto path = fs::cache_dir() / "hardware.json";
    nlohmann::json cache = read_cache(path);
    if (!cache.contains("entries")) cache = {{"schema_version", cache_schema_version}, {"entries", nlohmann::json::object()}};
    if (!cache.contains("matmul_at_shapes")) cache["matmul_at_shapes"] = nlohmann::json::object();
    bool changed = false;
    for (int n : n_cols) {
        if (n < 1) continue;
        const std::string key = fmt::format("{}|n{}", base, n);
        double rate = 0.0;
        if (!reprobe && cache["matmul_at_shapes"].contains(key)) {
            rate = cache["matmul_at_shapes"][key].get<double>();
        } else {
            log::info("probing {} matmul at the model's shapes, N = {} ({}) ...", dev.name, n, signature);
            rate = probes::ggml_matmul_shapes(dev.name, nt, shapes, n, 0.5);
            if (rate > 0 && !interrupt::requested()) {
                cache["matmul_at_shapes"][key] = rate;
                changed = true;
            }
        }
        if (rate > 0) c.matmul_model.push_back({n, rate});
    }
    if (changed) write_cache(path, cache);
}

}  // namespace im::hardware
