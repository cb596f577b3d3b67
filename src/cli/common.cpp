#include "cli/commands.h"

#include "engine/backend.h"

namespace im::cli {

global_options & globals() {
    static global_options g;
    return g;
}

void init_engine() { engine::init(globals().verbose); }

}  // namespace im::cli
