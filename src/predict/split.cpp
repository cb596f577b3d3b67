#include "predict/split.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace im::predict {

namespace {

constexpr double f32_bytes = 4;  // activations and logits cross as f32

// Where each part of the graph runs: input, layers 0..n_layer-1, output. A part no device claims stays on
// the host (llama.cpp keeps what it does not offload on the CPU).
struct stage {
    const split_device * device = nullptr;
    int layer = -1;  // -1: input, n_layer: output
};

const split_device * host_of(const std::vector<split_device> & devices) {
    for (const auto & d : devices) {
        if (d.host) return &d;
    }
    return nullptr;
}

bool on_host(const split_device * d) { return d == nullptr || d->host; }
std::string name_of(const split_device * d) { return d ? d->name : "CPU"; }

// The hidden state (or logits) moving from `a` to `b`: its legs and the synchronous waits it costs.
split_crossing crossing(const split_device * a, const split_device * b, std::string what, double bytes_per_token,
                        bool per_output) {
    split_crossing c;
    c.from = name_of(a);
    c.to = name_of(b);
    c.what = std::move(what);
    c.bytes_per_token = bytes_per_token;
    c.per_output = per_output;
    if (on_host(a)) {
        c.legs.push_back({b->name, "", true});
    } else if (on_host(b)) {
        c.legs.push_back({a->name, "", false});
    } else if (a->rpc || b->rpc) {
        // ggml-rpc copies between tensors of one server only; between two it goes through the client.
        c.legs.push_back({a->name, "", false});
        c.legs.push_back({b->name, "", true});
    } else {
        c.legs.push_back({a->name, b->name, true});
    }
    // Reading from a remote device, or back to the host, blocks until the data is there; a local
    // device-to-device copy is ordered by events on the devices' streams, without the host waiting.
    if (!on_host(a) && (a->rpc || on_host(b))) {
        c.round_trips = 1;
        c.rtt_device = a->name;
    }
    return c;
}

void walk_layers(const split_shape & shape, const std::vector<stage> & stages, split_plan & p) {
    const double hidden = shape.n_embd * f32_bytes;
    for (size_t i = 1; i < stages.size(); ++i) {
        const auto * a = stages[i - 1].device;
        const auto * b = stages[i].device;
        if (name_of(a) == name_of(b)) continue;
        const int layer = stages[i].layer;
        if (layer == 0) {
            p.crossings.push_back(crossing(a, b, "input hidden state", hidden, false));
        } else if (layer == shape.n_layer) {
            // llama.cpp's last layer keeps only the rows of the outputs (inp_out_ids) before the output layer.
            p.crossings.push_back(crossing(a, b, fmt::format("hidden state after layer {}", layer - 1), hidden, true));
        } else {
            p.crossings.push_back(crossing(a, b, fmt::format("hidden state after layer {}", layer - 1), hidden, false));
        }
    }
    const auto * out = stages.back().device;
    if (!on_host(out)) {
        p.crossings.push_back(crossing(out, nullptr, "logits", shape.n_vocab * f32_bytes, true));
    }
}

}  // namespace

