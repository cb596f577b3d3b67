#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// What a model split over several devices moves between them per step, and how much of a measured step
// those transfers explain (issue 12; exact definitions in docs/metrics.md "Split analysis" and
// docs/scale-out.md). Pure arithmetic on the model's shape, llama.cpp's placement and probed links;
// thread-safe.
namespace im::predict {

enum class split_kind { layer, row };

// One device of the run in llama.cpp's device order, as the load log placed it (engine::llama::device_use).
struct split_device {
    std::string name;          // ggml's device name: "RPC0", "CUDA1", "CPU"
    bool host = false;         // the CPU: where the client's own memory (and the input layer) lives
    bool rpc = false;          // reached over the network through ggml-rpc
    std::vector<int> layers;   // repeating layers it holds
    bool input = false;        // the input layer (token embeddings)
    bool output = false;       // the output layer (norm and the n_vocab x n_embd matrix)
};

struct split_shape {
    int n_layer = 0;
    int n_embd = 0;
    int n_vocab = 0;
    // Row split: the (input width k, output width m) of each 2-D weight of one block (attention and FFN).
    std::vector<std::pair<int64_t, int64_t>> layer_matmuls;
};

// One leg of a crossing: bytes over the link between the host and `device` (or, for a local
// device-to-device copy, from `device` to `peer`), in one direction.
struct split_leg {
    std::string device;
    std::string peer;          // non-empty: a device-to-device copy (local GPUs, no host in between)
    bool up = false;           // host -> device (a set); false: device -> host (a get)
};

// Data that crosses from one device to another once per ubatch: `bytes_per_token` per token of the
// ubatch (activations) or per output (logits, the last hidden state), over each of `legs` (a crossing
// between two RPC servers goes through the client: down from one, up to the other).
struct split_crossing {
    std::string from, to;      // device names
    std::string what;          // "hidden state after layer 13", "logits", "row-split matmul inputs", ...
    double bytes_per_token = 0;
    bool per_output = false;   // scales with the ubatch's outputs, not its tokens
    std::vector<split_leg> legs;
    // Synchronous waits on `rtt_device`'s link per ubatch: the reader blocks until the data is back
    // (a get from a remote or local device); a set is queued without a wait.
    int round_trips = 0;
    std::string rtt_device;
};

struct split_plan {
    split_kind kind = split_kind::layer;
    std::vector<split_crossing> crossings;  // in graph order
    int n_devices = 0;                      // devices that hold part of the model
    bool estimate = false;                  // the placement was derived, not read from llama.cpp's log
    std::string note;                       // how the placement was known, what the plan leaves out
};

// Layer split: walks input, layers 0..n_layer-1 and output in order; wherever two consecutive parts sit
// on different devices, the hidden state (n_embd x 4 B per token; per output before the output layer,
// which llama.cpp's last layer prunes to the outputs) crosses, and after the output layer the logits
// (n_vocab x 4 B per output) come back to the host unless the host holds it.
// Row split: every weight matmul's input goes from the main device to each other one (k x 4 B per token)
// and each other device's rows of the result come back (share x m x 4 B per token), `shares` the -ts
// proportions over the devices (equal when empty), then the layer-split crossings of input and output.
split_plan plan_split(const split_shape & shape, const std::vector<split_device> & devices, split_kind kind,
                      const std::vector<float> & shares = {}, int main_device = 0);

// One step: `tokens` tokens with `outputs` logits rows, in ubatches of at most `n_ubatch` tokens.
struct split_step {
    int64_t tokens = 0;
    int64_t outputs = 0;
    int n_ubatch = 512;
};
int64_t n_ubatches(const split_step & s);  // ceil(tokens / n_ubatch), at least 1
// Bytes that cross a link in one step, summed over crossings and their legs.
double bytes_per_step(const split_plan & p, const split_step & s);
int round_trips_per_step(const split_plan & p, const split_step & s);

// A probed link (hardware/link_probe.h): the host <-> `device` path, or `device` -> `peer`.
struct link_rate {
    std::string device;
    std::string peer;                  // non-empty: a device-to-device copy
    double rtt_s = 0;                  // median of a tiny synchronous get
    double up_bytes_per_s = 0;         // host -> device (device -> peer for a copy)
    double down_bytes_per_s = 0;       // device -> host
};

// Transfer time of one step: sum over legs of bytes / the leg's probed rate, plus round trips x the
// probed RTT of their link. A leg without a probed link or rate counts as 0 (and `missing` names it).
struct transfer_estimate {
    double bytes = 0;
    int round_trips = 0;
    double bytes_s = 0;                // time of the bytes at the probed rates
    double round_trips_s = 0;          // round trips x RTT
    double transfer_s() const { return bytes_s + round_trips_s; }
    std::vector<std::string> missing;  // links the plan needs that no probe measured
};
transfer_estimate estimate_transfer(const split_plan & p, const split_step & s, const std::vector<link_rate> & links);

// One measured step attributed: transfer share of the step and, with a single-device step time of the
// same step, the rest of the difference ("lost overlap / other": step - baseline - transfer).
struct split_attribution {
    std::string step;                  // "tg", "pp128", "decode W=4", "prefill W=4"
    double step_s = 0;                 // measured, one step
    transfer_estimate transfer;
    double share = 0;                  // transfer / step (0 when step_s is 0)
    std::optional<double> baseline_s;  // the same step on one device
    std::optional<double> other_s;     // step - baseline - transfer (negative: the transfers overlap)
};
split_attribution attribute(const std::string & step, double step_s, const split_plan & p, const split_step & s,
                            const std::vector<link_rate> & links, std::optional<double> baseline_s = std::nullopt);

}  // namespace im::predict
