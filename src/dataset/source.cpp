#include "dataset/source.h"

#include "core/error.h"
#include "core/interrupt.h"

#include <fmt/format.h>

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
        int got = gzread(file_, buf, chunk);
        while (got < 0) {
            int errnum = 0;
            const char * msg = gzerror(file_, &errnum);
            // A signal landing while read() waits on a FIFO or a slow device: zlib consumed nothing, so
            // clear its error and read again — or, for Ctrl-C / SIGTERM, end here and let the reader
            // see the interrupt (it was "cannot read dataset: Interrupted system call", exit 1).
            if (errnum == Z_ERRNO && errno == EINTR) {
                gzclearerr(file_);
                if (interrupt::requested()) return 0;
                got = gzread(file_, buf, chunk);
                continue;
            }
            throw_runtime("cannot read dataset {}: {}", path_.string(),
                          errnum == Z_ERRNO ? std::strerror(errno) : msg);
        }
        consumed_ += static_cast<uint64_t>(got);
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
    // A FIFO or a character device has no offset (gzoffset is -1): count what was read instead.
    uint64_t position() const override {
        const auto off = gzoffset(file_);
        return off >= 0 ? static_cast<uint64_t>(off) : consumed_;
    }

  private:
    std::filesystem::path path_;
    gzFile file_ = nullptr;
    uint64_t consumed_ = 0;
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
    end_ = 0;
    if (stopped_ || interrupt::requested()) {
        stopped_ = true;
        return false;
    }
    end_ = src_.read(buf_.data(), buf_.size());
    bytes_ += end_;
    return end_ > 0;
}

bool byte_reader::read_line(std::string & out, size_t max_bytes, uint64_t & line_bytes) {
    bool any = false;
    line_bytes = 0;
    for (;;) {
        if (pos_ == end_ && !fill()) return any;
        any = true;
        const char * begin = buf_.data() + pos_;
        const void * nl = std::memchr(begin, '\n', end_ - pos_);
        const size_t k = nl ? static_cast<size_t>(static_cast<const char *>(nl) - begin) + 1 : end_ - pos_;
        if (out.size() < max_bytes) out.append(begin, std::min(k, max_bytes - out.size()));
        line_bytes += k;
        pos_ += k;
        if (nl) {
            ++line_;
            return true;
        }
    }
}

bool next_json_line(byte_reader & in, raw_record & rec, size_t max_record_bytes) {
    rec.fields.clear();
    rec.error.clear();
    rec.element = 0;
    for (;;) {
        rec.text.clear();
        rec.line = in.line();
        if (!in.read_line(rec.text, max_record_bytes, rec.bytes)) return false;
        rec.oversize = rec.bytes > max_record_bytes;
        if (rec.oversize) {
            rec.text.clear();
            rec.text.shrink_to_fit();
            return true;
        }
        if (!is_blank(rec.text)) return true;
    }
}

namespace {

bool is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_literal(int c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '+' ||
           c == '.';
}
std::string shown(int c) {
    if (c >= 0x20 && c < 0x7f) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("byte 0x{:02x}", c);
}

}  // namespace

int json_array_splitter::take() {
    const int c = in_.get();
    if (c == '\n') {
        line_start_ = true;
    } else if (c >= 0 && !is_space(c)) {
        line_start_ = false;
        prev_ = c;
    }
    return c;
}

void json_array_splitter::skip_space() {
    while (is_space(in_.peek())) take();
}

bool json_array_splitter::open() {
    skip_space();
    if (in_.peek() == 0xEF) {  // UTF-8 byte order mark
        take(), take(), take();
        skip_space();
    }
    array_ = in_.peek() == '[';
    if (array_) take();
    return array_;
}

