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

}  // namespace im::engine
