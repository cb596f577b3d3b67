#pragma once

#include "workload/requests.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

// --find-capacity (DESIGN §3): the highest concurrency (closed loop) and request rate (open loop)
// whose percentile TTFT and TPOT meet the SLO, by a bracketing search; each probe states its confidence.
namespace im::workload {

struct capacity_probe {
    request_workload workload;
    request_metrics metrics;
    bool met = false;
    // Fraction of the probe's requests meeting both objectives, with its Clopper–Pearson 95% interval:
    // "p99 <= objective" is shown with confidence when the interval's low end is >= 0.99.
    double fraction = 0, fraction_low = 0, fraction_high = 1;
    std::string label() const;  // "C=8" or "3.20 req/s"
};

struct capacity_result {
    std::optional<int> concurrency;       // highest closed-loop concurrency meeting the SLO
    std::optional<double> rate;           // highest open-loop rate meeting the SLO (req/s)
    double goodput_rps = 0;               // at `rate` (or at `concurrency` when no rate was searched)
    std::vector<capacity_probe> probes;   // in the order run
    std::string summary;                  // one or two sentences, computed from the probes
    bool interrupted = false;
};

struct capacity_options {
    int max_concurrency = 64;   // closed-loop search bound
    int max_probes = 12;        // in total
    bool search_rate = true;    // after the concurrency search, the open-loop rate at that concurrency
    double rate_precision = 0.10;  // stop bisecting when hi/lo - 1 is below this
};

// `run_level` runs one load level (a fresh measurement) and returns it. `base` carries the SLO, the
// request count and the arrival settings used for every probe.
capacity_result find_capacity(const std::function<request_run(const request_workload &)> & run_level,
                              const request_workload & base, const capacity_options & o);

}  // namespace im::workload
