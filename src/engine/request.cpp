#include "engine/request.h"

namespace im::engine {

const char * failure_name(failure f) {
    switch (f) {
        case failure::none: return "none";
        case failure::rejected: return "rejected";
        case failure::refused: return "refused";
        case failure::timeout: return "timeout";
        case failure::http_status: return "http_status";
        case failure::cut_stream: return "cut_stream";
        case failure::malformed: return "malformed";
        case failure::error_event: return "error_event";
        case failure::cancelled: return "cancelled";
        case failure::engine_error: return "engine_error";
    }
    return "unknown";
}

std::optional<failure> failure_from_name(const std::string & name) {
    for (const failure f : {failure::none, failure::rejected, failure::refused, failure::timeout, failure::http_status,
                            failure::cut_stream, failure::malformed, failure::error_event, failure::cancelled,
                            failure::engine_error}) {
        if (name == failure_name(f)) return f;
    }
    return std::nullopt;
}

}  // namespace im::engine
