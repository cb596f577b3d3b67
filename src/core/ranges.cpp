#include "core/ranges.h"

#include "core/error.h"

#include <algorithm>
#include <charconv>
#include <thread>

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

namespace {

int64_t to_int(const std::string & s, const std::string & flag, const std::string & whole) {
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && ptr == s.data() + s.size() &&
                                                 (v > INT32_MAX || v < INT32_MIN))) {
        throw_usage("{}: '{}' is out of range (values are 32-bit integers)", flag, s);
    }
    if (ec != std::errc() || ptr != s.data() + s.size()) {
        throw_usage("{}: '{}' is not a list of integers (examples: 1,2,4,8 or 1-64*2)", flag, whole);
    }
    return v;
}

void check_value(int64_t v, const std::string & flag, int min_value, int max_value) {
    if (v < min_value) throw_usage("{}: {} is out of range (must be >= {})", flag, v, min_value);
    if (v > max_value) throw_usage("{}: {} is out of range (must be <= {})", flag, v, max_value);
}

}  // namespace

std::vector<int> parse_int_list(const std::string & text, const std::string & flag, int min_value, int max_value) {
    struct range {
        int64_t first, last, step;
        char op;
    };
    // Parse and count everything first; expand only when the total is within max_list_values.
    std::vector<range> items;
    size_t count = 0;
    for (const std::string & item : split_list(text)) {
        const size_t dash = item.find('-', 1);
        range r{};
        if (dash == std::string::npos) {
            r = {to_int(item, flag, text), 0, 0, '='};
            r.last = r.first;
            check_value(r.first, flag, min_value, max_value);
            ++count;
        } else {
            r.first = to_int(item.substr(0, dash), flag, text);
            std::string rest = item.substr(dash + 1);
            r.op = '+';
            r.step = 1;
            const size_t op_pos = rest.find_first_of("*+");
            if (op_pos != std::string::npos) {
                r.op = rest[op_pos];
                r.step = to_int(rest.substr(op_pos + 1), flag, text);
                rest = rest.substr(0, op_pos);
            }
            r.last = to_int(rest, flag, text);
            if ((r.op == '*' && (r.step < 2 || r.first < 1)) || (r.op == '+' && r.step < 1) || r.last < r.first) {
                throw_usage("{}: range '{}' does not advance (use first-last*factor with first >= 1 and factor >= 2, "
                            "or first-last+step)", flag, item);
            }
            check_value(r.first, flag, min_value, max_value);
            check_value(r.last, flag, min_value, max_value);
            size_t n = 0;
            if (r.op == '+') {
                n = static_cast<size_t>((r.last - r.first) / r.step) + 1;
            } else {
                for (int64_t v = r.first; v <= r.last; v *= r.step) ++n;  // at most 31 steps
            }
            count += n;
        }
        if (count > max_list_values) {
            throw_usage("{}: '{}' expands to more than {} values; give a list or a range with a larger step (e.g. "
                        "1-64*2)", flag, text, max_list_values);
        }
        items.push_back(r);
    }
    if (items.empty()) throw_usage("{}: empty list", flag);
    std::vector<int> out;
    out.reserve(count);
    for (const range & r : items) {
        if (r.op == '=') {
            out.push_back(static_cast<int>(r.first));
            continue;
        }
        for (int64_t v = r.first; v <= r.last; v = r.op == '*' ? v * r.step : v + r.step) out.push_back(static_cast<int>(v));
    }
    return out;
}

int max_threads() {
    const int64_t cpus = std::max(1u, std::thread::hardware_concurrency());
    return static_cast<int>(std::min<int64_t>(512, 4 * cpus));
}

void check_threads(int64_t n, const std::string & flag, bool zero_is_default) {
    const int64_t lo = zero_is_default ? 0 : 1;
    if (n < lo || n > max_threads()) {
        throw_usage("{}: {} threads is out of range ({}..{}: at most 4 x the {} logical CPUs, and ggml's limit of "
                    "512){}", flag, n, lo, max_threads(), std::max(1u, std::thread::hardware_concurrency()),
                    zero_is_default ? "; 0 picks the default" : "");
    }
}

void check_range(int64_t v, const std::string & flag, int64_t lo, int64_t hi, const std::string & why) {
    if (v < lo || v > hi) {
        throw_usage("{}: {} is out of range ({}..{}){}{}", flag, v, lo, hi, why.empty() ? "" : ": ", why);
    }
}

}  // namespace im
