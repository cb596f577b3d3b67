#include "dataset/source.h"

#include "core/error.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace im::dataset {

namespace {

class gz_source final : public byte_source {
  public:
    explicit gz_source(const std::filesystem::path & path) : path_(path) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
            throw_runtime("dataset {} not found (--dataset takes a .jsonl, .json or .csv file, optionally .gz)",
                          path.string());
        }
        if (std::filesystem::is_directory(path, ec)) {
            throw_runtime("dataset {} is a directory (--dataset takes a file)", path.string());
        }
        // gzopen reads plain files as they are ("transparent" mode), so one path serves both.
        file_ = gzopen(path.c_str(), "rb");
        if (!file_) {
            throw_runtime("cannot open dataset {}: {}", path.string(), std::strerror(errno));
        }
        gzbuffer(file_, 1 << 20);
    }
    ~gz_source() override {
        if (file_) gzclose(file_);
    }
    gz_source(const gz_source &) = delete;
    gz_source & operator=(const gz_source &) = delete;

    size_t read(char * buf, size_t n) override {
        const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
        const int got = gzread(file_, buf, chunk);
        if (got < 0) {
            int errnum = 0;
            const char * msg = gzerror(file_, &errnum);
            throw_runtime("cannot read dataset {}: {}", path_.string(),
                          errnum == Z_ERRNO ? std::strerror(errno) : msg);
        }
        if (got == 0) {
            // A gzip stream cut short reads as a clean end unless we ask (zlib keeps Z_BUF_ERROR).
            int errnum = 0;
            const char * msg = gzerror(file_, &errnum);
            if (errnum != Z_OK) {
                throw_runtime("dataset {} is truncated or corrupt: {}", path_.string(), msg);
            }
        }
        return static_cast<size_t>(got);
    }
    uint64_t position() const override { return static_cast<uint64_t>(gzoffset(file_)); }

  private:
    std::filesystem::path path_;
    gzFile file_ = nullptr;
};

class memory_source final : public byte_source {
  public:
    explicit memory_source(std::string_view data) : data_(data) {}
    size_t read(char * buf, size_t n) override {
        const size_t k = std::min(n, data_.size() - pos_);
        std::memcpy(buf, data_.data() + pos_, k);
        pos_ += k;
        return k;
    }
    uint64_t position() const override { return pos_; }

  private:
    std::string_view data_;
    size_t pos_ = 0;
};

