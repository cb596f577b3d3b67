#pragma once

#include "core/error.h"
#include "core/stats.h"
#include "engine/llama/session.h"
#include "predict/step_model.h"
#include "telemetry/sampler.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// The lockstep parallel workload (batched-bench semantics, DESIGN §2.3): W sequences prefill their
// prompts together (T_PP), then decode n_predict steps together, one token per sequence per step (T_TG).
namespace im::workload {

struct lockstep_config {
    std::filesystem::path model_path;
    engine::llama::engine_params params;
    std::vector<int> workers{1, 2, 4, 8};
    int n_prompt = 128;
    int n_predict = 128;
    int64_t n_ctx = 0;        // 0: auto (DESIGN §2.3)
    int64_t ctx_min = 0;
    bool kv_unified = false;
    int repetitions = 1;
    bool warmup = true;
    bool allow_ctx_overflow = false;
    // After the listed worker counts, keep doubling W while the overall throughput still grows by at
    // least `extend_min_gain` (DESIGN §3: measured, not extrapolated), memory allows, and W <= max_workers.
    bool extend = false;
    double extend_min_gain = 0.05;
    int max_workers = 64;
    // Rows already measured (resume): their W are not run again.
    std::vector<struct lockstep_row> done;
};

// What a worker count needs, from llama.cpp's own dry run (model loaded with no_alloc).
struct memory_plan {
    int workers = 0;
    int64_t n_ctx = 0;
    int64_t n_ctx_seq = 0;
    uint64_t kv_bytes = 0;           // computed: n_ctx × KV bytes per token
    uint64_t kv_bytes_reported = 0;  // llama.cpp's dry-run report (0 if it did not say)
    uint64_t compute_bytes = 0;      // compute buffers llama.cpp reserves
    uint64_t weights_bytes = 0;
    uint64_t total_bytes = 0;        // weights + KV + compute
    uint64_t free_bytes = 0;         // free memory of the device holding the KV cache
    std::string device;              // that device
    std::string refused;             // why llama.cpp's dry run failed (empty when it succeeded); fits is then false
    im::error_kind refused_kind = im::error_kind::usage;  // runtime when the environment (ulimit -v), not a flag, refused
    bool fits = false;
};

struct lockstep_row {
    int workers = 0;
    int n_prompt = 0;
    int n_predict = 0;
    int64_t n_ctx = 0;             // allocated, read back (llama_n_ctx)
    int64_t n_ctx_seq = 0;         // allocated, read back (llama_n_ctx_seq)
    uint64_t kv_bytes = 0;         // computed
    uint64_t kv_bytes_allocated = 0;  // llama.cpp's report
    std::vector<double> t_pp_s;    // one sample per repetition
    std::vector<double> t_tg_s;
    std::vector<double> prompt_tps_samples, gen_tps_samples, overall_tps_samples;
    stats::summary prompt_tps, gen_tps, overall_tps;
    double t_pp_mean_s = 0, t_tg_mean_s = 0;
    long total_kv = 0;             // W·(n_prompt + n_predict)
    double speedup = 0;            // overall / overall of the smallest W measured
    double efficiency = 0;
    uint64_t rss_bytes = 0;        // process resident memory after the run of this W
    uint64_t device_used_bytes = 0;  // memory in use on the offload devices after the run (0 on CPU)
    // Energy of the timed repetitions (prefill and decode, every repetition) from the counters that
    // exist here (NVML for the GPU, RAPL for the CPU packages: telemetry/energy.h); absent without any.
    std::optional<double> energy_j, avg_watts;
    std::string energy_source;
    // Highest GPU memory in use and process RSS while this W ran (context, warmup and repetitions), from
    // the telemetry sampler's readings (telemetry/sampler.h); absent without a sampler or a reading.
    std::optional<double> peak_gpu_memory_mib, peak_rss_mib;
    int n_threads = 0;
    std::string test_time;
    std::string skipped;           // why this W was not run (empty when it ran)
    bool extended = false;         // added by the sweep extension, not requested
    // Interrupted while measuring this W: the repetitions that finished, or (none finished) the first
    // one's completed decode steps, with n_predict set to their number; never reused by --resume.
    bool partial = false;
    // --fast (docs/fast-mode.md): every figure predicted from step probes, with 95% prediction intervals;
    // prefill_measured when T_PP itself was timed by a prefill probe.
    bool predicted = false;
    bool prefill_measured = false;
    predict::row_prediction prediction;
    // --fast: no step fit across W holds at this W (it has a regime of its own): its T_TG rests on its own
    // step probes, not on a prediction from other W. The note says so, or that a kernel switch is next to it.
    bool steps_probed = false;
    std::string prediction_note;

