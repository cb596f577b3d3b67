#include "cli/request_flags.h"

#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "dataset/synth.h"
#include "report/trace.h"

#include <fmt/format.h>

#include <cmath>

namespace im::cli {

void add_request_flags(CLI::App * cmd, request_flags & f) {
    cmd->add_option("--concurrency", f.concurrency,
                    "Closed loop: users, each sending its next request when the last ends (list: 1,2,4,8)");
    cmd->add_option("--rate", f.rate, "Open loop: requests per second (list: 1,2.5,5)");
    cmd->add_option("--arrival", f.arrival, "Open-loop arrivals: poisson, constant or gamma")->capture_default_str();
    cmd->add_option("--burstiness", f.burstiness, "Gamma arrivals' shape (1 = Poisson, < 1 burstier)")->capture_default_str();
    cmd->add_option("--max-concurrency", f.max_concurrency, "Open loop: at most this many in flight; later ones queue (their wait counts in TTFT)");
    cmd->add_option("--think-time", f.think_time_s, "Closed loop: seconds a user waits between requests")->capture_default_str();
    cmd->add_option("--requests", f.requests,
                    "Requests per load level, warmup included (default: max(16, 4 x concurrency) closed, max(32, 20 s x rate) open)");
    cmd->add_option("--duration", f.duration_s, "Stop sending after this many seconds (instead of --requests)");
    cmd->add_option("--warmup-requests", f.warmup_requests, "First requests excluded from every statistic")->capture_default_str();
    cmd->add_option("--dataset", f.dataset, "Prompts and output lengths from a dataset (Alpaca/ShareGPT/OpenAI JSON(L), CSV)");
    cmd->add_option("--max-samples", f.max_samples, "Dataset samples read at most")->capture_default_str();
    cmd->add_option("--prompt-tokens", f.prompt_tokens, "Prompt lengths from a distribution (dataset synth syntax, e.g. normal:mean=70,sd=25)");
    cmd->add_option("--output-tokens", f.output_tokens, "Output lengths from a distribution (e.g. lognormal:median=900,p90=2088)");
    cmd->add_option("--slo", f.slo, "Objectives: ttft=500ms,tpot=30ms (p99; prefix p90: for another percentile)")->capture_default_str();
    cmd->add_flag("--find-capacity", f.find_capacity, "Search the highest concurrency and request rate that meet --slo");
    cmd->add_option("--capacity-max-concurrency", f.capacity_max_concurrency, "Upper bound of the capacity search")->capture_default_str();
    cmd->add_option("--trace", f.trace, "Write a row per load level, per step and per request (JSON Lines; every timestamp and chunk time) to FILE: what `infermeter merge` reads");
    cmd->add_option("--seed", f.seed, "Seed of arrivals and prompts")->capture_default_str();
}

namespace {

std::vector<double> parse_rates(const std::string & text) {
    std::vector<double> out;
    for (const auto & item : split_list(text)) {
        size_t used = 0;
        double r = 0;
        try {
            r = std::stod(item, &used);
        } catch (const std::exception &) {
            throw_usage("--rate: '{}' is not a number of requests per second", item);
        }
        if (used != item.size() || !(r > 0) || !std::isfinite(r)) throw_usage("--rate: '{}' must be a number > 0", item);
        out.push_back(r);
    }
    if (out.empty()) throw_usage("--rate: no rate given");
    if (out.size() > 64) throw_usage("--rate: at most 64 load levels (got {})", out.size());
    return out;
}

workload::arrival_kind arrival_of(const std::string & s) {
    if (s == "poisson") return workload::arrival_kind::poisson;
    if (s == "constant") return workload::arrival_kind::constant;
    if (s == "gamma") return workload::arrival_kind::gamma;
    throw_usage("--arrival '{}': use poisson, constant or gamma", s);
}

}  // namespace

workload::request_workload base_workload(const request_flags & f) {
    workload::request_workload w;
    w.objectives = workload::parse_slo(f.slo);
    w.arrivals = workload::arrival_kind::closed;
    w.burstiness = f.burstiness;
    w.max_concurrency = f.max_concurrency;
    w.think_time_s = f.think_time_s;
    w.n_requests = f.requests;
    w.duration_s = f.duration_s;
    w.warmup_requests = f.warmup_requests;
    w.seed = f.seed;
    if (f.max_concurrency < 0) throw_usage("--max-concurrency must be >= 0 (got {})", f.max_concurrency);
    if (f.capacity_max_concurrency < 1 || f.capacity_max_concurrency > 4096) {
        throw_usage("--capacity-max-concurrency must be in 1..4096 (got {})", f.capacity_max_concurrency);
    }
    return w;
}

std::vector<workload::request_workload> load_levels(const request_flags & f) {
    if (!f.concurrency.empty() && !f.rate.empty()) {
        throw_usage("--concurrency (closed loop) and --rate (open loop) exclude each other; use --rate with --max-concurrency "
                    "to cap requests in flight");
    }
    const auto base = base_workload(f);
    std::vector<workload::request_workload> out;
    if (!f.rate.empty()) {
        for (double r : parse_rates(f.rate)) {
            auto w = base;
            w.arrivals = arrival_of(f.arrival);
            w.rate = r;
            if (w.n_requests == 0 && w.duration_s == 0) w.n_requests = workload::default_requests(w);
            workload::validate(w);
            out.push_back(w);
        }
        return out;
    }
    const auto cs = parse_int_list(f.concurrency.empty() ? "1" : f.concurrency, "--concurrency", 1);
    if (cs.size() > 64) throw_usage("--concurrency: at most 64 load levels (got {})", cs.size());
    for (int c : cs) {
        if (c > 4096) throw_usage("--concurrency {} is above the supported 4096", c);
        auto w = base;
        w.concurrency = c;
        if (w.n_requests == 0 && w.duration_s == 0) w.n_requests = workload::default_requests(w) + w.warmup_requests;
        workload::validate(w);
        out.push_back(w);
    }
    return out;
}

workload::length_source lengths_of(const request_flags & f, int n_prompt, int n_predict, const llama_vocab * vocab) {
    workload::length_source l;
    if (!f.dataset.empty()) {
        if (!f.prompt_tokens.empty() || !f.output_tokens.empty()) {
            throw_usage("--dataset and --prompt-tokens/--output-tokens exclude each other");
        }
        size_t bad = 0;
        l.shape = workload::length_source::kind::dataset;
        l.dataset_name = f.dataset;
        l.samples = workload::load_samples(f.dataset, vocab, f.max_samples, bad);
        if (bad > 0) log::warn("--dataset {}: {} malformed records skipped", f.dataset, bad);
        return l;
    }
    if (!f.prompt_tokens.empty() || !f.output_tokens.empty()) {
        l.shape = workload::length_source::kind::distribution;
        l.prompt_dist = dataset::parse_distribution(f.prompt_tokens.empty() ? fmt::format("fixed:{}", n_prompt) : f.prompt_tokens,
                                                    "--prompt-tokens");
        l.output_dist = dataset::parse_distribution(f.output_tokens.empty() ? fmt::format("fixed:{}", n_predict) : f.output_tokens,
                                                    "--output-tokens");
        return l;
    }
    if (n_prompt <= 0) throw_usage("-p: the prompt length must be > 0 (got {})", n_prompt);
    if (n_predict <= 0) throw_usage("-n: the number of tokens to generate must be > 0 (got {})", n_predict);
    l.n_prompt = n_prompt;
    l.n_predict = n_predict;
    return l;
}

levels_outcome run_levels(const request_flags & f, const std::vector<workload::request_workload> & levels,
                          const level_runner & run_level) {
    levels_outcome out;
    if (!f.find_capacity) {
        for (const auto & w : levels) {
            if (run_level(w).interrupted) {
                out.interrupted = true;
                break;
            }
        }
        return out;
    }
    workload::capacity_options o;
    o.max_concurrency = f.capacity_max_concurrency;
    const auto res = workload::find_capacity(
        [&](const workload::request_workload & w) {
            auto lw = w;
            if (lw.n_requests == 0 && lw.duration_s == 0) lw.n_requests = workload::default_requests(lw);
            return run_level(lw);
        },
        base_workload(f), o);
    out.capacity_summary = res.summary;
    out.interrupted = res.interrupted;
    return out;
}

void write_trace(const std::string & path, const std::vector<workload::request_run> & runs) {
    fs::write_output(path, report::trace_jsonl(runs), "--trace");
}

std::string request_progress_text(const workload::request_workload & w, const workload::request_progress & p) {
    const std::string load = workload::load_label(w, false);
    std::string bar;
    if (p.total > 0) {
        const size_t done = p.finished + p.failed;
        const int width = 20;
        const int fill = static_cast<int>(static_cast<double>(width) * static_cast<double>(done) / static_cast<double>(p.total));
        bar = "[" + std::string(static_cast<size_t>(fill), '#') + std::string(static_cast<size_t>(width - fill), '.') + "] " +
              fmt::format("{}/{} req", done, p.total);
    } else {
        bar = fmt::format("{} req done, {:.0f} s", p.finished + p.failed, p.elapsed_s);
    }
    return fmt::format("{:<12} {}  {} in flight  {} t/s", load, bar, p.in_flight, fmtx::thousands(p.output_tps, 1));
}

}  // namespace im::cli
