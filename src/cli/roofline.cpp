#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_roofline(CLI::App & root) {
    auto * cmd = root.add_subcommand("roofline", "(not built yet)");
    cmd->callback([] { throw_runtime("roofline: not implemented yet"); });
}

}  // namespace im::cli
