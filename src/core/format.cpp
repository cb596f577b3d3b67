#include "core/format.h"

#include <fmt/format.h>

#include <cmath>

namespace im::fmtx {

static std::string group(std::string digits) {
    std::string out;
    const size_t n = digits.size();
    for (size_t i = 0; i < n; ++i) {
        out += digits[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n) {
            out += ',';
        }
    }
    return out;
}

std::string thousands(double value, int decimals) {
    if (!std::isfinite(value)) {
        return "n/a";
    }
    std::string s = fmt::format("{:.{}f}", std::fabs(value), decimals);
    const size_t dot = s.find('.');
    std::string int_part = dot == std::string::npos ? s : s.substr(0, dot);
    std::string frac = dot == std::string::npos ? "" : s.substr(dot);
    const bool negative = value < 0 && s.find_first_not_of("0.") != std::string::npos;
    return (negative ? "-" : "") + group(int_part) + frac;
}

std::string thousands(int64_t value) {
    const std::string digits = std::to_string(value < 0 ? -value : value);
    return (value < 0 ? "-" : "") + group(digits);
}

std::string mean_pm(double mean, std::optional<double> stddev, int decimals) {
    return thousands(mean, decimals) + " ± " + (stddev ? thousands(*stddev, decimals) : std::string("n/a"));
}

std::string count_si(double n) {
    if (n >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
    if (n >= 1e3) return fmt::format("{:.2f} K", n / 1e3);
    return fmt::format("{:.0f}", n);
}

std::string duration(double seconds) {
    if (seconds < 1.0) return fmt::format("{:.0f} ms", seconds * 1e3);
    if (seconds < 120.0) return fmt::format("{:.1f} s", seconds);
    const auto total = static_cast<long>(std::lround(seconds));
    return fmt::format("{} min {} s", total / 60, total % 60);
}

std::string count_of(long n, const std::string & singular, const std::string & plural) {
    return fmt::format("{} {}", n, n == 1 ? singular : plural);
}

std::string percent(double fraction, int decimals) {
    return fmt::format("{:.{}f}%", fraction * 100.0, decimals);
}

std::string signed_percent(double fraction, int decimals) {
    return fmt::format("{}{:.{}f}%", fraction >= 0 ? "+" : "", fraction * 100.0, decimals);
}

}  // namespace im::fmtx
