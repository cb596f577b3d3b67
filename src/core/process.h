#pragma once

#include <cstdint>

namespace im::process {

// Resident memory of this process in bytes: /proc/self/statm on Linux, task_info on macOS; 0 where
// neither is available (callers print "not available here").
uint64_t rss_bytes();
// User + system CPU seconds this process has used (all threads), from getrusage (Linux and macOS);
// a negative value where getrusage is not available.
double cpu_seconds();

}  // namespace im::process
