#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// An incremental parser for Server-Sent Events (WHATWG HTML §9.2 "Server-sent events",
// "Interpreting an event stream"): bytes arrive in reads of any size and split anywhere; events come
// out when their terminating blank line arrives. Lines end in CRLF, LF or CR (a CR at the end of one
// read and an LF at the start of the next are one line end). Comments (`:` first) are skipped, one
// space after `field:` is dropped, `data` lines join with LF, unknown fields are ignored, a UTF-8
// BOM at the start of the stream is skipped, and any other bytes pass through unchanged.
namespace im::engine::http {

struct sse_event {
    std::string type;  // the `event` field; "message" when the event had none
    std::string data;  // the `data` lines joined with "\n" (no trailing "\n")
    std::string id;    // the last `id` seen in the stream so far (the spec's last-event-ID buffer)
};

class sse_parser {
  public:
    // Lines longer than `max_line_bytes` (terminator excluded) make the stream malformed: the parser
    // stops at that point instead of buffering without bound.
    static constexpr size_t default_max_line_bytes = size_t(8) << 20;
    explicit sse_parser(size_t max_line_bytes = default_max_line_bytes);

    // Parses `bytes` and appends every event they complete to `out`. After an error (failed()) it
    // ignores further input. Not thread-safe; one parser per stream.
    void feed(std::string_view bytes, std::vector<sse_event> & out);

    // True once a line exceeded the cap; error() says so in words.
    bool failed() const { return !error_.empty(); }
    const std::string & error() const { return error_; }
    // True when bytes of an unfinished event are buffered (a stream that ends here was cut mid-event).
    bool mid_event() const;
    // The last `retry` value in ms, -1 if none.
    int64_t retry_ms() const { return retry_ms_; }
    // Total events dispatched and bytes consumed (for tests and client statistics).
    uint64_t n_events() const { return n_events_; }
    uint64_t n_bytes() const { return n_bytes_; }

  private:
    void process_line(std::string_view line, std::vector<sse_event> & out);
    void dispatch(std::vector<sse_event> & out);

    size_t max_line_bytes_;
    std::string line_;          // a partial line carried from the previous read
    std::string data_;          // data buffer of the event being built
    std::string type_;          // event type buffer
    std::string last_id_;       // last event ID buffer
    bool has_data_ = false;     // a data field was seen for the current event
    bool has_fields_ = false;   // any non-comment field was seen for the current event
    bool skip_lf_ = false;      // the last read ended in CR: a leading LF belongs to that line end
    bool bom_checked_ = false;  // the first bytes of the stream were checked for a BOM
    std::string bom_probe_;     // up to 2 bytes of a possible BOM split across reads
    int64_t retry_ms_ = -1;
    uint64_t n_events_ = 0;
    uint64_t n_bytes_ = 0;
    std::string error_;
};

}  // namespace im::engine::http
