#pragma once

#include "predict/split.h"

#include <cstddef>
#include <string>
#include <vector>

// The links between the host and the devices a model is split over, measured through ggml's public
// backend API (issue 12; docs/scale-out.md "Split analysis"): per device the round-trip time of a tiny
// synchronous ggml_backend_tensor_get (median of many) and the throughput of a multi-MiB
// ggml_backend_tensor_set and get; per pair of local devices the throughput of ggml_backend_tensor_copy.
namespace im::hardware {

struct link_probe_device {
    std::string name;   // ggml device name: "RPC0", "CUDA1"
    bool rpc = false;   // a ggml-rpc-server's device (no device-to-device copies to other devices)
};

struct link_probe_options {
    int rtt_reps = 100;               // tiny gets timed; the median is the RTT
    size_t bulk_bytes = 8u << 20;     // below ggml-rpc's 10 MiB hash threshold: every set sends its bytes
    int bulk_reps = 3;                // median of these
};

// One link_rate per device that exists and is not the CPU, then one per ordered pair of local
// (non-RPC) devices. Throughputs are bytes / (time - one RTT): a set is followed by a tiny get that
// waits for it, a get is one request. Requires the devices to be registered (engine::init, --rpc) and,
// for an RPC server, this process to be its client already or the server idle (it serves one client).
// Throws a runtime error naming the device when a buffer cannot be allocated. Not thread-safe.
std::vector<predict::link_rate> probe_links(const std::vector<link_probe_device> & devices,
                                            const link_probe_options & opt = {});

}  // namespace im::hardware