bool is_blank(const std::string & s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

std::unique_ptr<byte_source> open_file(const std::filesystem::path & path) { return std::make_unique<gz_source>(path); }
std::unique_ptr<byte_source> open_memory(std::string_view data) { return std::make_unique<memory_source>(data); }

bool byte_reader::fill() {
    pos_ = 0;
    end_ = src_.read(buf_.data(), buf_.size());
    bytes_ += end_;
    return end_ > 0;
}

bool byte_reader::read_line(std::string & out) {
    bool any = false;
    for (;;) {
        if (pos_ == end_ && !fill()) return any;
        any = true;
        const char * begin = buf_.data() + pos_;
        const void * nl = std::memchr(begin, '\n', end_ - pos_);
        if (nl) {
            const size_t k = static_cast<size_t>(static_cast<const char *>(nl) - begin) + 1;
            out.append(begin, k);
            pos_ += k;
            ++line_;
            return true;
        }
        out.append(begin, end_ - pos_);
        pos_ = end_;
    }
}

bool next_json_line(byte_reader & in, raw_record & rec) {
    rec.fields.clear();
    for (;;) {
        rec.text.clear();
        rec.line = in.line();
        if (!in.read_line(rec.text)) return false;
        if (!is_blank(rec.text)) return true;
    }
}

static void skip_space(byte_reader & in) {
    for (int c = in.peek(); c == ' ' || c == '\t' || c == '\r' || c == '\n'; c = in.peek()) in.get();
}

bool json_array_splitter::open() {
    skip_space(in_);
    if (in_.peek() == 0xEF) {  // UTF-8 byte order mark
        in_.get(), in_.get(), in_.get();
        skip_space(in_);
    }
    if (in_.peek() != '[') return false;
    in_.get();
    return true;
}

bool json_array_splitter::next(raw_record & rec) {
    rec.text.clear();
    rec.fields.clear();
    if (done_) return false;
    skip_space(in_);
    rec.line = in_.line();
    int depth = 0;
    bool in_string = false;
    for (;;) {
        const int c = in_.get();
        if (c < 0) {
            throw_runtime("dataset is truncated: the JSON array that starts the file is not closed (the last element "
                          "starts at line {})", rec.line);
        }
        if (in_string) {
            rec.text.push_back(static_cast<char>(c));
            if (c == '\\') {
                const int e = in_.get();
                if (e >= 0) rec.text.push_back(static_cast<char>(e));
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (depth == 0 && (c == ',' || c == ']')) {
            if (c == ']') done_ = true;
            if (!is_blank(rec.text)) return true;
            if (done_) return false;
            // an empty element (",,") is a malformed record of its own
            if (c == ',') {
                rec.text = ",";
                return true;
            }
        }
        rec.text.push_back(static_cast<char>(c));
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            depth = std::max(0, depth - 1);
        }
    }
}

bool next_csv_row(byte_reader & in, raw_record & rec) {
    rec.text.clear();
    rec.fields.clear();
    for (;;) {
        rec.line = in.line();
        std::string cell;
        bool quoted = false, any = false;
        int c = in.get();
        if (c < 0) return false;
        for (;; c = in.get()) {
            if (c < 0) {
                if (any || !cell.empty() || !rec.fields.empty()) rec.fields.push_back(std::move(cell));
                break;
            }
            any = true;
            if (quoted) {
                if (c == '"') {
                    if (in.peek() == '"') {
                        cell.push_back('"');
                        in.get();
                    } else {
                        quoted = false;
                    }
                } else {
                    cell.push_back(static_cast<char>(c));
                }
                continue;
            }
            if (c == '"' && cell.empty()) {
                quoted = true;
            } else if (c == ',') {
                rec.fields.push_back(std::move(cell));
                cell.clear();
            } else if (c == '\n' || c == '\r') {
                if (c == '\r' && in.peek() == '\n') in.get();
                rec.fields.push_back(std::move(cell));
                break;
            } else {
                cell.push_back(static_cast<char>(c));
            }
        }
        const bool blank = rec.fields.empty() || (rec.fields.size() == 1 && rec.fields[0].empty());
        if (!blank) return true;
        rec.fields.clear();
        if (c < 0) return false;
    }
}

size_t sanitize_utf8(std::string & s) {
    size_t i = 0;
    const size_t n = s.size();
    // Fast path: most text is valid; only rebuild the string from the first bad byte.
    auto seq_len = [&](size_t at) -> size_t {
        const auto b = [&](size_t k) { return static_cast<unsigned char>(s[at + k]); };
        const unsigned char c = b(0);
        if (c < 0x80) return 1;
        auto cont = [&](size_t k) { return at + k < n && (b(k) & 0xC0) == 0x80; };
        if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
        if (c >= 0xE0 && c <= 0xEF) {
            if (!cont(1) || !cont(2)) return 0;
            if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
            if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
            return 3;
        }
        if (c >= 0xF0 && c <= 0xF4) {
            if (!cont(1) || !cont(2) || !cont(3)) return 0;
            if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
            if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
            return 4;
        }
        return 0;
    };
    while (i < n) {
        const size_t k = seq_len(i);
        if (k == 0) break;
        i += k;
    }
    if (i == n) return 0;
    std::string out(s, 0, i);
    size_t replaced = 0;
    while (i < n) {
        const size_t k = seq_len(i);
        if (k == 0) {
            out += "\xEF\xBF\xBD";
            ++replaced;
            ++i;
        } else {
            out.append(s, i, k);
            i += k;
        }
    }
    s = std::move(out);
    return replaced;
}

}  // namespace im::dataset
