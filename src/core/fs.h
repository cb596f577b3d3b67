#pragma once

#include <filesystem>
#include <string>

namespace im::fs {

// $XDG_CACHE_HOME/infermeter or ~/.cache/infermeter (created on demand).
std::filesystem::path cache_dir();
// $XDG_DATA_HOME/infermeter or ~/.local/share/infermeter (created on demand).
std::filesystem::path data_dir();

// Writes `content` to `path` atomically: a temporary file beside it, fsync, then rename.
// Throws a runtime error naming the path on failure.
void write_atomic(const std::filesystem::path & path, const std::string & content);

// Reads a whole (small) file; throws a runtime error naming the path.
std::string read_file(const std::filesystem::path & path);

}  // namespace im::fs
