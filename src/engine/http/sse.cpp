#include "engine/http/sse.h"

#include <fmt/format.h>

#include <cstring>

namespace im::engine::http {

sse_parser::sse_parser(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

bool sse_parser::mid_event() const { return !line_.empty() || has_fields_ || !bom_probe_.empty(); }

void sse_parser::feed(std::string_view bytes, std::vector<sse_event> & out) {
    if (failed()) return;
    n_bytes_ += bytes.size();
    // The stream may start with a UTF-8 BOM (EF BB BF), possibly split across the first reads.
    if (!bom_checked_) {
        static constexpr std::string_view bom = "\xEF\xBB\xBF";
        const size_t take = std::min(bytes.size(), bom.size() - bom_probe_.size());
        bom_probe_.append(bytes.substr(0, take));
        if (bom.substr(0, bom_probe_.size()) == bom_probe_) {
            bytes.remove_prefix(take);
            if (bom_probe_.size() < bom.size()) return;  // need more bytes to decide
            bom_probe_.clear();
            bom_checked_ = true;
        } else {
            // Not a BOM: the probed bytes are ordinary stream bytes (all but the ones of this read).
            std::string prefix = bom_probe_.substr(0, bom_probe_.size() - take);
            bom_probe_.clear();
            bom_checked_ = true;
            if (!prefix.empty()) {
                n_bytes_ -= prefix.size();  // counted when they first arrived
                feed(prefix, out);
                if (failed()) return;
            }
        }
    }
    if (skip_lf_ && !bytes.empty()) {
        skip_lf_ = false;
        if (bytes.front() == '\n') bytes.remove_prefix(1);
    }
    while (!bytes.empty()) {
        const char * begin = bytes.data();
        const size_t n = bytes.size();
        // Find the next CR or LF. memchr twice is faster than a byte loop for long lines.
        const void * lf = std::memchr(begin, '\n', n);
        const size_t lf_pos = lf ? size_t(static_cast<const char *>(lf) - begin) : n;
        const void * cr = std::memchr(begin, '\r', lf_pos);
        const size_t end = cr ? size_t(static_cast<const char *>(cr) - begin) : lf_pos;
        if (end == n) {  // no line end in this read: keep the partial line
            if (line_.size() + n > max_line_bytes_) {
                error_ = fmt::format("SSE line longer than {} bytes", max_line_bytes_);
                return;
            }
            line_.append(begin, n);
            return;
        }
        if (line_.size() + end > max_line_bytes_) {
            error_ = fmt::format("SSE line longer than {} bytes", max_line_bytes_);
            return;
        }
        size_t consumed = end + 1;
        if (begin[end] == '\r') {
            if (end + 1 < n) {
                if (begin[end + 1] == '\n') ++consumed;
            } else {
                skip_lf_ = true;  // the LF of a CRLF may open the next read
            }
        }
        if (line_.empty()) {
            process_line(std::string_view(begin, end), out);
        } else {
            line_.append(begin, end);
            std::string line = std::move(line_);
            line_.clear();
            process_line(line, out);
        }
        bytes.remove_prefix(consumed);
    }
}

void sse_parser::process_line(std::string_view line, std::vector<sse_event> & out) {
    if (line.empty()) {
        dispatch(out);
        return;
    }
    if (line.front() == ':') return;  // comment
    std::string_view field = line;
    std::string_view value;
    if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
        if (has_data_) data_.push_back('\n');
        data_.append(value);
        has_data_ = true;
        has_fields_ = true;
    } else if (field == "event") {
        type_.assign(value);
        has_fields_ = true;
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
        has_fields_ = true;
    } else if (field == "retry") {
        bool digits = !value.empty() && value.size() <= 18;
        for (char c : value) digits = digits && c >= '0' && c <= '9';
        if (digits) {
            int64_t v = 0;
            for (char c : value) v = v * 10 + (c - '0');
            retry_ms_ = v;
        }
        has_fields_ = true;
    }
    // Any other field is ignored (spec).
}

void sse_parser::dispatch(std::vector<sse_event> & out) {
    // Spec: an event with an empty data buffer is not dispatched; its type is reset either way.
    if (has_data_) {
        sse_event e;
        e.type = type_.empty() ? "message" : std::move(type_);
        e.data = std::move(data_);
        e.id = last_id_;
        out.push_back(std::move(e));
        ++n_events_;
    }
    data_.clear();
    type_.clear();
    has_data_ = false;
    has_fields_ = false;
}

}  // namespace im::engine::http
