// libFuzzer target for `model synth` / `dataset synth` arguments: synth: references, custom shapes
// (--layers --embd --ff --heads --kv-heads --arch) and length distributions (--prompt-tokens): a
// valid value or a usage error, never a crash, and a validated shape never overflows its sizes.
#include "core/error.h"
#include "dataset/synth.h"
#include "fuzz_common.h"
#include "model/preset.h"
#include "model/quant.h"
#include "model/ref.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    im::fuzz::quiet();
    im::fuzz::lines in(data, size);
    const auto usage_only = [](const im::error & e) {
        if (e.kind() != im::error_kind::usage) __builtin_trap();
    };
    try {
        (void) im::model::parse_synth_ref(in.next());
    } catch (const im::error & e) {
        usage_only(e);
    }
    (void) im::model::ftype_from_name(in.next());
    try {
        const auto d = im::dataset::parse_distribution(in.next(), "--prompt-tokens");
        for (double u : {0.0, 0.001, 0.5, 0.999, 1.0}) {
            const int32_t n = im::dataset::length_quantile(d, u);
            if (n < d.min_tokens || n > d.max_tokens) __builtin_trap();
        }
    } catch (const im::error & e) {
        usage_only(e);
    }
    // A custom shape from the next 24 bytes.
    int32_t v[6] = {};
    const std::string raw = in.next();
    std::memcpy(v, raw.data(), std::min(raw.size(), sizeof v));
    im::model::shape s;
    s.arch = (v[5] & 1) ? "llama" : "qwen2";
    s.n_layer = v[0];
    s.n_embd = v[1];
    s.n_ff = v[2];
    s.n_head = v[3];
    s.n_head_kv = v[4];
    try {
        im::model::validate(s);
        (void) im::model::n_params(s, 151936);
    } catch (const im::error & e) {
        usage_only(e);
    }
    return 0;
}
