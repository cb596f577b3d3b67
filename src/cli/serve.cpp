// `infermeter serve`: the request-level workload of `parallel --mode continuous` against an
// OpenAI-compatible HTTP server (docs/serve.md, DESIGN §2.5), with server telemetry and the
// client's own check.
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/http_flags.h"
#include "cli/output.h"
#include "cli/request_flags.h"
#include "cli/server_launch.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/escape.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/stats.h"
#include "dataset/vocab.h"
#include "engine/http/client.h"
#include "engine/http/metrics.h"
#include "engine/text_keeping.h"
#include "model/info.h"
#include "model/ref.h"
#include "report/requests.h"
#include "report/measurements.h"
#include "report/serve.h"
#include "workload/continuous.h"
#include "workload/lockstep.h"
#include "workload/request_source.h"
#include "workload/requests.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <unistd.h>
#include <fstream>
#include <memory>
#include <sys/resource.h>
#include <unordered_map>

namespace im::cli {

namespace {

struct serve_args {
    http_flags http;
    request_flags requests;
    std::string model;   // -m: vocabulary for prompts and token counts (the server's model, or its vocab)
    std::string vocab;   // --vocab
    int n_prompt = 128, n_predict = 128;
    std::string output = "md", export_path;
    std::string format = "native";  // --format: native | vllm (JSON outputs)
    store::store_flags db;
    // --launch-server / --compare-in-process
    bool launch = false;
    std::string server_bin;
    std::vector<std::string> server_args;
    bool backend_sampling = false;   // passed to the launched llama-server
    bool compare = false;
    engine_flags engine;
    std::string shard;     // --shard K/N
    std::string start_at;  // --start-at: RFC 3339 UTC or epoch seconds
};

// Sequence slots the launched server needs: the largest concurrency any level can reach.
int server_slots(const request_flags & f, const std::vector<workload::request_workload> & levels) {
    if (f.find_capacity) return f.capacity_max_concurrency;
    int n = 1;
    for (const auto & w : levels) {
        n = std::max(n, w.arrivals == workload::arrival_kind::closed ? w.concurrency : w.max_concurrency > 0 ? w.max_concurrency : 16);
    }
    return n;
}

// What one load level cost the client and what the server's counters say about it.
struct level_check {
    std::string load;
    double dispatch_lag_p99_ms = 0;  // actual send − intended send
    double dispatch_lag_max_ms = 0;
    double client_cpu_cores = 0;     // the process's CPU (client threads and driver) / wall time of the level
    double io_thread_busy = 0;       // CPU of the client threads / (wall time · threads): near 1 = saturated
    double client_cpu_ms_per_request = 0;
    double rss_mib = 0;              // peak RSS of the process so far
    std::vector<engine::http::endpoint_counts> endpoints;
    engine::http::metric_samples server_delta;  // after − before, non-zero entries
    // infermeter's own count of the streamed text (with a vocabulary), over the ok measured requests
    int n_tokenized = 0;             // requests counted
    int n_tokenized_vs_chunks = 0;   // own count differs from the tokens the stream reported
    int n_tokenized_vs_usage = 0;    // own count differs from the server's usage
    int max_tokenized_diff = 0;      // largest |own − server usage| (or − streamed when no usage)
};

int64_t process_cpu_ns() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1'000'000'000 +
           (int64_t(ru.ru_utime.tv_usec) + ru.ru_stime.tv_usec) * 1000;
}

double peak_rss_mib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
    }
    return 0;
}

// Without a vocabulary: a prompt of `n` words, about one token each in common vocabularies, after a
// unique prefix (no prefix cache can serve it).
std::string word_prompt(uint64_t i, int n) {
    static const char * words[] = {"the",  "river", "light", "house", "north", "winter", "stone", "market",
                                   "quiet", "field", "story", "garden", "window", "letter", "morning", "bridge"};
    std::string s = fmt::format("[request {}]", i);
    for (int k = 0; k < n - 4; ++k) {
        s += ' ';
        s += words[(i * 7 + uint64_t(k) * 13 + uint64_t(k) / 16) % 16];
    }
    return s;
}

