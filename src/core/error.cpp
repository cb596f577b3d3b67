#include "core/error.h"

namespace im {

int exit_code(error_kind kind) {
    switch (kind) {
        case error_kind::usage:       return 2;
        case error_kind::runtime:     return 1;
        case error_kind::interrupted: return 130;
        case error_kind::regression:  return 3;
    }
    return 1;
}

}  // namespace im
