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

}  // namespace im
