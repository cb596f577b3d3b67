#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/output.h"
#include "core/escape.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "engine/backend.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <clocale>
#include <cstdlib>

static std::string version_text() {
    im::engine::init(false);
    return fmt::format("infermeter {}\nllama.cpp {}\nbackends: {}\nbuild: {}{}", im::build_info::version(),
                       im::build_info::llama_commit(), fmt::join(im::engine::backend_names(), ", "), im::build_info::build_type(),
                       im::build_info::sanitized() ? " (ASan+UBSan)" : "");
}

// After a command failed: reports a lost stdout as well (its data never reached the reader). Returns 0:
// the command's own exit status stands.
static int stdout_lost() {
    try {
        im::cli::finish_stdout();
    } catch (const im::error & e) {
        fmt::print(stderr, "infermeter: error: {}\n", e.what());
    }
    return 0;
}

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    CLI::App app{"infermeter: LLM inference performance evaluation, from a dataset to a recommendation", "infermeter"};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_text);
    auto & g = im::cli::globals();
    // Shell-quoted: the reports' "Command:" line, pasted, runs this command and nothing else.
    g.command_line = im::esc::shell_join(std::vector<std::string>(argv, argv + argc));
    app.add_flag("-v,--verbose", g.verbose, "Show llama.cpp's own log on stderr");
    app.add_flag("-q,--quiet", g.quiet, "No progress or context on stderr (warnings stay)");
    app.parse_complete_callback([&g] {
        im::log::set_quiet(g.quiet || std::getenv("INFERMETER_QUIET") != nullptr);
    });

    im::cli::add_model(app);
    im::cli::add_dataset(app);
    im::cli::add_analyze(app);
    im::cli::add_bench(app);
    im::cli::add_parallel(app);
    im::cli::add_serve(app);
    im::cli::add_merge(app);
    im::cli::add_roofline(app);
    im::cli::add_evaluate(app);
    im::cli::add_tune(app);
    im::cli::add_history(app);

    im::interrupt::install();
    try {
        std::vector<std::string> args = im::cli::expand_short_aliases(argc, argv);
        std::vector<char *> ptrs;
        for (auto & a : args) ptrs.push_back(a.data());
        app.parse(static_cast<int>(ptrs.size()), ptrs.data());
        im::cli::finish_stdout();
    } catch (const CLI::ParseError & e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    } catch (const im::error & e) {
        fmt::print(stderr, "infermeter: {}{}\n", e.kind() == im::error_kind::regression ? "" : "error: ", e.what());
        return im::exit_code(e.kind()) | stdout_lost();
    } catch (const std::exception & e) {
        fmt::print(stderr, "infermeter: error: {}\n", e.what());
        return 1 | stdout_lost();
    }
    return im::interrupt::requested() ? 130 : 0;
}
