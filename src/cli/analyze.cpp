#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_analyze(CLI::App & root) {
    auto * cmd = root.add_subcommand("analyze", "(not built yet)");
    cmd->callback([] { throw_runtime("analyze: not implemented yet"); });
}

}  // namespace im::cli
