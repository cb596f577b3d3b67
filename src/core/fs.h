#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

// Files: where infermeter keeps its caches and store, and the one way every output is written
// (DESIGN §5, STYLE "CLI"): atomic replacement (temp + rename) only for regular files and new
// paths; "-", character devices and FIFOs written through; symlinks followed (the target is
// replaced, the link stays); every write, fsync and close checked.
namespace im::fs {

// $XDG_CACHE_HOME/infermeter, else ~/.cache/infermeter with HOME, else the passwd entry's home.
// Created on demand. Throws a runtime error naming XDG_CACHE_HOME when no per-user folder exists
// (never a folder shared by all users under the system temp directory).
std::filesystem::path cache_dir();
// $XDG_DATA_HOME/infermeter or ~/.local/share/infermeter, as cache_dir (the error names --db and
// XDG_DATA_HOME).
std::filesystem::path data_dir();

// What an output path refers to, after following symlinks.
enum class target_kind {
    absent,     // nothing there yet: created atomically
    regular,    // a regular file: replaced atomically
    stream,     // "-" (stdout), a character device or a FIFO: written through, never replaced
    other,      // a directory, block device or socket: refused
};

struct resolved_output {
    std::filesystem::path path;  // the path to write: the symlink's final target, or "-"
    target_kind kind = target_kind::absent;
};

// Follows symlinks (a dangling one names the file to create) and classifies the result.
resolved_output resolve_output(const std::filesystem::path & path);

// Writes `content` to `path` as the header describes. `hint` ends error messages and says which flag
// names the path (e.g. "--export"). Throws a runtime error naming the path on any failure, and never
// leaves a temporary file behind.
void write_output(const std::filesystem::path & path, const std::string & content, const std::string & hint = "");

// Old name of write_output, for internal caches.
inline void write_atomic(const std::filesystem::path & path, const std::string & content) {
    write_output(path, content);
}

// An output produced by code that writes a file by name (llama_model_quantize, streaming writers):
// write temp_path(), then commit(), which renames it over a regular or new target or copies it
// through to a stream target. The destructor removes an uncommitted temporary. Not thread-safe.
class output_file {
  public:
    output_file(const std::filesystem::path & path, std::string hint = "");
    ~output_file();
    output_file(const output_file &) = delete;
    output_file & operator=(const output_file &) = delete;

    const std::filesystem::path & temp_path() const { return temp_; }
    const resolved_output & target() const { return target_; }
    // A second temporary beside temp_path() (removed with it), e.g. for an intermediate file.
    std::filesystem::path extra_temp(const std::string & suffix);
    void commit();

  private:
    resolved_output target_;
    std::string hint_;
    std::filesystem::path temp_;
    std::vector<std::filesystem::path> extra_;
    bool committed_ = false;
};

// True when `a` and `b` name the same file (device and inode when both exist, otherwise the same
// absolute path after following symlinks).
bool same_file(const std::filesystem::path & a, const std::filesystem::path & b);

// Throws a usage error when the output `path` (given with `flag`) is one of the run's `inputs`
// (path, flag), e.g. `analyze --dataset x.json --export x.json`. Empty paths and "-" are ignored.
void refuse_input_overwrite(const std::filesystem::path & path, const std::string & flag,
                            const std::vector<std::pair<std::filesystem::path, std::string>> & inputs);

// Reads a whole (small) file; throws a runtime error naming the path.
std::string read_file(const std::filesystem::path & path);

}  // namespace im::fs