// Empty when the client kept up. Busy client threads call for more of them; late sends with idle client
// threads mean the process was kept off the cores (a server on the same host, its CPU sampling threads):
// more client threads cannot help there.
std::string client_limit_warning(const level_check & c) {
    if (c.io_thread_busy > 0.8) {
        return fmt::format("at {} the client may have been the limit (its threads {} busy, dispatch lag p99 {} ms): "
                           "raise --client-threads or run the client on another machine",
                           c.load, fmtx::percent(c.io_thread_busy, 0), fmtx::thousands(c.dispatch_lag_p99_ms, 2));
    }
    if (c.dispatch_lag_p99_ms > 10) {
        return fmt::format("at {} requests were sent late (dispatch lag p99 {} ms) while the client threads were only {} "
                           "busy: the client was kept off the cores (a server on the same machine competes for them), "
                           "so TTFT and E2E include that delay; run the client on another machine",
                           c.load, fmtx::thousands(c.dispatch_lag_p99_ms, 2), fmtx::percent(c.io_thread_busy, 0));
    }
    return "";
}

std::string checks_markdown(const std::vector<level_check> & checks) {
    if (checks.empty()) return "";
    std::string md = "\n### Client self-check\n\n| load | dispatch lag p99 | max | client CPU | per request | peak RSS |\n"
                     "|---|---:|---:|---:|---:|---:|\n";
    for (const auto & c : checks) {
        md += fmt::format("| {} | {} ms | {} ms | {} cores | {} ms | {} MiB |\n", c.load, fmtx::thousands(c.dispatch_lag_p99_ms, 2),
                          fmtx::thousands(c.dispatch_lag_max_ms, 2), fmtx::thousands(c.client_cpu_cores, 2),
                          fmtx::thousands(c.client_cpu_ms_per_request, 3), fmtx::thousands(c.rss_mib, 1));
    }
    for (const auto & c : checks) {
        if (const std::string w = client_limit_warning(c); !w.empty()) md += "\n**Warning:** " + w + ".\n";
    }
    if (checks.front().endpoints.size() > 1) {
        md += "\n### Per endpoint\n\n| load | URL | started | finished | failed | peak in flight |\n|---|---|---:|---:|---:|---:|\n";
        for (const auto & c : checks) {
            for (const auto & e : c.endpoints) {
                md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", c.load, e.url, e.started, e.finished, e.failed,
                                  e.peak_outstanding);
            }
        }
    }
    bool tokenized = false;
    for (const auto & c : checks) tokenized = tokenized || c.n_tokenized > 0;
    if (tokenized) {
        md += "\n### Output tokens counted three ways\n\n| load | requests | own count ≠ streamed | own count ≠ server usage | "
              "largest difference |\n|---|---:|---:|---:|---:|\n";
        for (const auto & c : checks) {
            md += fmt::format("| {} | {} | {} | {} | {} |\n", c.load, c.n_tokenized, c.n_tokenized_vs_chunks,
                              c.n_tokenized_vs_usage, c.max_tokenized_diff);
        }
        md += "\nOwn count: the streamed text tokenized with -m/--vocab (no special tokens); a detokenize/retokenize "
              "round trip can merge or split a few tokens, so small differences are expected.\n";
    }
    bool any = false;
    for (const auto & c : checks) any = any || !c.server_delta.empty();
    if (any) {
        md += "\n### Server telemetry (Prometheus /metrics, change over each load level)\n\n| load | metric | change |\n"
              "|---|---|---:|\n";
        for (const auto & c : checks) {
            for (const auto & [k, v] : c.server_delta) md += fmt::format("| {} | `{}` | {} |\n", c.load, k, fmtx::thousands(v, 3));
        }
    }
    return md;
}

float sampling_temperature(const engine::http::client_options & o) { return o.body.temperature > 0 ? float(o.body.temperature) : 0.0f; }

