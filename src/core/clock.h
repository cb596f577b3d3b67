#pragma once

#include <cstdint>
#include <string>

namespace im::clock {

// Monotonic nanoseconds (steady_clock) for every measured interval.
int64_t now_ns();
// Wall-clock time as RFC 3339 in UTC, e.g. "2026-11-26T14:18:35Z".
std::string rfc3339_now();

}  // namespace im::clock
