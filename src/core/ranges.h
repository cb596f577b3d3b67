#pragma once

#include <string>
#include <vector>

namespace im {

// Parses a sweep the way llama-bench does: "1,2,4,8", "1-64*2" (×2 steps), "1-8+1" (+1 steps),
// "1-4" (+1), and combinations "1,16-64*2". Throws a usage error naming `flag` on bad input or
// on a value below `min_value`.
std::vector<int> parse_int_list(const std::string & text, const std::string & flag, int min_value = 1);

// Splits "a,b,c" into trimmed non-empty items.
std::vector<std::string> split_list(const std::string & text, char sep = ',');

}  // namespace im
