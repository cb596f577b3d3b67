#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace im {

// How a command ended; main.cpp maps it to the exit code (DESIGN §5).
enum class error_kind {
    usage,        // bad flag or argument: exit 2
    runtime,      // input or environment failure: exit 1
    interrupted,  // SIGINT: exit 130
    regression,   // `compare` flagged a regression: exit 3 (a result for CI, reported as one line)
    internal,     // a failed IM_CHECK (a bug in infermeter): exit 1, reported as an internal error
};

// The one error type that ends a command. The message names the input and the flag that fixes it.
class error : public std::runtime_error {
  public:
    error(error_kind kind, const std::string & message) : std::runtime_error(message), kind_(kind) {}
    error_kind kind() const { return kind_; }

  private:
    error_kind kind_;
};

template <typename... Args>
[[noreturn]] void throw_usage(fmt::format_string<Args...> f, Args &&... args) {
    throw error(error_kind::usage, fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void throw_runtime(fmt::format_string<Args...> f, Args &&... args) {
    throw error(error_kind::runtime, fmt::format(f, std::forward<Args>(args)...));
}

int exit_code(error_kind kind);

namespace detail {
[[noreturn]] void check_failed(const char * condition, const char * file, int line, const std::string & detail);
}

}  // namespace im

// A check of a programmer's assumption that stays in every build (a plain assert vanishes in Release
// and the code runs on with wrong data): throws im::error(internal) naming file:line, the condition
// and an optional detail. IM_CHECK(i < n) or IM_CHECK(i < n, fmt::format("i = {}", i)).
#define IM_CHECK(cond, ...)                                                                          \
    do {                                                                                            \
        if (!(cond)) ::im::detail::check_failed(#cond, __FILE__, __LINE__, std::string{__VA_ARGS__}); \
    } while (0)
