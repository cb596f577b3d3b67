#include "core/error.h"

namespace im {

int exit_code(error_kind kind) {
    switch (kind) {
        case error_kind::usage:       return 2;
        case error_kind::runtime:     return 1;
        case error_kind::interrupted: return 130;
        case error_kind::regression:  return 3;
        case error_kind::internal:    return 1;
    }
    return 1;
}

namespace detail {

void check_failed(const char * condition, const char * file, int line, const std::string & detail) {
    throw error(error_kind::internal, fmt::format("internal error at {}:{}: check '{}' failed{}{} (a bug in infermeter; "
                                                  "please report it with the command line)",
                                                  file, line, condition, detail.empty() ? "" : ": ", detail));
}

}  // namespace detail

}  // namespace im
