// `infermeter merge TRACE...`: the --trace files of `serve --shard K/N` (one per client process)
// merged into one serve result, written by serve's own writers (docs/scale-out.md).
#include "cli/commands.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/log.h"
#include "report/measurements.h"
#include "report/requests.h"
#include "report/run_context.h"
#include "report/trace.h"
#include "workload/shards.h"

#include <fmt/format.h>

#include <filesystem>
#include <memory>

namespace im::cli {

namespace {

struct merge_args {
    std::vector<std::string> traces;
    std::string output = "md", export_path;
    store::store_flags db;
};

void run(const merge_args & a) {
    const auto out = output_target::from_flags(a.output, a.export_path);
    std::vector<std::pair<std::filesystem::path, std::string>> inputs;
    for (const auto & t : a.traces) inputs.push_back({t, "merge TRACE"});
    out.refuse_inputs(inputs);

    std::vector<std::vector<workload::request_run>> files;
    for (const auto & t : a.traces) files.push_back(report::read_trace(t));
    for (size_t f = 1; f < files.size(); ++f) {
        if (files[f].size() != files[0].size()) {
            throw_usage("merge: {} has {} load level(s), {} has {}: shards of one run have the same levels", a.traces[0],
                        files[0].size(), a.traces[f], files[f].size());
        }
    }
    std::vector<workload::merged_run> levels;
    std::vector<workload::request_run> runs;
    bool interrupted = false;
    for (size_t li = 0; li < files[0].size(); ++li) {
        std::vector<workload::shard_run> parts;
        for (size_t f = 0; f < files.size(); ++f) parts.push_back({a.traces[f], std::move(files[f][li])});
        auto m = workload::merge_shards(parts);
        const auto & mt = m.run.metrics;
        log::info("{}: {:.2f} req/s, output {:.1f} t/s, TTFT p99 {:.1f} ms, TPOT p99 {:.2f} ms, {} failed (from {} shard{})",
                  m.run.load_label(), mt.request_tps, mt.output_tps, mt.ttft.p99, mt.tpot.p99, mt.n_failed, m.shards.size(),
                  m.shards.size() == 1 ? "" : "s");
        if (workload::start_skew_share(m) > workload::max_start_skew_share) {
            log::warn("{}: the shards' schedules started {:.1f} ms apart ({:.1f}% of the window): give every shard the same "
                      "--start-at to align them",
                      m.run.load_label(), static_cast<double>(m.start_skew_ns) / 1e6, 100 * workload::start_skew_share(m));
        }
        for (size_t i = 0; i < m.shards.size(); ++i) {
            if (m.shards[i].interrupted) log::warn("{}: {} was interrupted: the merged result is partial", m.run.load_label(), m.sources[i]);
        }
        interrupted = interrupted || m.run.interrupted;
        runs.push_back(m.run);
        levels.push_back(std::move(m));
    }

    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);
    ctx.model_type = "HTTP " + runs.front().engine;
    const auto make_table = [&](bool stopped) { return report::requests_table("serve", runs, ctx, nullptr, stopped); };
    const auto markdown = [&](bool stopped) {
        std::string md = fmt::format("## Serving Under Load, {} Shards Merged ({})\n\n", levels.front().shards.size(),
                                     runs.front().engine);
        md += report::requests_markdown(runs, runs.front().workload.objectives);
        md += report::shards_markdown(levels);
        if (stopped) md += report::interrupted_note();
        return md;
    };
    results_writer writer(out, a.db, "serve", make_table, markdown);
    writer.finish(ctx, interrupted);
}

}  // namespace

void add_merge(CLI::App & root) {
    auto a = std::make_shared<merge_args>();
    auto * cmd = root.add_subcommand(
        "merge", "Merge the --trace files of `serve --shard K/N` (shards 1..N of one schedule, one per client process or host) "
                 "into one serve result: percentiles from the merged per-request samples, throughput over the union's steady "
                 "window, failures by cause. Records are placed on each host's wall clock (aligned when every shard had "
                 "the same --start-at; otherwise the start skew is reported) (docs/scale-out.md)");
    cmd->add_option("TRACE", a->traces, "The shards' --trace files (JSON Lines), each shard once, in any order")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("-o,--output", a->output, "stdout format: md, csv, json, jsonl, sql")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write the merged result to FILE (.md .csv .json .jsonl .sql)");
    add_store_flags(cmd, a->db);
    cmd->callback([a] { run(*a); });
}

}  // namespace im::cli