// --compare-in-process: every HTTP level again in-process (continuous batching without sampling, with
// CPU sampling, with backend sampling; lockstep at W = concurrency), on the same lengths and seed.
// Returns true when interrupted.
bool compare_in_process(const serve_args & a, const engine::llama::engine_params & params, const std::filesystem::path & model_path,
                        const workload::length_source & lengths, float temperature,
                        const std::vector<workload::request_run> & http_runs,
                        std::vector<report::serve_comparison_level> & out, progress_line & progress,
                        const std::function<void()> & saved) {
    init_engine();
    for (const auto & r : http_runs) {
        report::serve_comparison_level l;
        l.http = r;
        l.server_backend_sampling = a.backend_sampling;
        out.push_back(std::move(l));
    }
    // Lockstep, one sweep over the closed-loop concurrencies.
    std::vector<int> ws;
    for (auto & l : out) {
        if (l.http.workload.arrivals == workload::arrival_kind::closed) ws.push_back(l.http.workload.concurrency);
        else l.lockstep_note = "open loop: lockstep has no arrivals";
    }
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    if (!ws.empty()) {
        workload::lockstep_config lc;
        lc.model_path = model_path;
        lc.params = params;
        lc.workers = ws;
        lc.n_prompt = a.n_prompt;
        lc.n_predict = a.n_predict;
        try {
            workload::validate(lc, model::read_info(model_path));
            workload::lockstep_callbacks cb;
            cb.progress = [&](const workload::lockstep_progress & p) { progress.update("lockstep " + lockstep_progress_text(p)); };
            cb.warn = [&](const std::string & m) {
                progress.clear();
                log::warn("{}", m);
            };
            const auto res = workload::run_lockstep(lc, cb);
            for (const auto & row : res.rows) {
                for (auto & l : out) {
                    if (l.http.workload.arrivals != workload::arrival_kind::closed || l.http.workload.concurrency != row.workers) continue;
                    if (!row.skipped.empty()) l.lockstep_note = row.skipped;
                    else l.lockstep = report::lockstep_as_run(row, l.http.workload);
                }
            }
            if (res.interrupted) return true;
        } catch (const im::error & e) {
            if (e.kind() == error_kind::interrupted) throw;
            for (auto & l : out) {
                if (l.lockstep_note.empty()) l.lockstep_note = e.what();
            }
            log::warn("--compare-in-process: lockstep did not run: {}", e.what());
        }
        saved();
    }
    // Continuous batching, three ways of choosing tokens, on one model load.
    workload::continuous_sweep sw;
    sw.model_path = model_path;
    sw.params = params;
    sw.lengths = lengths;
    sw.seed = a.requests.seed;
    sw.sampling.temp = temperature;
    sw.sampling.seed = static_cast<uint32_t>(a.requests.seed);
    workload::continuous_runner runner(sw);
    workload::continuous_callbacks cb;
    cb.progress = [&](const workload::request_workload & w, const workload::request_progress & p) {
        progress.update("in-process " + request_progress_text(w, p));
    };
    cb.info = [&](const std::string & m) {
        progress.clear();
        log::warn("{}", m);
    };
    for (auto & l : out) {
        const auto & w = l.http.workload;
        const auto run_mode = [&](engine::llama::sampling_mode m) {
            sw.sampling.mode = m;
            auto r = runner.run(w, cb);
            progress.done(fmt::format("in-process {}, {}: output {} t/s", r.load_label(), r.sampling, fmtx::thousands(r.metrics.output_tps, 1)));
            return r;
        };
        l.no_sample = run_mode(engine::llama::sampling_mode::none);
        saved();
        if (l.no_sample->interrupted) return true;
        l.cpu_sampling = run_mode(engine::llama::sampling_mode::cpu);
        saved();
        if (l.cpu_sampling->interrupted) return true;
        try {
            l.backend_sampling = run_mode(engine::llama::sampling_mode::backend);
        } catch (const im::error & e) {
            if (e.kind() == error_kind::interrupted) throw;
            l.backend_sampling_error = e.what();
            log::warn("--compare-in-process: backend sampling did not run: {}", e.what());
        }
        saved();
        if (l.backend_sampling && l.backend_sampling->interrupted) return true;
    }
    return false;
}

