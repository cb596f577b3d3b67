// libFuzzer target for --device-spec and --observed: any text is parsed into finite, bounded
// numbers or refused with a usage error naming the flag.
#include "core/error.h"
#include "fuzz_common.h"
#include "hardware/roofline.h"
#include "hardware/specs.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    im::fuzz::quiet();
    const std::string text(reinterpret_cast<const char *>(data), size);
    try {
        if (const auto c = im::hardware::parse_device_spec(text)) {
            for (double v : {c->mem_bw_bytes_per_s, c->matmul_f16_flops_per_s, c->matmul_quant_flops_per_s}) {
                if (!std::isfinite(v) || v <= 0) __builtin_trap();
            }
            (void) im::hardware::format_bytes_per_s(c->mem_bw_bytes_per_s);
            (void) im::hardware::format_flops_per_s(c->matmul_f16_flops_per_s);
        }
    } catch (const im::error & e) {
        if (e.kind() != im::error_kind::usage) __builtin_trap();
    }
    try {
        for (const auto & o : im::hardware::parse_observation(text)) {
            if (!std::isfinite(o.tokens_per_s) || o.tokens_per_s <= 0 || o.workers < 1) __builtin_trap();
            if (!std::isfinite(o.mean_depth_tokens) || o.mean_depth_tokens < 0) __builtin_trap();
        }
    } catch (const im::error & e) {
        if (e.kind() != im::error_kind::usage) __builtin_trap();
    }
    return 0;
}
