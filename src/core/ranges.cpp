#include "core/ranges.h"

#include "core/error.h"

#include <charconv>

namespace im {

std::vector<std::string> split_list(const std::string & text, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(sep, start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        const size_t a = item.find_first_not_of(" \t");
        const size_t b = item.find_last_not_of(" \t");
        if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
        start = end + 1;
    }
    return out;
}

static int to_int(const std::string & s, const std::string & flag, const std::string & whole) {
    int v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
        throw_usage("{}: '{}' is not a list of integers (examples: 1,2,4,8 or 1-64*2)", flag, whole);
    }
    return v;
}

std::vector<int> parse_int_list(const std::string & text, const std::string & flag, int min_value) {
    std::vector<int> out;
    for (const std::string & item : split_list(text)) {
        const size_t dash = item.find('-', 1);
        if (dash == std::string::npos) {
            out.push_back(to_int(item, flag, text));
        } else {
            const int first = to_int(item.substr(0, dash), flag, text);
            std::string rest = item.substr(dash + 1);
            char op = '+';
            int step = 1;
            const size_t op_pos = rest.find_first_of("*+");
            if (op_pos != std::string::npos) {
                op = rest[op_pos];
                step = to_int(rest.substr(op_pos + 1), flag, text);
                rest = rest.substr(0, op_pos);
            }
            const int last = to_int(rest, flag, text);
            if ((op == '*' && step < 2) || (op == '+' && step < 1) || last < first) {
                throw_usage("{}: range '{}' does not advance (use first-last*factor with factor >= 2 or first-last+step)",
                            flag, item);
            }
            for (long v = first; v <= last; v = op == '*' ? v * step : v + step) {
                out.push_back(static_cast<int>(v));
                if (op == '*' && v == 0) break;
            }
        }
    }
    if (out.empty()) {
        throw_usage("{}: empty list", flag);
    }
    for (int v : out) {
        if (v < min_value) {
            throw_usage("{}: {} is out of range (must be >= {})", flag, v, min_value);
        }
    }
    return out;
}

}  // namespace im
