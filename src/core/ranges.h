#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace im {

// Most values one list or range flag may expand to: a sweep longer than this would never finish,
// and counting first means "1-2000000000" is refused before anything is allocated.
constexpr size_t max_list_values = 4096;

// Parses a sweep the way llama-bench does: "1,2,4,8", "1-64*2" (×2 steps), "1-8+1" (+1 steps),
// "1-4" (+1), and combinations "1,16-64*2". Ranges are counted before they are expanded. Throws a
// usage error naming `flag` on bad input, on a value outside [min_value, max_value], and when the
// list would hold more than max_list_values values.
std::vector<int> parse_int_list(const std::string & text, const std::string & flag, int min_value = 1,
                                int max_value = INT32_MAX);

// Splits "a,b,c" into trimmed non-empty items.
std::vector<std::string> split_list(const std::string & text, char sep = ',');

// The most CPU threads a flag may ask for: 4 × the logical CPUs, and never more than 512 (ggml's
// GGML_MAX_N_THREADS). Oversubscribing further measures the scheduler, and 100,000 threads crashed
// inside libgomp.
int max_threads();
// Checks a -t value (0 means "default" where `zero_is_default`); throws a usage error naming
// `flag` and the bound.
void check_threads(int64_t n, const std::string & flag, bool zero_is_default = true);

// Checks that `v` lies in [lo, hi]; throws a usage error "FLAG: V is out of range (LO..HI)" with
// `why` appended when given.
void check_range(int64_t v, const std::string & flag, int64_t lo, int64_t hi, const std::string & why = "");

}  // namespace im
