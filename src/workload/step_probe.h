#pragma once

#include "engine/llama/continuous.h"
#include "engine/llama/session.h"
#include "predict/step_model.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// Step probes (issue 10, docs/fast-mode.md): the time of a lockstep decode step t(W, d) at the sweep's
// worker counts and a few KV depths, and prefill times T(W·p), measured in a fraction of a full sweep.
// The KV cache of the probed depth is filled once, untimed, as llama-bench's -d does: sequence 0 is
// prefilled to depth d and its cache state copied to the other sequences (llama_state_seq_get/set_data:
// separate cells per sequence in both KV layouts, as a real sweep has).
namespace im::workload {

struct step_probe_config {
    std::filesystem::path model_path;
    engine::llama::engine_params params;
    std::vector<int> workers;        // the sweep's W (any order, distinct)
    int n_prompt = 128, n_predict = 128;
    int64_t ctx_min = 0;
    bool kv_unified = false;
    // Per (W, depth): one untimed step, then `windows` windows of k steps, one synchronize each, k such
    // that a window lasts window_min_s (2 .. window_max_steps); the sample is the median window's time / k.
    int windows = 3;
    double window_min_s = 0.06;
    int window_max_steps = 16;
    // Prefill probes: W ascending while their total time stays below this share of the predicted full
    // sweep's time (always the two smallest W when the sweep has two).
    double prefill_budget_share = 0.04;
    // Kernel-switch probes (predict::locate_switches): W between the sweep's, at the middle depth, while
    // their predicted cost keeps their total below this share of the predicted full sweep's time.
    double switch_budget_share = 0.03;
    // Continuous --fast (docs/fast-mode.md §8): after each step probe of the sweep's W, the CPU sampling
    // of that step's W sequences, one chain of these settings per sequence (the continuous engine's), timed in
    // `windows` windows of rounds (every sequence sampled once per round) lasting >= sampling_window_min_s.
    // Unset, or a mode other than cpu: not probed.
    std::optional<engine::llama::sampling_params> sampling;
    double sampling_window_min_s = 0.1;  // 0.02 left one round a window at N = 64 on the H200 (±10% a round)
    // Continuous --fast: after each step probe, also time steps with a synchronize each (synced_steps), as the
    // continuous engine runs them; always done when CPU sampling is probed (the same rounds).
    bool synced_steps = false;
};

struct step_probe_result {
    std::vector<predict::step_sample> steps;  // the sweep's W at every depth, then the switch probes
    std::vector<double> step_spread_rel;  // per step sample: (max - min) / median of its windows' times per step
    // Regime changes between the sweep's W, narrowed by bisection at the middle depth (switch probes are in
    // `steps` too), and the step fit over everything probed (empty when interrupted before the fit).
    predict::switch_search switches;
    double switch_probe_s = 0;  // wall time of the switch probes
    std::vector<predict::prefill_sample> prefills;
    std::vector<int> prefill_workers;  // W whose prefill was timed (the rest are predicted)
    // Sampling probes (config.sampling): tokens = sequences sampled in one step, seconds = the median window's
    // time per round (predict::fit_sampling: the median per N, straight lines between).
    std::vector<predict::prefill_sample> samplings;
    // Synchronized steps (config.synced_steps or CPU sampling): per (W, depth) of the sweep, the median window's
    // time per step when every step is waited for before the next is decoded.
    std::vector<predict::step_sample> synced_steps;
    std::vector<int> depths;           // KV depths probed
    int64_t n_ctx = 0;
    int n_threads = 0;
    double seconds = 0;                // wall time of the probes, model load included
    bool interrupted = false;
};

struct step_probe_callbacks {
    std::function<void(const std::string &)> progress;  // one line per probe point
};

// Runs the probes on one context sized for the largest W. Throws im::error when llama.cpp fails.
step_probe_result run_step_probes(const step_probe_config & c, const step_probe_callbacks & cb = {});

// The tolerance regimes are split at (predict::fit_steps): 4x the half-range of a point's timed steps
// (median over points), at least 5%.
double fit_tolerance(const step_probe_result & r);

// The depths probed for a sweep of n_predict steps from n_prompt: its first, middle and last decode
// position (each point's timed steps are centred on it).
std::vector<int> probe_depths(int n_prompt, int n_predict);

}  // namespace im::workload
