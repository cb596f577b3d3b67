#pragma once

#include "engine/request.h"
#include "predict/step_model.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// Request-level workloads (DESIGN §2.3 continuous, §2.5): arrivals, per-request records, latency and
// throughput over a steady window, SLOs and goodput. Written against engine::request_engine only, so
// the in-process scheduler, the HTTP client and the fake engine all run the same driver.
namespace im::workload {

enum class arrival_kind {
    closed,    // C users; each sends its next request when the last ends (+ think time)
    poisson,   // open loop, exponential gaps at `rate`
    constant,  // open loop, gaps of exactly 1/rate
    gamma,     // open loop, gamma gaps with shape `burstiness` (1 = Poisson; < 1 burstier)
};
std::string arrival_name(arrival_kind a);

// Latency objectives (DESIGN §3): each at a percentile (p99 unless the spec says "p90:").
struct slo {
    double ttft_ms = 500;
    double tpot_ms = 30;
    double percentile = 99;
    std::string describe() const;  // "p99 TTFT <= 500 ms, p99 TPOT <= 30 ms"
};
// Parses "ttft=500ms,tpot=30ms", "p90:ttft=1s,tpot=50ms"; throws a usage error naming --slo.
slo parse_slo(const std::string & spec);

struct request_workload {
    arrival_kind arrivals = arrival_kind::closed;
    int concurrency = 1;          // closed loop: users
    double rate = 0;              // open loop: requests per second
    double burstiness = 1;        // gamma shape
    int max_concurrency = 0;      // open loop: at most this many in flight (0: unbounded); others queue
    double think_time_s = 0;      // closed loop: pause between a user's requests
    int n_requests = 0;           // requests in total, warmup included (0: until duration_s)
    double duration_s = 0;        // stop submitting after this long (0: until n_requests)
    int warmup_requests = 0;      // the first ones, excluded from every statistic
    uint64_t seed = 1;            // arrival gaps
    // --shard K/N: the K-th of N interleaved parts of this schedule (every client host generates the
    // whole schedule from the same seed and sends request i when i mod N = K - 1; closed loop: user u
    // when u mod N = K - 1). shard 0 marks the N parts merged back into one run (`merge`).
    int shard = 1, n_shards = 1;
    slo objectives;
};

// Checks the workload; throws usage errors naming the flag.
void validate(const request_workload & w);

// Parses --shard "K/N" (1 <= K <= N <= 1024) into w.shard and w.n_shards; throws a usage error naming --shard.
void parse_shard(const std::string & spec, request_workload & w);
// Whether request `index` of the schedule belongs to this shard (always, unsharded or merged).
bool in_shard(const request_workload & w, uint64_t index);
// Closed loop: the users this shard runs (u < concurrency with u mod N = K - 1); all of them when
// unsharded or merged. Open loop: this shard's part of --max-concurrency, split the same way (0: uncapped).
int shard_users(const request_workload & w);
int shard_max_concurrency(const request_workload & w);
// "2/3", or "merged 3" (shard 0), or "" unsharded.
std::string shard_label(const request_workload & w);

// "C=8" (closed loop) or "4.00 req/s" (open loop), with " (max N)" for a --max-concurrency cap when asked,
// and ", shard 2/3" or ", 3 shards merged" when sharded.
std::string load_label(const request_workload & w, bool with_cap = true);
// Requests a level runs when neither --requests nor --duration was given: max(16, 4·C) closed loop,
// max(32, 20 s × rate) open loop.
int default_requests(const request_workload & w);

// Everything known about one request.
struct request_record {
    uint64_t id = 0;
    int user = -1;                 // closed loop: the user that sent it
    int endpoint = 0;              // HTTP: index of the --url it went to (0 in-process)
    bool warmup = false;
    int n_prompt = 0;
    int n_predict = 0;             // asked for
    int n_output = 0;              // delivered (sum of token events, or the engine's final count)
    int n_chunks = 0;              // token events received
    int usage_completion_tokens = -1;  // the server's own count, -1 when unknown
    int64_t t_intended_ns = 0;
    int64_t t_sent_ns = -1;
    int64_t t_admitted_ns = -1;
    int64_t t_first_ns = -1;       // first token event
    int64_t t_end_ns = -1;         // finished or failed
    std::vector<int64_t> chunk_ns;     // time of every token event
    std::vector<int> chunk_tokens;     // tokens in each
    engine::failure cause = engine::failure::none;
    std::string message;
    double server_ttft_ms = -1, server_gen_tps = -1;

