#include "cli/commands.h"

#include "cli/output.h"
#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "dataset/analysis.h"
#include "dataset/vocab.h"

#include <fmt/format.h>

namespace im::cli {

namespace {

struct analyze_args {
    std::string dataset;
    std::string model;
    std::string vocab;
    std::string format = "auto";
    std::string prompt_field, output_field;
    bool chat_template = false;
    double max_bad = 0.01;
    size_t max_record_bytes = dataset::default_max_record_bytes;
    int threads = 0;
    std::string output = "md";
    std::string export_path;
    bool tokenizer_only = false;
    std::string round = "pow2";
};

std::string render(const dataset::analysis & a, const std::string & kind) {
    return kind == "json" ? dataset::to_json(a).dump(2) + "\n" : dataset::to_markdown(a);
}

void run_analyze(const analyze_args & args) {
    if (args.output != "md" && args.output != "json") {
        throw_usage("-o: unknown output '{}' (md or json)", args.output);
    }
    std::string export_kind;
    if (!args.export_path.empty()) {
        const std::string ext = std::filesystem::path(args.export_path).extension().string();
        if (ext != ".md" && ext != ".json") {
            throw_usage("--export {}: the extension picks the format: .md or .json", args.export_path);
        }
        export_kind = ext.substr(1);
    }
    check_threads(args.threads, "-t");
    fs::refuse_input_overwrite(args.export_path, "--export", {{args.dataset, "--dataset"}, {args.vocab, "--vocab"}});
    init_engine();
    dataset::analyze_options opts;
    opts.path = args.dataset;
    opts.fmt = dataset::parse_format(args.format);
    opts.prompt_field = args.prompt_field;
    opts.output_field = args.output_field;
    opts.chat_template = args.chat_template;
    opts.max_bad_fraction = args.max_bad;
    opts.n_threads = args.threads;
    check_range(static_cast<int64_t>(args.max_record_bytes), "--max-record-bytes", 1024, int64_t{1} << 30);
    opts.max_record_bytes = args.max_record_bytes;
    opts.round = dataset::parse_rounding(args.round);
    const dataset::vocabulary vocab(dataset::vocab_file_for(args.model, args.vocab));
    opts.tokenizer_name = vocab.path().filename().string();
    if (args.chat_template) opts.chat_template_text = vocab.chat_template();

    if (args.tokenizer_only) {
        const auto r = dataset::measure_tokenizer(opts, vocab.get());
        fmt::print("tokenizer_only text_bytes={} tokens={} seconds={:.3f} mb_per_s={:.3f}\n", r.text_bytes, r.tokens,
                   r.seconds, r.seconds > 0 ? static_cast<double>(r.text_bytes) / r.seconds / 1e6 : 0.0);
        return;
    }
    log::info("analyze: {} with {} on {} threads", args.dataset, opts.tokenizer_name,
              opts.n_threads > 0 ? std::to_string(opts.n_threads) : std::string("all"));
    const auto a = dataset::analyze(opts, vocab.get());
    log::info("analyze: {} records, {} samples, {} MB in {} ({} MB/s){}", fmtx::thousands(static_cast<int64_t>(a.records)),
              fmtx::thousands(static_cast<int64_t>(a.output_lengths.size())),
              fmtx::thousands(static_cast<double>(a.bytes) / 1e6, 1), fmtx::duration(a.seconds),
              fmtx::thousands(a.bytes_per_s / 1e6, 2), a.interrupted ? " — interrupted, partial results" : "");
    print_stdout(render(a, args.output));
    if (!export_kind.empty()) {
        fs::write_output(args.export_path, render(a, export_kind), "--export");
        log::info("wrote {}", args.export_path);
    }
}

}  // namespace

void add_analyze(CLI::App & root) {
    auto a = std::make_shared<analyze_args>();
    auto * cmd = root.add_subcommand(
        "analyze", "Tokenize a dataset with a model's vocabulary; print token length statistics and the recommended "
                   "--n-prompt / --n-predict");
    cmd->add_option("--dataset", a->dataset, "Dataset file: .jsonl, .json or .csv, optionally .gz")->required();
    cmd->add_option("-m,--model", a->model, "Model whose vocabulary counts tokens: a .gguf or synth:PRESET");
    cmd->add_option("--vocab", a->vocab, "Vocabulary file instead of a model (e.g. llama.cpp's ggml-vocab-qwen2.gguf)");
    cmd->add_option("--format", a->format,
                    "Record format: auto, alpaca, sharegpt, openai (schema), or jsonl, json, csv (container)")
        ->capture_default_str();
    cmd->add_option("--prompt-field", a->prompt_field, "Field (or CSV column) holding the prompt");
    cmd->add_option("--output-field", a->output_field, "Field (or CSV column) holding the output");
    cmd->add_flag("--chat-template", a->chat_template,
                  "Apply the model's chat template to prompts and count its tokens");
    cmd->add_option("--max-bad-records", a->max_bad, "Fail when more than this fraction of records is malformed")
        ->capture_default_str();
    cmd->add_option("--max-record-bytes", a->max_record_bytes,
                    "Longest record read (bytes, 1024..2^30): a longer one is skipped and counted as malformed; "
                    "memory stays bounded by it")
        ->capture_default_str();
    cmd->add_option("-t,--threads", a->threads,
                    fmt::format("Tokenizing threads (default: all cores; at most {})", max_threads()));
    cmd->add_option("--round", a->round,
                    "n-predict granularity: pow2 (the smallest power of two covering each scenario's target), 128 "
                    "(multiple of 128) or exact")
        ->capture_default_str();
    cmd->add_option("-o,--output", a->output, "What to print on stdout: md or json")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write the result to FILE (.md or .json), atomically");
    cmd->add_flag("--tokenizer-only", a->tokenizer_only,
                  "Diagnostic: time llama_tokenize alone on one thread over the dataset's texts (bench/analyze.sh)")
        ->group("");
    cmd->callback([a] { run_analyze(*a); });
}

}  // namespace im::cli
