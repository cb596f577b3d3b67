#pragma once

#include <cstdint>

namespace im::process {

// Resident memory of this process in bytes: /proc/self/statm on Linux, task_info on macOS; 0 where
// neither is available (callers print "not available here").
uint64_t rss_bytes();

}  // namespace im::process
