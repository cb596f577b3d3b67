#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>

// Context and warnings for the person at the terminal. Layers below cli/ report through here;
// the cli layer decides where it goes (stderr by default, nothing with --quiet).
namespace im::log {

enum class level { info, warn };

using sink_fn = std::function<void(level, const std::string &)>;

void set_sink(sink_fn sink);
void set_quiet(bool quiet);  // drops info, keeps warnings
bool quiet();
void emit(level lv, const std::string & message);

template <typename... Args> void info(fmt::format_string<Args...> f, Args &&... args) {
    emit(level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void warn(fmt::format_string<Args...> f, Args &&... args) {
    emit(level::warn, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace im::log
