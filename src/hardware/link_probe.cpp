#include "hardware/link_probe.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/stats.h"

#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>

namespace im::hardware {

namespace {

// A 1-D byte tensor in its own buffer on a device.
class device_tensor {
  public:
    device_tensor(ggml_backend_dev_t dev, const std::string & name, size_t bytes) {
        ggml_init_params ip{ggml_tensor_overhead() * 2, nullptr, true};
        ctx_ = ggml_init(ip);
        IM_CHECK(ctx_ != nullptr);
        tensor_ = ggml_new_tensor_1d(ctx_, GGML_TYPE_I8, static_cast<int64_t>(bytes));
        buffer_ = ggml_backend_buft_alloc_buffer(ggml_backend_dev_buffer_type(dev), bytes);
        if (!buffer_) {
            ggml_free(ctx_);
            throw_runtime("link probe: cannot allocate {} B on {}", bytes, name);
        }
        ggml_backend_tensor_alloc(buffer_, tensor_, ggml_backend_buffer_get_base(buffer_));
    }
    ~device_tensor() {
        ggml_backend_buffer_free(buffer_);
        ggml_free(ctx_);
    }
    device_tensor(const device_tensor &) = delete;
    device_tensor & operator=(const device_tensor &) = delete;
    ggml_tensor * get() const { return tensor_; }

  private:
    ggml_context * ctx_ = nullptr;
    ggml_tensor * tensor_ = nullptr;
    ggml_backend_buffer_t buffer_ = nullptr;
};

constexpr size_t tiny_bytes = 16;

double seconds_since(int64_t t0) { return static_cast<double>(clock::now_ns() - t0) * 1e-9; }

double median(std::vector<double> v) { return stats::percentile(std::move(v), 50); }

// bytes / (t - rtt), t floored at a tenth of itself: a rate is never infinite.
double rate_of(size_t bytes, double t, double rtt) {
    return static_cast<double>(bytes) / std::max(t - rtt, t * 0.1);
}

}  // namespace

std::vector<predict::link_rate> probe_links(const std::vector<link_probe_device> & devices, const link_probe_options & opt) {
    std::vector<predict::link_rate> out;
    std::vector<uint8_t> host(opt.bulk_bytes), back(opt.bulk_bytes);
    std::mt19937 rng(12);
    struct probed {
        link_probe_device d;
        ggml_backend_dev_t dev;
        std::unique_ptr<device_tensor> tiny, bulk;
    };
    std::vector<probed> live;
    for (const auto & d : devices) {
        ggml_backend_dev_t dev = ggml_backend_dev_by_name(d.name.c_str());
        if (!dev || ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU) continue;
        probed p{d, dev, std::make_unique<device_tensor>(dev, d.name, tiny_bytes),
                 std::make_unique<device_tensor>(dev, d.name, opt.bulk_bytes)};
        predict::link_rate r;
        r.device = d.name;
        uint8_t tiny[tiny_bytes] = {};
        ggml_backend_tensor_set(p.tiny->get(), tiny, 0, tiny_bytes);
        for (int i = 0; i < 5; ++i) ggml_backend_tensor_get(p.tiny->get(), tiny, 0, tiny_bytes);  // warm
        std::vector<double> rtt;
        for (int i = 0; i < std::max(1, opt.rtt_reps); ++i) {
            const int64_t t0 = clock::now_ns();
            ggml_backend_tensor_get(p.tiny->get(), tiny, 0, tiny_bytes);
            rtt.push_back(seconds_since(t0));
        }
        r.rtt_s = median(rtt);
        std::vector<double> up, down;
        for (int i = 0; i < std::max(1, opt.bulk_reps); ++i) {
            // fresh bytes each time: no layer below may skip a transfer it has seen
            for (size_t j = 0; j < host.size(); j += 64) host[j] = static_cast<uint8_t>(rng());
            int64_t t0 = clock::now_ns();
            ggml_backend_tensor_set(p.bulk->get(), host.data(), 0, host.size());
            ggml_backend_tensor_get(p.tiny->get(), tiny, 0, tiny_bytes);  // waits for the set: one round trip
            up.push_back(rate_of(host.size(), seconds_since(t0), r.rtt_s));
            t0 = clock::now_ns();
            ggml_backend_tensor_get(p.bulk->get(), back.data(), 0, back.size());
            down.push_back(rate_of(back.size(), seconds_since(t0), r.rtt_s));
        }
        r.up_bytes_per_s = median(up);
        r.down_bytes_per_s = median(down);
        out.push_back(r);
        live.push_back(std::move(p));
    }
    // Local devices copy among themselves (peer to peer where the backend can); RPC servers do not.
    for (auto & a : live) {
        for (auto & b : live) {
            if (&a == &b || a.d.rpc || b.d.rpc) continue;
            predict::link_rate r;
            r.device = a.d.name;
            r.peer = b.d.name;
            uint8_t tiny[tiny_bytes];
            std::vector<double> copy;
            for (int i = 0; i < std::max(1, opt.bulk_reps) + 1; ++i) {
                const int64_t t0 = clock::now_ns();
                ggml_backend_tensor_copy(a.bulk->get(), b.bulk->get());
                ggml_backend_tensor_get(b.tiny->get(), tiny, 0, tiny_bytes);
                if (i > 0) copy.push_back(rate_of(opt.bulk_bytes, seconds_since(t0), 0));  // the first warms
            }
            r.up_bytes_per_s = r.down_bytes_per_s = median(copy);
            out.push_back(r);
        }
    }
    return out;
}

}  // namespace im::hardware
