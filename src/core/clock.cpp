#include "core/clock.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace im::clock {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string rfc3339_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int64_t unix_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::optional<int64_t> parse_instant(const std::string & text) {
    if (text.empty()) return std::nullopt;
    if (text.find_first_not_of("0123456789.") == std::string::npos) {
        size_t used = 0;
        double s = 0;
        try {
            s = std::stod(text, &used);
        } catch (const std::exception &) {
            return std::nullopt;
        }
        if (used != text.size() || !std::isfinite(s) || s > 9.2e9) return std::nullopt;
        return static_cast<int64_t>(std::llround(s * 1e9));
    }
    std::tm tm{};
    int n = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec, &n) != 6 || n != 19) {
        return std::nullopt;
    }
    const int month = tm.tm_mon, day = tm.tm_mday;
    if (month < 1 || month > 12 || day < 1 || day > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t frac_ns = 0;
    size_t i = 19;
    if (i < text.size() && text[i] == '.') {
        int64_t scale = 100'000'000;
        for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
            frac_ns += (text[i] - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset_s = 0;
    const std::string zone = text.substr(i);
    if (zone != "Z" && zone != "z") {
        int hh = 0, mm = 0, used = 0;
        if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') ||
            std::sscanf(zone.c_str() + 1, "%2d:%2d%n", &hh, &mm, &used) != 2 || used != 5 || hh > 23 || mm > 59) {
            return std::nullopt;
        }
        offset_s = (zone[0] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    }
    const std::time_t t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1) || tm.tm_mday != day) return std::nullopt;  // timegm normalizes Feb 30
    return (static_cast<int64_t>(t) - offset_s) * 1'000'000'000 + frac_ns;
}

std::string rfc3339_ms(int64_t unix_ns) {
    const std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03d}Z", buf, static_cast<int>(unix_ns % 1'000'000'000 / 1'000'000));
}

}  // namespace im::clock
