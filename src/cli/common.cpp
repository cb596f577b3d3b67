#include "cli/commands.h"

#include "core/build_info.h"
#include "core/log.h"
#include "engine/backend.h"

#include <string>

namespace im::cli {

global_options & globals() {
    static global_options g;
    return g;
}

void init_engine() {
    engine::init(globals().verbose);
    static bool warned = false;
    if (!warned) {
        warned = true;
        if (std::string(build_info::build_type()) != "Release" && std::string(build_info::build_type()) != "RelWithDebInfo") {
            log::warn("this is a {} build: measurements will be slow (build with ./scripts/build)", build_info::build_type());
        }
        if (build_info::sanitized()) {
            log::warn("sanitizers are enabled: measurements will be slow");
        }
    }
}

}  // namespace im::cli
