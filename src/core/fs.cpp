#include "core/fs.h"

#include "core/error.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <pwd.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace im::fs {

namespace {

// The home folder of the user running infermeter: HOME, else the passwd entry (empty when none).
std::filesystem::path user_home() {
    if (const char * home = std::getenv("HOME"); home && *home) return home;
    std::vector<char> buf(16384);
    passwd pw{};
    passwd * found = nullptr;
    if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir &&
        *found->pw_dir && std::string(found->pw_dir) != "/") {
        return found->pw_dir;
    }
    return {};
}

std::filesystem::path xdg(const char * var, const char * fallback, const char * what, const char * fix) {
    std::filesystem::path base;
    if (const char * v = std::getenv(var); v && *v) {
        base = v;
    } else if (const auto home = user_home(); !home.empty()) {
        base = home / fallback;
    } else {
        // A folder under the system temp directory would be shared by every user of the machine.
        throw_runtime("no per-user folder for infermeter's {}: HOME is unset and the user has no home directory; {}",
                      what, fix);
    }
    std::filesystem::path dir = base / "infermeter";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // a failure shows when the first file is written, naming it
    return dir;
}

std::string suffix(const std::string & hint) { return hint.empty() ? "" : " (" + hint + ")"; }

mode_t new_file_mode() {
    static const mode_t mode = [] {
        const mode_t mask = ::umask(022);
        ::umask(mask);
        return static_cast<mode_t>(0666 & ~mask);
    }();
    return mode;
}

// Writes all of `data` to `fd`, retrying short writes and EINTR. Returns false with errno set.
bool write_all(int fd, const char * data, size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

// A fresh temporary file beside `target` (same file system, so rename is atomic), or in the system
// temp directory when `beside` is false. Returns its path and an open descriptor.
std::pair<std::filesystem::path, int> make_temp(const std::filesystem::path & target, bool beside, const std::string & hint) {
    std::filesystem::path dir = beside ? target.parent_path() : std::filesystem::temp_directory_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (beside) std::filesystem::create_directories(dir, ec);
    std::string name = (dir / (target.filename().string() + ".tmp.XXXXXX")).string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) {
        throw_runtime("cannot write {}: cannot create a temporary file in {}: {}{}", target.string(), dir.string(),
                      std::strerror(errno), suffix(hint));
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return {name, fd};
}

// Opens a stream target ("-" is stdout) for writing through.
int open_stream(const resolved_output & t, const std::string & hint) {
    if (t.path == "-") return STDOUT_FILENO;
    const int fd = ::open(t.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw_runtime("cannot write {}: {}{}", t.path.string(), std::strerror(errno), suffix(hint));
    return fd;
}

void close_stream(int fd, const resolved_output & t, const std::string & hint) {
    if (fd == STDOUT_FILENO) return;  // stdout is checked once, when the command ends
    if (::close(fd) != 0) throw_runtime("cannot write {}: {}{}", t.path.string(), std::strerror(errno), suffix(hint));
}

void refuse_other(const resolved_output & t, const std::filesystem::path & given, const std::string & hint) {
    if (t.kind != target_kind::other) return;
    std::error_code ec;
    const char * what = std::filesystem::is_directory(t.path, ec) ? "a directory" : "not a regular file, FIFO or character device";
    throw_runtime("cannot write {}: {} is {}; name a file{}", given.string(), t.path.string(), what, suffix(hint));
}

}  // namespace

std::filesystem::path cache_dir() {
    return xdg("XDG_CACHE_HOME", ".cache", "cache", "set XDG_CACHE_HOME (or HOME) to a folder of your own");
}
std::filesystem::path data_dir() {
    return xdg("XDG_DATA_HOME", ".local/share", "results store",
               "pass --db PATH (or --no-db), or set XDG_DATA_HOME (or HOME) to a folder of your own");
}

resolved_output resolve_output(const std::filesystem::path & path) {
    if (path == "-") return {path, target_kind::stream};
    std::filesystem::path p = path;
    for (int hops = 0;; ++hops) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) {
            // Absent, or under a path that cannot be a folder: creating it fails later, with the flag named.
            if (errno == ENOENT || errno == ENOTDIR) return {p, target_kind::absent};
            throw_runtime("cannot write {}: {}", path.string(), std::strerror(errno));
        }
        if (S_ISLNK(st.st_mode)) {
            if (hops >= 40) throw_runtime("cannot write {}: too many levels of symbolic links", path.string());
            const std::filesystem::path to = std::filesystem::read_symlink(p);
            p = to.is_absolute() ? to : p.parent_path() / to;
            continue;
        }
        if (S_ISREG(st.st_mode)) return {p, target_kind::regular};
        if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return {p, target_kind::stream};
        return {p, target_kind::other};
    }
}