    // energy_j / (W · n_predict · repetitions): every timed output token, prefill time included;
    // absent without energy or tokens.
    std::optional<double> joules_per_output_token() const;
    // Appends one repetition's T_PP and T_TG and its rates (DESIGN §2.3).
    void add_repetition(double t_pp, double t_tg);
    // Recomputes the summaries and means from the samples.
    void summarize();
};

struct lockstep_result {
    std::vector<lockstep_row> rows;  // one per requested W, in order
    std::vector<memory_plan> plan;
    bool interrupted = false;
    int base_workers = 0;            // the W speedup is relative to
    std::string extension_stop;      // why the extension stopped (empty without extension)
};

struct lockstep_progress {
    int workers = 0;
    const char * phase = "";  // "prefill" | "decode"
    int step = 0;
    int n_steps = 0;
    double tokens_per_s = 0;  // so far in this phase
    int rep = 0;
};

struct lockstep_callbacks {
    std::function<void(const lockstep_progress &)> progress;  // about 10 times a second at most
    std::function<void(const lockstep_row &, const engine::llama::model &)> row;  // after each W
    std::function<void(const std::string &)> warn;
    // Optional: labels its samples with each W measured and gives each row its peak memory.
    telemetry::sampler * sampler = nullptr;
};

// Most context cells any W may have: llama.cpp's positions and n_ctx are 32-bit.
constexpr int64_t max_ctx_cells = INT32_MAX;

// Checks the configuration, every W the sweep may reach included (the extension up to
// max_workers, bounded by llama_max_parallel_sequences()); throws usage errors naming the flag.
void validate(const lockstep_config & c, const im::model::info & m);
// The part of validate() about --ctx / --ctx-min: against the trained context (unless
// allow_ctx_overflow) and, by arithmetic before anything is allocated, against the free memory of the
// device that will hold the KV cache. Cheap; call it before any other stage runs.
// overflow_flag: the command has --allow-ctx-overflow (the message then suggests it).
void validate_ctx_min(const lockstep_config & c, const im::model::info & m, bool overflow_flag = true);

// Every W the sweep may run: the requested ones in order, then (with extend) each one's doubling
// chain up to max_workers, ascending, without repeats.
std::vector<int> reachable_workers(const lockstep_config & c);

// Per reachable W, the context and memory llama.cpp would allocate, without allocating (no_alloc
// dry run). A W llama.cpp refuses has `refused` set and fits false.
std::vector<memory_plan> plan(const lockstep_config & c);

// Throws a usage error naming the first W whose dry run llama.cpp refused, and its reason.
void check_plan(const std::vector<memory_plan> & plan);

// Largest W whose weights + KV + compute fit `free_bytes`, extrapolated from a plan row; 0 when
// none does (the --ctx/--ctx-min floor included), at most llama.cpp's parallel sequence limit.
int largest_fitting_workers(const memory_plan & p, const lockstep_config & c, uint64_t kv_bytes_per_token);
// "the largest worker count that fits is N", or that none fits and which flags to lower.
std::string fits_text(int largest_fitting);

// The sweep extension's rule (DESIGN §3), for the measured or predicted sweep alike: after `last`
// (and `before`, the W measured before it; nullptr when `last` is the first), the W to run next, or 0
// with `stop` saying why the extension ends (worded for predicted rows when `predicted`).
int next_extension_workers(const lockstep_config & c, const lockstep_row * before, const lockstep_row & last,
                           std::string & stop, bool predicted = false);

// Runs the sweep. A W that does not fit is skipped with a message naming the largest W that fits.
lockstep_result run_lockstep(const lockstep_config & c, const lockstep_callbacks & cb);

// The memory that bounds weights + KV cache, and the devices it is on: with layers offloaded, every
// device llama.cpp places them on (engine::llama::offload_devices), as the smallest free_i / share_i
// (shares from -ts, by default from free memory, where this is the sum of their free memory); else
// the host's MemAvailable. RPC servers on one host each report that host's memory.
std::pair<std::string, uint64_t> kv_device_free(const engine::llama::engine_params & p);

}  // namespace im::workload
