#pragma once

// Shared by the libFuzzer targets: quiet logging and a cursor over the fuzz input.
#include "core/log.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace im::fuzz {

inline void quiet() {
    static const bool once = [] {
        im::log::set_quiet(true);
        return true;
    }();
    (void) once;
}

// Splits the input at '\n' (the last piece runs to the end): one fuzzed string per field.
struct lines {
    std::string_view rest;
    lines(const uint8_t * data, size_t size) : rest(reinterpret_cast<const char *>(data), size) {}
    std::string next() {
        const size_t nl = rest.find('\n');
        std::string out(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        return out;
    }
    bool empty() const { return rest.empty(); }
};

}  // namespace im::fuzz