// Consumes one JSON value, appending it to rec.text (up to the record bound). Returns "" when the
// value is complete, else what is wrong; the byte found where it does not belong is left unread so
// that resynchronisation can start on it.
std::string json_array_splitter::scan_value(raw_record & rec) {
    enum class expect { value, value_or_close, key, key_or_close, colon, comma_or_close };
    std::string stack;
    expect e = expect::value;
    const auto keep = [&](int c) {
        ++rec.bytes;
        if (rec.text.size() < max_bytes_) {
            rec.text.push_back(static_cast<char>(c));
        } else {
            rec.oversize = true;
        }
    };
    const auto eof = [&] {
        return fmt::format("the file ends inside this {} (truncated?)", array_ ? "element" : "object");
    };
    for (;;) {
        int c = in_.peek();
        if (c < 0) return eof();
        if (is_space(c)) {
            keep(take());
            continue;
        }
        bool done = false;
        switch (e) {
            case expect::value:
            case expect::value_or_close:
                if (c == '{' || c == '[') {
                    if (stack.size() >= max_json_depth) {
                        return fmt::format("nested deeper than {} levels (line {})", max_json_depth, in_.line());
                    }
                    stack.push_back(static_cast<char>(c));
                    keep(take());
                    e = c == '{' ? expect::key_or_close : expect::value_or_close;
                    continue;
                }
                if (c == ']' && e == expect::value_or_close) {
                    stack.pop_back();
                    keep(take());
                    done = true;
                    break;
                }
                if (c == '"') {
                    keep(take());
                    for (;;) {
                        c = take();
                        if (c < 0) return eof();
                        if (c < 0x20) {
                            return c == '\n' ? fmt::format("a string runs past the end of line {} (a '\"' is missing?)",
                                                           in_.line() - 1)
                                             : fmt::format("a control character ({}) inside a string, line {}",
                                                           shown(c), in_.line());
                        }
                        keep(c);
                        if (c == '\\') {
                            c = take();
                            if (c < 0) return eof();
                            keep(c);
                        } else if (c == '"') {
                            break;
                        }
                    }
                    done = true;
                    break;
                }
                if (is_literal(c)) {
                    while (is_literal(in_.peek())) keep(take());
                    done = true;
                    break;
                }
                return fmt::format("{} where a value belongs, line {}", shown(c), in_.line());
            case expect::key:
            case expect::key_or_close:
                if (c == '"') {
                    keep(take());
                    for (;;) {
                        c = take();
                        if (c < 0) return eof();
                        if (c < 0x20) {
                            return fmt::format("a key runs past the end of line {} (a '\"' is missing?)", in_.line() - 1);
                        }
                        keep(c);
                        if (c == '\\') {
                            c = take();
                            if (c < 0) return eof();
                            keep(c);
                        } else if (c == '"') {
                            break;
                        }
                    }
                    e = expect::colon;
                    continue;
                }
                if (c == '}' && e == expect::key_or_close) {
                    stack.pop_back();
                    keep(take());
                    done = true;
                    break;
                }
                return fmt::format("{} where a quoted key belongs, line {} (a '}}' or '\"' is missing?)", shown(c),
                                   in_.line());
            case expect::colon:
                if (c != ':') return fmt::format("{} where ':' belongs, line {}", shown(c), in_.line());
                keep(take());
                e = expect::value;
                continue;
            case expect::comma_or_close:
                if (c == ',') {
                    keep(take());
                    e = stack.back() == '{' ? expect::key : expect::value;
                    continue;
                }
                if ((c == '}' && stack.back() == '{') || (c == ']' && stack.back() == '[')) {
                    stack.pop_back();
                    keep(take());
                    done = true;
                    break;
                }
                return fmt::format("{} where ',' or '{}' belongs, line {}", shown(c), stack.back() == '{' ? '}' : ']',
                                   in_.line());
        }
        if (done) {
            if (stack.empty()) return "";
            e = expect::comma_or_close;
        }
    }
}

bool json_array_splitter::read_element(raw_record & rec) {
    skip_space();
    rec.line = in_.line();
    const int c = in_.peek();
    if (c < 0) {
        done_ = true;
        if (array_ && !closed_ && !in_.stopped()) {
            rec.error = fmt::format("the JSON array is not closed: the file ends after element {} (truncated?)",
                                    elements_);
            return true;
        }
        return false;
    }
    if (array_ && c == ']') {
        take();
        closed_ = done_ = true;
        return false;
    }
    ++elements_;
    rec.element = elements_;
    if (array_ && c == ',') {
        take();
        rec.error = "an empty element (',,')";
        return true;
    }
    const std::string err = scan_value(rec);
    if (!err.empty()) {
        rec.error = "not valid JSON: " + err;
        if (rec.oversize) rec.text.clear();
        resync_ = true;
        return true;
    }
    after_value();
    if (rec.oversize) rec.text.clear();
    return true;
}

// After a complete value: the separator. Anything else starts a resynchronisation there, costing no
// record (the value itself was whole).
void json_array_splitter::after_value() {
    skip_space();
    const int c = in_.peek();
    if (c < 0) return;  // the next read_element reports an array that is not closed
    if (c == ',') {
        take();
    } else if (array_ && c == ']') {
        take();
        closed_ = done_ = true;
    } else if (array_ || c != '{') {
        resync_ = true;
    }
}

bool json_array_splitter::resync(raw_record & rec) {
    for (;;) {
        const int c = in_.peek();
        if (c < 0) {
            done_ = true;
            return false;
        }
        const bool candidate = c == '{' && (prev_ == ',' || prev_ == '[' || prev_ == '}' || line_start_);
        if (!candidate) {
            take();
            continue;
        }
        raw_record cand;
        cand.line = in_.line();
        if (!scan_value(cand).empty()) continue;  // not a value: go on from where it broke
        if (!cand.oversize && (accept_ ? accept_(cand.text) : true)) {
            resync_ = false;
            ++elements_;
            cand.element = elements_;
            rec = std::move(cand);
            after_value();
            return true;
        }
        // A whole object that is not a record is nested in the damaged one: skip it entirely.
    }
}

bool json_array_splitter::next(raw_record & rec) {
    rec = raw_record{};
    if (done_) return false;
    if (resync_) return resync(rec);
    return read_element(rec);
}

bool json_too_deep(const std::string & text, size_t limit) {
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > limit) return true;
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return false;
}

bool next_csv_row(byte_reader & in, raw_record & rec, size_t max_record_bytes) {
    rec = raw_record{};
    for (;;) {
        rec.line = in.line();
        rec.bytes = 0;
        size_t kept = 0;
        std::string cell;
        bool quoted = false, any = false;
        const auto push = [&](char ch) {
            ++rec.bytes;
            if (kept < max_record_bytes) {
                cell.push_back(ch);
                ++kept;
            } else {
                rec.oversize = true;
            }
        };
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
                        push('"');
                        in.get();
                    } else {
                        quoted = false;
                    }
                } else {
                    push(static_cast<char>(c));
                }
                continue;
            }
            if (c == '"' && cell.empty()) {
                quoted = true;
            } else if (c == ',') {
                ++rec.bytes;
                if (!rec.oversize) rec.fields.push_back(std::move(cell));
                cell.clear();
            } else if (c == '\n' || c == '\r') {
                if (c == '\r' && in.peek() == '\n') in.get();
                rec.fields.push_back(std::move(cell));
                break;
            } else {
                push(static_cast<char>(c));
            }
        }
        if (rec.oversize) {
            rec.fields.clear();
            return true;
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
