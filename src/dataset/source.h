#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// Byte streams and the record splitters that sit on them. Everything here streams: memory stays
// bounded by the largest single record, never by the file. Not thread-safe; one reader per stream.
namespace im::dataset {

// A stream of bytes: a file (plain or gzip, told apart by zlib), or memory (tests, fuzzing).
class byte_source {
  public:
    virtual ~byte_source() = default;
    // Fills up to `n` bytes; 0 at the end. Throws a runtime error naming the file on a read error
    // (a truncated or corrupt .gz included).
    virtual size_t read(char * buf, size_t n) = 0;
    // Bytes consumed so far from the underlying file (compressed bytes for .gz): for progress.
    virtual uint64_t position() const = 0;
};

// Opens `path`; gzip-compressed files are decompressed transparently. Throws a runtime error
// naming the path (and --dataset) when it cannot be opened.
std::unique_ptr<byte_source> open_file(const std::filesystem::path & path);
// Reads from `data`, which must outlive the source.
std::unique_ptr<byte_source> open_memory(std::string_view data);

// Buffered byte-at-a-time access with line counting (1-based, '\n' ends a line).
class byte_reader {
  public:
    explicit byte_reader(byte_source & src) : src_(src), buf_(1 << 20) {}
    // Next byte, or -1 at the end.
    int get() {
        if (pos_ == end_ && !fill()) return -1;
        const unsigned char c = static_cast<unsigned char>(buf_[pos_++]);
        if (c == '\n') ++line_;
        return c;
    }
    int peek() {
        if (pos_ == end_ && !fill()) return -1;
        return static_cast<unsigned char>(buf_[pos_]);
    }
    // Appends bytes up to and including the next '\n' (or to the end) to `out`; false at the end.
    bool read_line(std::string & out);
    size_t line() const { return line_; }
    uint64_t bytes_read() const { return bytes_; }
    const byte_source & source() const { return src_; }

  private:
    bool fill();
    byte_source & src_;
    std::vector<char> buf_;
    size_t pos_ = 0, end_ = 0;
    size_t line_ = 1;
    uint64_t bytes_ = 0;
};

// One record as the container holds it, before any schema is applied.
struct raw_record {
    size_t line = 0;                  // 1-based line where the record starts
    std::string text;                 // JSON text (jsonl, json array)
    std::vector<std::string> fields;  // CSV cells
};

// Non-blank lines of a JSON Lines file, each one record.
bool next_json_line(byte_reader & in, raw_record & rec);

// Elements of a top-level JSON array, cut by bracket depth outside strings, so that one malformed
// element costs one record. Call once to consume the '[' (false when the input is not an array),
// then next() until it returns false. Throws a runtime error for an unterminated array.
class json_array_splitter {
  public:
    explicit json_array_splitter(byte_reader & in) : in_(in) {}
    bool open();
    bool next(raw_record & rec);

  private:
    byte_reader & in_;
    bool done_ = false;
};

// RFC 4180 CSV: ',' separated, '"' quoted cells may hold commas, quotes ("") and newlines;
// '\r\n' and '\n' both end a row. Blank rows are skipped.
bool next_csv_row(byte_reader & in, raw_record & rec);

// Replaces every invalid UTF-8 sequence in `s` with U+FFFD; returns how many were replaced.
size_t sanitize_utf8(std::string & s);

}  // namespace im::dataset