void run(const serve_args & a) {
    const auto out = output_target::from_flags(a.output, a.export_path);
    if (a.format != "native" && a.format != "vllm") throw_usage("--format '{}': use native or vllm", a.format);
    const bool vllm = a.format == "vllm";
    if (vllm && out.stdout_format != report::format::json && (a.export_path.empty() || out.export_format != report::format::json)) {
        throw_usage("--format vllm writes JSON: give -o json or --export FILE.json");
    }
    http_flags hf = a.http;
    if (a.launch) {
        if (!hf.urls.empty()) throw_usage("--launch-server starts its own llama-server: drop --url");
        if (a.model.empty()) throw_usage("--launch-server needs the model to serve: give -m MODEL (.gguf or synth:PRESET)");
        if (!a.server_bin.empty() && access(a.server_bin.c_str(), X_OK) != 0) {
            throw_usage("--server-bin {}: not an executable file", a.server_bin);
        }
    } else {
        if (hf.urls.empty()) throw_usage("give the server's --url (or --launch-server -m MODEL to start llama-server)");
        if (!a.server_bin.empty() || !a.server_args.empty() || a.backend_sampling) {
            throw_usage("--server-bin, --server-arg and --backend-sampling are for --launch-server");
        }
    }
    if (a.compare) {
        if (a.model.empty()) throw_usage("--compare-in-process needs -m MODEL: the model the server serves, run in-process too");
        if (a.requests.find_capacity) throw_usage("--compare-in-process compares load levels: give --concurrency or --rate, not --find-capacity");
    }
    const auto eparams = single(a.engine, "serve");  // validates the engine flags (one value each)
    if (a.n_prompt < 1 || a.n_predict < 1) throw_usage("-p and -n must be at least 1 (got {} and {})", a.n_prompt, a.n_predict);
    if (a.launch) hf.urls = {"http://127.0.0.1:1"};  // placeholder for validation; replaced once the server runs
    auto levels = a.requests.find_capacity ? std::vector<workload::request_workload>{} : load_levels(a.requests);
    if (!a.shard.empty()) {
        if (a.requests.find_capacity) throw_usage("--shard splits one schedule: give --concurrency or --rate, not --find-capacity");
        if (a.launch) throw_usage("--shard: the shards drive one server; start it once and give every shard its --url");
        if (a.compare) throw_usage("--shard: --compare-in-process runs the whole schedule in-process; run it unsharded");
        for (auto & w : levels) {
            workload::parse_shard(a.shard, w);
            workload::validate(w);
        }
        if (a.requests.trace.empty()) log::warn("--shard {} without --trace FILE: `infermeter merge` needs every shard's trace", a.shard);
    }
    int64_t start_at_unix_ns = 0;
    if (!a.start_at.empty()) {
        const auto t = clock::parse_instant(a.start_at);
        if (!t) throw_usage("--start-at '{}': give a UTC time (2026-12-03T12:00:00Z) or epoch seconds (1796299200)", a.start_at);
        if (levels.size() != 1) {
            throw_usage("--start-at aligns one load level across shards: give one --concurrency or --rate value (one command, "
                        "with its own --start-at, per level)");
        }
        start_at_unix_ns = *t;
        workload::check_start_at(start_at_unix_ns);  // before loading anything: fail fast
        if (start_at_unix_ns - clock::unix_ns() > int64_t{24} * 3600 * 1'000'000'000) {
            throw_usage("--start-at {}: more than a day ahead", a.start_at);
        }
    }
    auto copts = client_options_from(hf, server_slots(a.requests, levels));

    std::unique_ptr<dataset::vocabulary> vocab;
    if (!a.model.empty() || !a.vocab.empty()) {
        init_engine();
        vocab = std::make_unique<dataset::vocabulary>(dataset::vocab_file_for(a.model, a.vocab));
    } else if (copts.prefer_token_ids) {
        throw_usage("--token-prompts needs the server's vocabulary: give -m MODEL or --vocab FILE");
    }
    const llama_vocab * v = vocab ? vocab->get() : nullptr;
    const workload::length_source lengths = lengths_of(a.requests, a.n_prompt, a.n_predict, v);
    const workload::request_source source(lengths, v, a.requests.seed);
    const workload::request_factory make = [&](uint64_t i) {
        engine::request r = source.make(i);
        if (r.prompt_text.empty() && (!copts.prefer_token_ids || r.prompt_tokens.empty())) {
            r.prompt_text = word_prompt(i, r.n_prompt);
            r.prompt_tokens.clear();
        }
        return r;
    };
    std::unique_ptr<launched_server> server;
    std::filesystem::path model_path;
    if (a.launch || a.compare) model_path = model::resolve(a.model);
    if (a.launch) {
        launch_options lo;
        lo.bin = a.server_bin;
        const int slots = server_slots(a.requests, levels);
        const int64_t per_slot = source.max_tokens_per_request() + 64;  // BOS and template slack
        lo.args = {"-m", model_path.string(), "-np", std::to_string(slots), "-c", std::to_string(per_slot * slots), "--metrics"};
        const auto ea = server_engine_args(a.engine);
        lo.args.insert(lo.args.end(), ea.begin(), ea.end());
        if (a.backend_sampling) lo.args.push_back("--backend-sampling");
        lo.args.insert(lo.args.end(), a.server_args.begin(), a.server_args.end());
        server = std::make_unique<launched_server>(lo);
        hf.urls = {server->url()};
        copts.urls = hf.urls;
        copts.prefer_token_ids = v != nullptr;  // same vocabulary: exact prompt lengths
    }
    std::string lengths_text = lengths.describe();
    if (!v && lengths.shape != workload::length_source::kind::dataset) {
        lengths_text += " (prompt lengths approximate: words, no vocabulary; give -m or --vocab for exact ones)";
    }

    engine::http::http_engine http(copts);
    engine::text_keeping_engine eng(http);
    std::vector<llama_token> token_buf;
    log::info("serve: {}", http.describe());
    std::string metrics_url = metrics_url_from(hf);
    const auto scrape = [&]() -> engine::http::metric_samples {
        if (metrics_url.empty()) return {};
        try {
            return engine::http::scrape_metrics(metrics_url, 5000, copts.headers, copts.api_key).samples;
        } catch (const error & e) {
            log::warn("server telemetry off: {} (--metrics-url none silences this)", e.what());
            metrics_url.clear();
            return {};
        }
    };

    const auto base = base_workload(a.requests);
    progress_line progress;
    workload::request_callbacks cb;
    const workload::request_workload * current = nullptr;
    cb.progress = [&](const workload::request_progress & p) {
        if (current) progress.update(request_progress_text(*current, p));
    };

    std::vector<workload::request_run> runs;
    std::vector<level_check> checks;
    report::run_context ctx = report::make_run_context(nullptr, globals().command_line);
    if (!a.http.model.empty()) ctx.model_filename = a.http.model;
    else if (!model_path.empty()) ctx.model_filename = model_path.filename().string();
    ctx.model_type = "HTTP " + eng.describe();
    std::string capacity_summary;
    std::vector<report::serve_comparison_level> comparison;
    const std::string server_line = server ? "launched: " + server->command_line() : "";
    const auto markdown_of = [&](bool interrupted) {
        std::string md = fmt::format("## Serving Under Load ({})\n\n", eng.describe());
        if (server) md += "**Server:** launched for this run: " + esc::md_code(server->command_line()) + "\n\n";
        md += report::requests_markdown(runs, base.objectives);
        md += checks_markdown(checks);
        md += report::per_endpoint_markdown(runs, hf.urls, engine::http::balance_name(copts.spread));
        md += report::serve_comparison_markdown(comparison);
        if (!capacity_summary.empty()) md += "\n**Capacity:** " + capacity_summary + "\n";
        if (interrupted) md += report::interrupted_note();  // the same note as every other command's
        return md;
    };
    const std::string sampling = fmt::format(
        "{}{}", copts.body.temperature < 0 ? "server default" : fmt::format("temperature {}", copts.body.temperature),
        copts.body.ignore_eos ? ", ignore EOS" : "");

    // The serve table: the HTTP levels, then the in-process runs of --compare-in-process (mode names them).
    const auto make_table = [&](bool interrupted) {
        std::vector<workload::request_run> all = runs;
        std::vector<std::string> modes(runs.size(), "serve");
        for (const auto & l : comparison) {
            const auto add = [&](const std::optional<workload::request_run> & r, const char * mode) {
                if (!r) return;
                all.push_back(*r);
                modes.push_back(mode);
            };
            add(l.lockstep, report::mode_lockstep);
            add(l.no_sample, report::mode_no_sample);
            add(l.cpu_sampling, report::mode_cpu);
            add(l.backend_sampling, report::mode_backend);
        }
        auto t = report::requests_table("serve", all, ctx, nullptr, interrupted);
        for (size_t i = runs.size(); i < t.rows.size() && i < modes.size(); ++i) t.set(t.rows[i], "mode", modes[i]);
        return t;
    };
    // Native outputs and the store through results_writer: files written during the run say interrupted
    // until it completes, and a second signal prints and records what was measured.
    std::optional<results_writer> writer;
    if (!vllm) writer.emplace(out, a.db, "serve", make_table, markdown_of);
    const std::string model_id = !a.http.model.empty() ? a.http.model : !model_path.empty() ? model_path.filename().string() : a.model;
    const auto vllm_text = [&](bool interrupted) { return report::vllm_json(runs, model_id, ctx.test_time, interrupted); };
    const auto write_export = [&] {
        if (writer) {
            writer->update(ctx);
        } else if (!a.export_path.empty() && out.export_format == report::format::json) {
            auto lock = interrupt::hold_outputs();
            fs::write_output(a.export_path, vllm_text(true), "--export");
        } else {
            out.export_now(make_table(true), [&] { return markdown_of(true); });  // other formats stay native
        }
    };
    const auto run_level = [&](const workload::request_workload & w) {
        current = &w;
        const auto before = scrape();
        http.reset_peaks();  // peak in flight per level
        const auto counts0 = http.counts();
        const int64_t cpu0 = process_cpu_ns();
        const int64_t io_cpu0 = http.stats().cpu_ns;
        const int64_t t0 = eng.now_ns();
        if (start_at_unix_ns > 0) {
            log::info("serve: the schedule starts at {} (--start-at), in {:.1f} s", clock::rfc3339_ms(start_at_unix_ns),
                      static_cast<double>(start_at_unix_ns - clock::unix_ns()) / 1e9);
        }
        workload::request_run r = workload::run_requests(eng, w, make, cb, start_at_unix_ns);
        const int64_t wall = std::max<int64_t>(1, eng.now_ns() - t0);
        const int64_t cpu = process_cpu_ns() - cpu0;
        const double io_busy = double(http.stats().cpu_ns - io_cpu0) / double(wall) / copts.client_threads;
        const auto after = scrape();
        r.engine = server ? eng.describe() + " (" + server_line + ")" : eng.describe();
        r.lengths = lengths_text;
        r.sampling = sampling;

        level_check c;
        c.load = r.load_label();
        std::vector<double> lag;
        for (const auto & rec : r.records) {
            if (rec.t_sent_ns >= 0) lag.push_back(double(rec.t_sent_ns - rec.t_intended_ns) / 1e6);
        }
        if (!lag.empty()) {
            c.dispatch_lag_p99_ms = stats::percentile(lag, 99);
            c.dispatch_lag_max_ms = stats::percentile(lag, 100);
        }
        c.client_cpu_cores = double(cpu) / double(wall);
        c.io_thread_busy = io_busy;
        c.client_cpu_ms_per_request = r.records.empty() ? 0 : double(cpu) / 1e6 / double(r.records.size());
        c.rss_mib = peak_rss_mib();
        for (const auto & rec : r.records) {
            const std::string text = eng.take_text(rec.id);
            if (!v || !rec.ok() || rec.warmup) continue;
            const int own = dataset::count_tokens(v, text, false, token_buf);
            ++c.n_tokenized;
            c.n_tokenized_vs_chunks += own != rec.n_output;
            c.n_tokenized_vs_usage += rec.usage_completion_tokens >= 0 && own != rec.usage_completion_tokens;
            const int ref = rec.usage_completion_tokens >= 0 ? rec.usage_completion_tokens : rec.n_output;
            c.max_tokenized_diff = std::max(c.max_tokenized_diff, std::abs(own - ref));
        }
        auto counts1 = http.counts();
        for (size_t i = 0; i < counts1.size() && i < counts0.size(); ++i) {
            counts1[i].started -= counts0[i].started;
            counts1[i].finished -= counts0[i].finished;
            counts1[i].failed -= counts0[i].failed;
        }
        c.endpoints = std::move(counts1);
        if (!before.empty() && !after.empty()) {
            for (const auto & [k, d] : engine::http::diff_metrics(before, after)) {
                if (d != 0 && std::isfinite(d)) c.server_delta[k] = d;
            }
        }
        const auto & mt = r.metrics;
        progress.done(fmt::format("{}: {} req/s, output {} t/s, TTFT p99 {} ms, TPOT p99 {} ms, {} failed{}", r.load_label(),
                                  fmtx::thousands(mt.request_tps, 2), fmtx::thousands(mt.output_tps, 1),
                                  fmtx::thousands(mt.ttft.p99, 1), fmtx::thousands(mt.tpot.p99, 2), mt.n_failed,
                                  mt.slo_met ? ", SLO met" : ", SLO missed"));
        if (const std::string warning = client_limit_warning(c); !warning.empty()) log::warn("{}", warning);
        checks.push_back(std::move(c));
        runs.push_back(r);
        write_export();
        current = nullptr;
        return r;
    };

    const auto outcome = run_levels(a.requests, levels, run_level);
    capacity_summary = outcome.capacity_summary;
    if (!capacity_summary.empty()) progress.done(capacity_summary);
    bool interrupted = outcome.interrupted;
    if (server) server->stop();  // before the in-process runs: they get the machine to themselves

    if (a.compare && !interrupted && !runs.empty()) {
        interrupted = compare_in_process(a, eparams, model_path, lengths, sampling_temperature(copts), runs, comparison, progress,
                                         write_export);
    }
    progress.clear();
    if (writer) {
        writer->finish(ctx, interrupted);
    } else {
        {
            auto lock = interrupt::hold_outputs();
            if (!a.export_path.empty() && out.export_format == report::format::json) {
                fs::write_output(a.export_path, vllm_text(interrupted), "--export");
            } else {
                out.export_now(make_table(interrupted), [&] { return markdown_of(interrupted); });
            }
            if (out.stdout_format == report::format::json) print_stdout(vllm_text(interrupted));
            else print_stdout(render(out.stdout_format, make_table(interrupted), [&] { return markdown_of(interrupted); }));
        }
        store::record_run(a.db, "serve", ctx, {make_table(interrupted)}, interrupted);
    }
    if (!a.requests.trace.empty()) write_trace(a.requests.trace, runs);
    if (interrupted) throw error(error_kind::interrupted, "interrupted: the results above are partial");
}

}  // namespace