void write_output(const std::filesystem::path & path, const std::string & content, const std::string & hint) {
    const resolved_output t = resolve_output(path);
    refuse_other(t, path, hint);
    if (t.kind == target_kind::stream) {
        const int fd = open_stream(t, hint);
        if (fd == STDOUT_FILENO) {
            std::fflush(stdout);  // keep the order of anything printed before
        }
        if (!write_all(fd, content.data(), content.size())) {
            const int err = errno;
            if (fd != STDOUT_FILENO) ::close(fd);
            throw_runtime("cannot write {}: {}{}", t.path == "-" ? std::string("stdout") : t.path.string(),
                          std::strerror(err), suffix(hint));
        }
        close_stream(fd, t, hint);
        return;
    }
    mode_t mode = new_file_mode();
    if (t.kind == target_kind::regular) {
        struct stat st {};
        if (::stat(t.path.c_str(), &st) == 0) mode = st.st_mode & 07777;
    }
    auto [tmp, fd] = make_temp(t.path, true, hint);
    bool ok = write_all(fd, content.data(), content.size());
    int err = ok ? 0 : errno;
    if (ok && ::fchmod(fd, mode) != 0) {
        ok = false;
        err = errno;
    }
    if (ok && ::fsync(fd) != 0) {
        ok = false;
        err = errno;
    }
    if (::close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && ::rename(tmp.c_str(), t.path.c_str()) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        ::unlink(tmp.c_str());
        throw_runtime("cannot write {}: {}{}", path.string(), std::strerror(err), suffix(hint));
    }
}

output_file::output_file(const std::filesystem::path & path, std::string hint)
    : target_(resolve_output(path)), hint_(std::move(hint)) {
    refuse_other(target_, path, hint_);
    auto [tmp, fd] = make_temp(target_.path, target_.kind != target_kind::stream, hint_);
    ::close(fd);
    temp_ = tmp;
}

output_file::~output_file() {
    std::error_code ec;
    for (const auto & p : extra_) std::filesystem::remove(p, ec);
    if (!committed_ && !temp_.empty()) std::filesystem::remove(temp_, ec);
}

std::filesystem::path output_file::extra_temp(const std::string & sfx) {
    extra_.push_back(temp_.string() + sfx);
    return extra_.back();
}

void output_file::commit() {
    IM_CHECK(!committed_);
    if (target_.kind != target_kind::stream) {
        mode_t mode = new_file_mode();
        struct stat st {};
        if (target_.kind == target_kind::regular && ::stat(target_.path.c_str(), &st) == 0) mode = st.st_mode & 07777;
        ::chmod(temp_.c_str(), mode);
        if (const int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {  // on disk before it is renamed
            ::fsync(fd);
            ::close(fd);
        }
        if (::rename(temp_.c_str(), target_.path.c_str()) != 0) {
            throw_runtime("cannot move the new file into {}: {}{}", target_.path.string(), std::strerror(errno),
                          suffix(hint_));
        }
        committed_ = true;
        return;
    }
    const int in = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) throw_runtime("cannot read back {}: {}", temp_.string(), std::strerror(errno));
    const int out = open_stream(target_, hint_);
    std::vector<char> buf(1 << 20);
    bool ok = true;
    int err = 0;
    for (;;) {
        const ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0) {
                ok = false;
                err = errno;
            }
            break;
        }
        if (!write_all(out, buf.data(), static_cast<size_t>(n))) {
            ok = false;
            err = errno;
            break;
        }
    }
    ::close(in);
    if (!ok) {
        if (out != STDOUT_FILENO) ::close(out);
        throw_runtime("cannot write {}: {}{}", target_.path.string(), std::strerror(err), suffix(hint_));
    }
    close_stream(out, target_, hint_);
}

bool same_file(const std::filesystem::path & a, const std::filesystem::path & b) {
    struct stat sa {}, sb {};
    const bool ha = ::stat(a.c_str(), &sa) == 0, hb = ::stat(b.c_str(), &sb) == 0;
    if (ha && hb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ha != hb) return false;
    std::error_code ec1, ec2;
    const auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a), ec1);
    const auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b), ec2);
    return !ec1 && !ec2 && ca == cb;
}

void refuse_input_overwrite(const std::filesystem::path & path, const std::string & flag,
                            const std::vector<std::pair<std::filesystem::path, std::string>> & inputs) {
    if (path.empty() || path == "-") return;
    if (resolve_output(path).kind == target_kind::stream) return;  // a device or FIFO is not replaced
    for (const auto & [input, input_flag] : inputs) {
        if (input.empty() || input == "-") continue;
        if (same_file(path, input)) {
            throw_usage("{} {}: that file is this run's input ({} {}); writing there would destroy it — choose another "
                        "output file", flag, path.string(), input_flag, input.string());
        }
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
