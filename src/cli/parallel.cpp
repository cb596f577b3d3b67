#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_parallel(CLI::App & root) {
    auto * cmd = root.add_subcommand("parallel", "(not built yet)");
    cmd->callback([] { throw_runtime("parallel: not implemented yet"); });
}

}  // namespace im::cli