void add_serve(CLI::App & root) {
    auto a = std::make_shared<serve_args>();
    auto * cmd = root.add_subcommand(
        "serve", "Measure an OpenAI-compatible HTTP server (llama-server, vLLM, SGLang, ...) under load: TTFT, TPOT, "
                 "ITL, E2E, goodput, failures by cause (docs/serve.md)");
    add_http_flags(cmd, a->http);
    add_engine_flags(cmd, a->engine);
    cmd->add_flag("--launch-server", a->launch,
                  "Start llama-server (beside infermeter, or --server-bin) with -m and the engine flags on 127.0.0.1 and a "
                  "free port for the run, and stop it after");
    cmd->add_option("--server-bin", a->server_bin, "The llama-server executable for --launch-server");
    cmd->add_option("--server-arg", a->server_args,
                    "Extra llama-server argument for --launch-server (repeatable; --server-arg=--flag for dashed ones)")
        ->allow_extra_args(false);
    cmd->add_flag("--backend-sampling", a->backend_sampling, "Launch llama-server with --backend-sampling");
    cmd->add_flag("--compare-in-process", a->compare,
                  "Run the same workload in-process too (lockstep, continuous without/with CPU/with backend sampling) and "
                  "attribute the gap (needs -m)");
    cmd->add_option("--shard", a->shard,
                    "K/N: run the K-th of N interleaved parts of the schedule, one per client process or host (same --seed "
                    "and workload flags on all). Open loop: request i at its scheduled time when i mod N = K-1; closed loop: "
                    "users u with u mod N = K-1 (C >= N), sending requests j*N+K-1. Merge the shards' --trace files with "
                    "`infermeter merge`");
    cmd->add_option("--start-at", a->start_at,
                    "Start the schedule at this instant (UTC 2026-12-03T12:00:00Z or epoch seconds; one load level): give "
                    "every shard the same one so their schedules align (otherwise each starts at its own t = 0)");
    cmd->add_option("--format", a->format, "JSON field names: native or vllm (vllm bench serve's result dict)")
        ->capture_default_str();
    cmd->add_option("-m", a->model,
                    "The served model (.gguf or synth:PRESET): its vocabulary writes prompts of exact length");
    cmd->add_option("--vocab", a->vocab, "Vocabulary file instead of -m (e.g. llama.cpp's ggml-vocab-qwen2.gguf)");
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens per request (without a dataset)")->capture_default_str();
    cmd->add_option("-n,--n-predict", a->n_predict, "Tokens asked of each request (without a dataset)")->capture_default_str();
    cmd->add_option("-o,--output", a->output, "stdout format: md, csv, json, jsonl, sql")->capture_default_str();
    cmd->add_option("--export", a->export_path, "Also write results to FILE (.md .csv .json .jsonl .sql), updated after each level");
    add_request_flags(cmd, a->requests);
    add_store_flags(cmd, a->db);
    cmd->callback([a] { run(*a); });
}

}  // namespace im::cli
