#pragma once

#include "tune/search.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

// What `infermeter tune` found, as one section: the tune command prints it, and `evaluate --tune`
// puts it in report.md / report.json / report.html before the measurements it configured.
namespace im::report {

struct tune_section {
    std::string model;           // as the user named it (a path or synth:PRESET)
    int workers = 0, n_prompt = 0, n_predict = 0;
    double budget_s = 0;
    std::vector<tune::axis> axes;
    tune::search_result result;
    std::string applied_flags;   // evaluate --tune: the flags every later stage ran with ("" from `tune`)
    std::string workload = "lockstep";  // what a score measures: lockstep | continuous | serve
    // serve: the recommended `llama-server ...` command line (the best settings), and the tie margin of
    // the output check (the baseline's top-2 probabilities at a divergence).
    std::string server_command;
    double tie_margin = 0;
};

// "## Tune: MODEL at W = …": every trial, the result, the recommended command, the costliest setting.
std::string tune_markdown(const tune_section & t);
nlohmann::ordered_json tune_json(const tune_section & t);
// `tune -w 1,8,64`: the Pareto front of aggregate throughput against per-stream latency across the
// searched worker counts, as a markdown section and as JSON (serve: against the measured p50 TPOT, with
// p50 TTFT beside it; printed for one C too).
std::string pareto_markdown(const std::vector<tune_section> & levels);
nlohmann::ordered_json pareto_json(const std::vector<tune_section> & levels);

// The table of trials as HTML (escaped), with the result sentence.
std::string tune_html(const tune_section & t);

}  // namespace im::report
