#include "cli/commands.h"

#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "dataset/synth.h"
#include "dataset/vocab.h"
#include "model/preset.h"
#include "model/synth.h"

#include <fmt/format.h>

namespace im::cli {

namespace {

struct synth_args {
    std::string out;
    std::string model;
    std::string vocab;
    std::string prompt_tokens;
    std::string output_tokens;
    size_t records = 0;
    uint64_t seed = 0;
    bool random_lengths = false;
    int threads = 0;
};

void run_synth(const synth_args & a) {
    auto opts = dataset::reference_synth_options();
    if (!a.prompt_tokens.empty()) opts.prompt_tokens = dataset::parse_distribution(a.prompt_tokens, "--prompt-tokens");
    if (!a.output_tokens.empty()) opts.output_tokens = dataset::parse_distribution(a.output_tokens, "--output-tokens");
    opts.records = a.records;
    opts.seed = a.seed;
    opts.stratified = !a.random_lengths;
    opts.out = a.out;
    opts.out_hint = "-o names the output file";
    fs::refuse_input_overwrite(a.out, "-o", {{a.vocab, "--vocab"}, {a.model, "-m"}});
    check_threads(a.threads, "-t");
    if (a.records == 0 || a.records > 100'000'000) throw_usage("--records: {} is out of range (1..100,000,000)", a.records);
    opts.n_threads = a.threads;
    init_engine();
    // The reference's model is Qwen2: its vocabulary is the default.
    const std::string model = a.model.empty() && a.vocab.empty() ? "synth:qwen2-1.5b" : a.model;
    const dataset::vocabulary vocab(dataset::vocab_file_for(model, a.vocab));
    log::info("dataset synth: {} records, prompt tokens {}, output tokens {}, vocabulary {}",
              fmtx::thousands(static_cast<int64_t>(opts.records)), opts.prompt_tokens.spec, opts.output_tokens.spec,
              vocab.path().filename().string());
    const auto r = dataset::synthesize(opts, vocab.get());
    if (opts.out != "-") fmt::print("{}\n", opts.out.string());  // "-": stdout holds the dataset itself
    log::info("wrote {}: {} records, {} MB, mean prompt {} tokens, mean output {} tokens, {}", opts.out.string(),
              fmtx::thousands(static_cast<int64_t>(r.records)), fmtx::thousands(static_cast<double>(r.bytes) / 1e6, 1),
              fmtx::thousands(r.mean_prompt_tokens, 1), fmtx::thousands(r.mean_output_tokens, 1),
              fmtx::duration(r.seconds));
}

}  // namespace

void add_dataset(CLI::App & root) {
    auto * cmd = root.add_subcommand("dataset", "Synthetic datasets");
    cmd->require_subcommand(1);
    const auto defaults = dataset::reference_synth_options();
    auto a = std::make_shared<synth_args>();
    a->records = defaults.records;
    a->seed = defaults.seed;
    auto * synth = cmd->add_subcommand(
        "synth", "Write an Alpaca JSONL whose prompt and output lengths, in tokens of a vocabulary, follow given "
                 "distributions (default: the reference evaluation's dataset)");
    synth->add_option("-o,--output", a->out, "Output file (.jsonl)")->required();
    synth->add_option("-m,--model", a->model, "Model whose vocabulary measures lengths: a .gguf or synth:PRESET "
                                              "(default: synth:qwen2-1.5b's vocabulary)");
    synth->add_option("--vocab", a->vocab, "Vocabulary file instead of a model (a ggml-vocab-*.gguf)");
    synth->add_option("--prompt-tokens", a->prompt_tokens,
                      "Prompt length distribution: fixed:N, uniform:A,B, normal:mean=M,sd=S[,min=N,max=N], "
                      "lognormal:median=M,p90=P (default: " + defaults.prompt_tokens.spec + ")");
    synth->add_option("--output-tokens", a->output_tokens,
                      "Output length distribution, same forms (default: " + defaults.output_tokens.spec + ")");
    synth->add_option("--records", a->records, "Number of records")->capture_default_str();
    synth->add_option("--seed", a->seed, "Random seed (lengths' order and text)")->capture_default_str();
    synth->add_flag("--random-lengths", a->random_lengths,
                    "Draw lengths independently (default: at evenly spaced quantiles, so the file's percentiles are "
                    "the distribution's)");
    synth->add_option("-t,--threads", a->threads,
                      fmt::format("Threads checking token counts (default: all cores; at most {})", max_threads()));
    synth->callback([a] { run_synth(*a); });
}

}  // namespace im::cli