split_plan plan_split(const split_shape & shape, const std::vector<split_device> & devices, split_kind kind,
                      const std::vector<float> & shares, int main_device) {
    split_plan p;
    p.kind = kind;
    const split_device * host = host_of(devices);
    std::vector<const split_device *> holders;  // off-host devices holding part of the model
    for (const auto & d : devices) {
        if (!d.host && (!d.layers.empty() || d.output)) holders.push_back(&d);
    }
    p.n_devices = static_cast<int>(holders.size()) +
                  (host && (!host->layers.empty() || host->output) ? 1 : 0);
    if (kind == split_kind::layer) {
        std::vector<stage> stages;
        const split_device * input = host;
        for (const auto & d : devices) {
            if (d.input) input = &d;
        }
        stages.push_back({input, -1});
        for (int l = 0; l < shape.n_layer; ++l) {
            const split_device * at = host;
            for (const auto & d : devices) {
                if (std::find(d.layers.begin(), d.layers.end(), l) != d.layers.end()) at = &d;
            }
            stages.push_back({at, l});
        }
        const split_device * output = host;
        for (const auto & d : devices) {
            if (d.output) output = &d;
        }
        stages.push_back({output, shape.n_layer});
        walk_layers(shape, stages, p);
        return p;
    }
    // Row split: the weight matrices of every layer are cut by rows over the devices; the rest of the
    // graph runs on the main device (llama.cpp's -sm row with -mg).
    std::vector<const split_device *> split_devs;
    for (const auto & d : devices) {
        if (!d.host) split_devs.push_back(&d);
    }
    if (split_devs.empty()) return p;
    p.n_devices = static_cast<int>(split_devs.size());
    const size_t main_i = std::min<size_t>(static_cast<size_t>(std::max(main_device, 0)), split_devs.size() - 1);
    const auto * main = split_devs[main_i];
    std::vector<double> share(split_devs.size(), 1.0 / static_cast<double>(split_devs.size()));
    if (shares.size() >= split_devs.size()) {
        const double sum = std::accumulate(shares.begin(), shares.begin() + static_cast<long>(split_devs.size()), 0.0);
        if (sum > 0) {
            for (size_t i = 0; i < split_devs.size(); ++i) share[i] = shares[i] / sum;
        }
    }
    double k_sum = 0, m_sum = 0;
    for (const auto & [k, m] : shape.layer_matmuls) {
        k_sum += static_cast<double>(k);
        m_sum += static_cast<double>(m);
    }
    std::vector<stage> stages{{host, -1}};
    for (int l = 0; l < shape.n_layer; ++l) stages.push_back({main, l});
    stages.push_back({main, shape.n_layer});
    split_plan outer;
    walk_layers(shape, stages, outer);
    if (!outer.crossings.empty()) p.crossings.push_back(outer.crossings.front());  // the input going up
    for (size_t i = 0; i < split_devs.size(); ++i) {
        if (i == main_i || share[i] <= 0) continue;
        const auto * d = split_devs[i];
        split_crossing in{main->name, d->name, "row-split matmul inputs", shape.n_layer * k_sum * f32_bytes, false,
                          {{main->name, d->name, true}}, 0, ""};
        split_crossing back{d->name, main->name, "row-split partial results", shape.n_layer * share[i] * m_sum * f32_bytes,
                            false, {{d->name, main->name, true}}, 0, ""};
        p.crossings.push_back(in);
        p.crossings.push_back(back);
    }
    for (size_t i = 1; i < outer.crossings.size(); ++i) p.crossings.push_back(outer.crossings[i]);
    return p;
}

int64_t n_ubatches(const split_step & s) {
    const int64_t ub = std::max(1, s.n_ubatch);
    return std::max<int64_t>(1, (s.tokens + ub - 1) / ub);
}

namespace {
double crossing_bytes(const split_crossing & c, const split_step & s) {
    return c.bytes_per_token * static_cast<double>(c.per_output ? s.outputs : s.tokens);
}
}  // namespace

double bytes_per_step(const split_plan & p, const split_step & s) {
    double b = 0;
    for (const auto & c : p.crossings) b += crossing_bytes(c, s) * static_cast<double>(c.legs.size());
    return b;
}

int round_trips_per_step(const split_plan & p, const split_step & s) {
    int64_t n = 0;
    for (const auto & c : p.crossings) n += c.round_trips;
    return static_cast<int>(n * n_ubatches(s));
}

transfer_estimate estimate_transfer(const split_plan & p, const split_step & s, const std::vector<link_rate> & links) {
    transfer_estimate t;
    const auto find = [&](const std::string & device, const std::string & peer) -> const link_rate * {
        for (const auto & l : links) {
            if (l.device == device && l.peer == peer) return &l;
        }
        return nullptr;
    };
    const auto missing = [&](const std::string & what) {
        if (std::find(t.missing.begin(), t.missing.end(), what) == t.missing.end()) t.missing.push_back(what);
    };
    const int64_t ubatches = n_ubatches(s);
    for (const auto & c : p.crossings) {
        const double bytes = crossing_bytes(c, s);
        for (const auto & leg : c.legs) {
            t.bytes += bytes;
            const auto * l = find(leg.device, leg.peer);
            const double rate = !l ? 0 : leg.up ? l->up_bytes_per_s : l->down_bytes_per_s;
            if (rate > 0) {
                t.bytes_s += bytes / rate;
            } else {
                missing(leg.peer.empty() ? fmt::format("host {} {}", leg.up ? "->" : "<-", leg.device)
                                         : fmt::format("{} -> {}", leg.device, leg.peer));
            }
        }
        if (c.round_trips > 0) {
            const int n = static_cast<int>(c.round_trips * ubatches);
            t.round_trips += n;
            const auto * l = find(c.rtt_device, "");
            if (l && l->rtt_s > 0) {
                t.round_trips_s += n * l->rtt_s;
            } else {
                missing(fmt::format("round trip to {}", c.rtt_device));
            }
        }
    }
    return t;
}

split_attribution attribute(const std::string & step, double step_s, const split_plan & p, const split_step & s,
                            const std::vector<link_rate> & links, std::optional<double> baseline_s) {
    split_attribution a;
    a.step = step;
    a.step_s = step_s;
    a.transfer = estimate_transfer(p, s, links);
    a.share = step_s > 0 ? a.transfer.transfer_s() / step_s : 0;
    if (baseline_s && *baseline_s > 0) {
        a.baseline_s = baseline_s;
        a.other_s = step_s - *baseline_s - a.transfer.transfer_s();
    }
    return a;
}

}  // namespace im::predict
