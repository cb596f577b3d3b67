#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_evaluate(CLI::App & root) {
    auto * cmd = root.add_subcommand("evaluate", "(not built yet)");
    cmd->callback([] { throw_runtime("evaluate: not implemented yet"); });
}

}  // namespace im::cli
