#include "core/fs.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace im::fs {

static std::filesystem::path xdg(const char * var, const char * fallback) {
    std::filesystem::path base;
    if (const char * v = std::getenv(var); v && *v) {
        base = v;
    } else if (const char * home = std::getenv("HOME"); home && *home) {
        base = std::filesystem::path(home) / fallback;
    } else {
        base = std::filesystem::temp_directory_path();
    }
    std::filesystem::path dir = base / "infermeter";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    return dir;
}

std::filesystem::path cache_dir() { return xdg("XDG_CACHE_HOME", ".cache"); }
std::filesystem::path data_dir() { return xdg("XDG_DATA_HOME", ".local/share"); }

void write_atomic(const std::filesystem::path & path, const std::string & content) {
    if (path.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
    }
    const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
    FILE * f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
        throw_runtime("cannot write {}: {}", path.string(), std::strerror(errno));
    }
    const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size() && std::fflush(f) == 0 &&
                    ::fsync(::fileno(f)) == 0;
    std::fclose(f);
    std::error_code ec;
    if (!ok) {
        std::filesystem::remove(tmp, ec);
        throw_runtime("cannot write {}: disk full or I/O error", path.string());
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw_runtime("cannot move results into {}: {}", path.string(), ec.message());
    }
}

std::string read_file(const std::filesystem::path & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw_runtime("cannot read {}: no such file or not readable", path.string());
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace im::fs
