#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace im::clock {

// Monotonic nanoseconds (steady_clock) for every measured interval.
int64_t now_ns();
// Wall-clock time as RFC 3339 in UTC, e.g. "2026-11-26T14:18:35Z".
std::string rfc3339_now();
// Wall-clock nanoseconds since the Unix epoch (system_clock): what aligns processes on several hosts.
int64_t unix_ns();
// An instant as Unix nanoseconds from RFC 3339 ("2026-12-03T12:00:00Z", fractional seconds and a
// "+01:00" offset accepted) or epoch seconds ("1796299200", "1796299200.5"); nullopt when it is neither.
std::optional<int64_t> parse_instant(const std::string & text);
// Unix nanoseconds as RFC 3339 UTC with milliseconds, e.g. "2026-12-03T12:00:00.250Z".
std::string rfc3339_ms(int64_t unix_ns);

}  // namespace im::clock
