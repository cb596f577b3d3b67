// libFuzzer target for the list/range parser behind -w, -p, -n, -t, -b, ...: any text is a list
// within the bounds or a usage error, counted before it is expanded (never a huge allocation).
#include "core/error.h"
#include "core/ranges.h"
#include "fuzz_common.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    im::fuzz::quiet();
    if (size < 1) return 0;
    const int lo = static_cast<int8_t>(data[0]);  // bounds as the flags use them: -1, 0, 1, ...
    const int hi = (data[0] & 1) ? 100 : INT32_MAX;
    const std::string text(reinterpret_cast<const char *>(data + 1), size - 1);
    try {
        const auto v = im::parse_int_list(text, "-w", lo, hi);
        if (v.empty() || v.size() > im::max_list_values) __builtin_trap();
        for (int x : v) {
            if (x < lo || x > hi) __builtin_trap();
        }
    } catch (const im::error & e) {
        if (e.kind() != im::error_kind::usage) __builtin_trap();
    }
    for (const auto & item : im::split_list(text)) {
        if (item.empty()) __builtin_trap();
    }
    return 0;
}
