#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_dataset(CLI::App & root) {
    auto * cmd = root.add_subcommand("dataset", "(not built yet)");
    cmd->callback([] { throw_runtime("dataset: not implemented yet"); });
}

}  // namespace im::cli
