#pragma once

#include "telemetry/sampler.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

// Views of a telemetry series (telemetry/sampler.h) for report.json, report.md and report.html.
namespace im::report {

// report.json keeps at most this many samples (evenly decimated beyond it: telemetry::decimate).
constexpr size_t telemetry_max_samples = 20'000;
// The HTML charts draw at most this many points per series (a chart is ~1,000 px wide).
constexpr size_t telemetry_chart_points = 1'500;

// report.json's `telemetry`: interval_s, sources, why a source is absent, the stages and the series (one
// object per sample: t_s, stage, level and each metric that was read; absent metrics are left out).
nlohmann::ordered_json telemetry_json(const telemetry::series & s, size_t max_samples = telemetry_max_samples);

// Per stage: its seconds, the number of samples, mean and peak power, peak memory, mean CPU cores.
struct stage_summary {
    std::string stage;
    double seconds = 0;
    size_t n_samples = 0;
    std::optional<double> gpu_power_mean_w, gpu_power_peak_w, cpu_package_power_mean_w, cpu_package_power_peak_w;
    std::optional<double> gpu_memory_peak_mib, process_rss_peak_mib, process_cpu_cores_mean;
};
std::vector<stage_summary> stage_summaries(const telemetry::series & s);

// "### Telemetry During the Run": sources, interval, and the per-stage table; says why power is absent.
std::string telemetry_markdown(const telemetry::series & s);
// The HTML section: power and memory over time with the stage boundaries marked; when a chart has no
// data it says why instead. `s` absent: a note that this run recorded no series.
std::string telemetry_html(const std::optional<telemetry::series> & s);

}  // namespace im::report
