#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace im::fmtx {

constexpr double mib = 1024.0 * 1024.0;
constexpr double gib = 1024.0 * 1024.0 * 1024.0;

// 1187.0123 -> "1,187.01" (decimals digits, thousands separated by commas).
std::string thousands(double value, int decimals = 2);
// Integer with thousands separators: 34816 -> "34,816".
std::string thousands(int64_t value);
// "1,187.01 ± 2.05", or "1,187.01 ± n/a" when the stddev does not exist (fewer than two samples).
std::string mean_pm(double mean, std::optional<double> stddev, int decimals = 2);
// 1543714304 -> "1.54 B", 40123456 -> "40.12 M".
std::string count_si(double n);
// A duration in seconds, human scale: "850 ms", "47.8 s", "3 min 12 s".
std::string duration(double seconds);
// "1 worker", "4 workers".
std::string count_of(long n, const std::string & singular, const std::string & plural);
// Percentage with no decimals: 0.4612 -> "46%".
std::string percent(double fraction, int decimals = 0);
// A change as a signed percentage: 0.37 -> "+37%", -0.054 -> "-5%" (decimals after the point).
std::string signed_percent(double fraction, int decimals = 0);

}  // namespace im::fmtx
