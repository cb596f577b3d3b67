#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_history(CLI::App & root) {
    auto * cmd = root.add_subcommand("history", "(not built yet)");
    cmd->callback([] { throw_runtime("history: not implemented yet"); });
}

}  // namespace im::cli
