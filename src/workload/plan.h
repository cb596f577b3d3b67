#pragma once

#include <cstdint>

// Context sizing for the parallel workload (DESIGN §2.3, normative).
namespace im::workload {

// Rounds up to a multiple of 256 cells.
constexpr int64_t pad256(int64_t x) { return (x + 255) / 256 * 256; }

// n_ctx = max(ctx_min, W · pad256(n_prompt + n_predict)): one KV stream per worker.
// With ctx_min 8192 and 128/4096: 8192, 8704, 17408, 34816 cells for W = 1, 2, 4, 8.
constexpr int64_t auto_n_ctx(int workers, int n_prompt, int n_predict, int64_t ctx_min = 0) {
    const int64_t need = workers * pad256(static_cast<int64_t>(n_prompt) + n_predict);
    return need > ctx_min ? need : ctx_min;
}

// Cells per sequence: n_ctx split evenly over W streams (non-unified), or all of it (unified).
constexpr int64_t n_ctx_seq(int64_t n_ctx, int workers, bool kv_unified) {
    return kv_unified ? n_ctx : n_ctx / workers;
}

// KV cache bytes of a context: cells × bytes per token (all layers, K and V).
constexpr uint64_t kv_bytes(int64_t n_ctx, uint64_t kv_bytes_per_token) {
    return static_cast<uint64_t>(n_ctx) * kv_bytes_per_token;
}

// llama.cpp reports its KV allocation in MiB with two decimals: agreement within that rounding.
constexpr bool kv_agrees(uint64_t computed_bytes, uint64_t reported_bytes) {
    const uint64_t diff = computed_bytes > reported_bytes ? computed_bytes - reported_bytes : reported_bytes - computed_bytes;
    return diff <= 1024 * 1024 / 100;
}

}  // namespace im::workload
