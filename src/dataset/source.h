#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
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

// Default bound on one record's bytes (--max-record-bytes): a longer record is skipped and counted as
// malformed, and memory stays bounded by it whatever the file holds (one 50 MB line cost 2.8 GB).
constexpr size_t default_max_record_bytes = 16u << 20;
// JSON nested deeper than this is malformed (nothing in a dataset needs it; it would cost memory).
constexpr size_t max_json_depth = 1000;

// Buffered byte-at-a-time access with line counting (1-based, '\n' ends a line). Reads end early,
// as if at the end of the input, once SIGINT/SIGTERM asked to stop (stopped() then says so), so that
// a stream without an end (a FIFO, /dev/urandom) stops promptly.
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
    // Appends bytes up to and including the next '\n' (or to the end) to `out`, at most `max_bytes`
    // of them: the rest of a longer line is read and dropped. `line_bytes` gets the line's full
    // length. False at the end.
    bool read_line(std::string & out, size_t max_bytes, uint64_t & line_bytes);
    size_t line() const { return line_; }
    uint64_t bytes_read() const { return bytes_; }
    bool stopped() const { return stopped_; }
    const byte_source & source() const { return src_; }

  private:
    bool fill();
    byte_source & src_;
    std::vector<char> buf_;
    size_t pos_ = 0, end_ = 0;
    size_t line_ = 1;
    uint64_t bytes_ = 0;
    bool stopped_ = false;
};

// One record as the container holds it, before any schema is applied.
struct raw_record {
    size_t line = 0;                  // 1-based line where the record starts
    size_t element = 0;               // 1-based element of a JSON array or document; 0 for JSONL/CSV
    std::string text;                 // JSON text (jsonl, json array)
    std::vector<std::string> fields;  // CSV cells
    uint64_t bytes = 0;               // the record's length in the file
    bool oversize = false;            // longer than max_record_bytes: text/fields are incomplete
    std::string error;                // set when the container itself is broken here ("not valid JSON: ...")
};

// Non-blank lines of a JSON Lines file, each one record.
bool next_json_line(byte_reader & in, raw_record & rec, size_t max_record_bytes = default_max_record_bytes);

// Top-level JSON values: the elements of an array (open() consumed a '['), or a document of one or
// more objects (open() found none: a .json holding one object is one record). A syntax checker cuts
// them, so one malformed element costs one record: after an error it resynchronises at the next
// '{' that follows ',' '[' '}' or starts a line, parses to its end and, when `accept` agrees that it
// is a record (not an object nested in the damaged one), goes on from there. An array the file
// ends in is reported as one bad record ("not closed"), never as an exception.
class json_array_splitter {
  public:
    json_array_splitter(byte_reader & in, size_t max_record_bytes = default_max_record_bytes)
        : in_(in), max_bytes_(max_record_bytes) {}
    // Consumes a leading byte order mark and '['; false (and document mode) when the input is no array.
    bool open();
    // True when open() found an array (elements), false in document mode (objects).
    bool open_array() const { return array_; }
    bool next(raw_record & rec);
    // Decides whether a resynchronisation candidate (complete JSON text) is a record; default: any object.
    void set_accept(std::function<bool(const std::string &)> accept) { accept_ = std::move(accept); }

  private:
    int take();
    void skip_space();
    std::string scan_value(raw_record & rec);
    bool read_element(raw_record & rec);
    bool resync(raw_record & rec);
    void after_value();

    byte_reader & in_;
    size_t max_bytes_;
    std::function<bool(const std::string &)> accept_;
    bool array_ = false;
    bool done_ = false;
    bool resync_ = false;
    bool closed_ = false;
    size_t elements_ = 0;
    int prev_ = 0;            // the last non-space byte consumed
    bool line_start_ = true;  // nothing but space consumed since the last '\n'
};

// RFC 4180 CSV: ',' separated, '"' quoted cells may hold commas, quotes ("") and newlines;
// '\r\n' and '\n' both end a row. Blank rows are skipped. A row longer than max_record_bytes is
// read to its end and returned with oversize set and no cells.
bool next_csv_row(byte_reader & in, raw_record & rec, size_t max_record_bytes = default_max_record_bytes);

// True when `text` nests arrays/objects deeper than `limit` (strings are skipped).
bool json_too_deep(const std::string & text, size_t limit = max_json_depth);

// Replaces every invalid UTF-8 sequence in `s` with U+FFFD; returns how many were replaced.
size_t sanitize_utf8(std::string & s);

}  // namespace im::dataset