    bool ok() const { return cause == engine::failure::none && t_end_ns >= 0; }
    double ttft_ms() const;        // first token − intended start (queueing included)
    double ttft_sent_ms() const;   // first token − send/admission (the sender's view)
    double queue_ms() const;       // admission − intended start
    double e2e_ms() const;         // end − intended start
    double tpot_ms() const;        // (E2E − TTFT) / (N − 1); NaN when N < 2
};

// mean, p50, p90, p99, max in ms over the successful measured requests (n = 0: all zero).
struct latency_stats {
    size_t n = 0;
    double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
    double at(double percentile) const;  // p50/p90/p99 (others interpolated from the raw samples are not kept)
};
latency_stats latency_of(std::vector<double> samples_ms);

// The figures of one load level.
struct request_metrics {
    int64_t window_start_ns = 0, window_end_ns = 0;  // steady window (see docs/metrics.md)
    bool window_is_whole_run = false;                // the steady window was empty; the whole run is used
    double window_s = 0;
    size_t n_requests = 0;        // submitted, warmup included
    size_t n_measured = 0;        // not warmup
    size_t n_ok = 0, n_failed = 0;
    std::vector<std::pair<std::string, size_t>> failures;  // cause -> count (measured requests)
    double request_tps = 0;       // completions in the window per second
    double output_tps = 0;        // output tokens emitted in the window per second
    // In-process: tokens of pure decode steps (no prompt chunk) per second of those steps, each step
    // timed from its start to the next step's start (lockstep's generation t/s, DESIGN §2.3).
    double decode_tps = 0;
    double total_tps = 0;         // output + prompt tokens of requests admitted in the window, per second
    double goodput_rps = 0;       // completions in the window that met every objective, per second
    double slo_fraction = 0;      // of measured ok requests meeting every objective
    double mean_concurrency = 0;  // time-average of requests in flight (intended start .. end) in the window
    double littles_law_error = 0; // |L − λ·W| / L
    latency_stats ttft, ttft_sent, queue, tpot, itl, itl_per_token, e2e;
    int n_output_short = 0;       // ok requests that delivered fewer tokens than asked
    int n_usage_mismatch = 0;     // ok requests whose server count differs from the chunk count
    // Time spent per step (in-process engines): decode vs sampling, over the window.
    double step_ms_mean = 0, decode_ms_mean = 0, sample_ms_mean = 0;
    double sample_share = 0;      // sampling / (decode + sampling)
    size_t n_steps = 0;
    bool slo_met = false;         // percentile TTFT and TPOT within the objectives
};

// How far a load is from the objectives: the larger of percentile TTFT / ttft objective and percentile
// TPOT / tpot objective (<= 1: within both). Names the closest point when no load meets an SLO.
double slo_miss(const request_metrics & m, const slo & s);

request_metrics compute_metrics(const std::vector<request_record> & records, const std::vector<engine::step_stats> & steps,
                                const request_workload & w);

struct request_run {
    request_workload workload;
    std::vector<request_record> records;   // in submission order
    std::vector<engine::step_stats> steps;
    request_metrics metrics;
    std::string engine;                    // engine::describe()
    std::string lengths;                   // how lengths were chosen: "fixed 128/256", "dataset x.jsonl", ...
    std::string sampling;                  // "greedy, CPU sampling", "none", ... (HTTP: what was asked)
    int n_slots = 0;                       // in-process: sequence slots; HTTP: 0
    int64_t n_ctx = 0;                     // in-process: cells allocated
    int n_threads = 0;                     // in-process: the context's CPU threads; HTTP: 0
    bool interrupted = false;
    uint64_t rss_start_bytes = 0, rss_end_bytes = 0;  // process resident memory around the run (0: not available)
    // The schedule's origin (t = 0 of every intended start) on the engine's clock and on the wall clock
    // (Unix ns); `merge` places the shards' records on one timeline through the wall clock.
    int64_t t0_ns = 0, t0_unix_ns = 0;
    bool started_at = false;               // t0 was a given instant (--start-at), not the start of the run
    // `--fast` (docs/fast-mode.md §8): predicted from probes, not measured; no records, no steps, and the metrics
    // hold the predicted means (request_tps, output_tps, total_tps, ttft/tpot/e2e mean, sample_ms_mean).
    std::optional<predict::continuous_prediction> prediction;
    std::string prediction_note;           // where the model's assumptions do not hold for this level
    // "C=8" or "4.00 req/s" (open loop), for tables.
    std::string load_label() const;
};

struct request_progress {
    size_t submitted = 0, finished = 0, failed = 0, in_flight = 0;
    size_t total = 0;                 // 0 when the run is bounded by time
    double elapsed_s = 0;
    double output_tps = 0;            // so far
};

struct request_callbacks {
    std::function<void(const request_progress &)> progress;  // about 10 times a second at most
};

// Builds request i (prompt tokens or text, n_prompt, n_predict); the driver sets id and t_intended_ns.
using request_factory = std::function<engine::request(uint64_t index)>;

// --start-at: throws a usage error naming it when `start_at_unix_ns` (wall clock) has passed.
void check_start_at(int64_t start_at_unix_ns);

// Runs one load level to completion (or until SIGINT: in-flight requests are cancelled, the run is
// marked interrupted and what was measured is kept). Request i of the schedule is make(i), warmup when
// i < warmup_requests; a shard runs only its own i (in_shard) and users (shard_users).
// `start_at_unix_ns` (> 0): the schedule starts at that wall-clock instant (waiting for it; throws a
// usage error naming --start-at when it has passed); otherwise now.
request_run run_requests(engine::request_engine & engine, const request_workload & w, const request_factory & make,
                         const request_callbacks & cb = {}, int64_t start_at_unix_ns = 0);

// Intended start times of an open-loop schedule of `n` requests from t0 (no drift: each from t0).
std::vector<int64_t> open_loop_schedule(arrival_kind a, double rate, double burstiness, size_t n, int64_t t0_ns,
                                        uint64_t seed);

// Clopper–Pearson 95% interval of a binomial proportion k/n (the confidence of a capacity probe).
std::pair<double, double> proportion_ci95(size_t k, size_t n);

}  // namespace im::workload
