#include "cli/commands.h"

#include "core/error.h"

namespace im::cli {

void add_bench(CLI::App & root) {
    auto * cmd = root.add_subcommand("bench", "(not built yet)");
    cmd->callback([] { throw_runtime("bench: not implemented yet"); });
}

}  // namespace im::cli
