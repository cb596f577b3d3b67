#pragma once

#include "telemetry/energy.h"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// A telemetry time series (issue 11): a background thread reads, every interval of the steady clock,
// GPU power, memory, utilisation and SM clock (NVML), CPU package power (RAPL energy deltas) and this
// process's resident memory and CPU time. A metric the machine cannot give is absent from the sample,
// never estimated. Each sample carries the label of what ran (evaluate's stage, and the worker count or
// concurrency when known). Independent of llama.cpp.
namespace im::telemetry {

struct sample {
    double t_s = 0;                                 // seconds since the sampler was made (steady clock)
    std::string stage;                              // "bench", "parallel", ...; empty outside any stage
    int level = 0;                                  // W or concurrency; 0 when none is known
    std::optional<double> gpu_power_w;              // nvmlDeviceGetPowerUsage
    std::optional<double> gpu_memory_used_mib;      // nvmlDeviceGetMemoryInfo.used
    std::optional<double> gpu_util_pct;             // nvmlDeviceGetUtilizationRates.gpu: share of time a kernel ran
    std::optional<double> gpu_sm_clock_mhz;         // nvmlDeviceGetClockInfo(NVML_CLOCK_SM)
    std::optional<double> cpu_package_power_w;      // RAPL package joules since the previous sample / its seconds
    std::optional<double> process_rss_mib;          // resident memory of this process
    std::optional<double> process_cpu_s;            // user + system CPU seconds since the sampler was made
    std::optional<double> process_cpu_cores;        // CPU seconds since the previous sample / its seconds
};

// One stage between its first and last sample, in sampler seconds.
struct stage_span {
    std::string stage;
    double start_s = 0;
    double end_s = 0;
};

// What a sampler recorded: what report.json's `telemetry` and the HTML chart render.
struct series {
    double interval_s = 0;
    std::vector<std::string> sources;   // of "nvml", "rapl", "proc": the ones that gave readings
    std::string gpu_name;               // NVML's device name ("" without NVML)
    std::string nvml_why_not, rapl_why_not;  // why a source is absent ("" when present)
    size_t samples_recorded = 0;        // taken in all, including any dropped to bound memory
    std::vector<sample> samples;        // in time order
    std::vector<stage_span> stages;     // in time order
    bool has_power() const;             // any sample with GPU or CPU package power
    // "no power counter on this machine: NVML absent (…), RAPL not readable (…)"; "" when there is one.
    std::string why_no_power() const;
};

// Highest readings of one labelled segment (peaks over its samples, its start and end included).
struct segment_peaks {
    std::optional<double> gpu_memory_used_mib;
    std::optional<double> process_rss_mib;
};

struct sampler_options {
    int64_t interval_ns = 250'000'000;                       // 250 ms
    std::string nvml_library;                                // "": INFERMETER_NVML_LIB, else libnvidia-ml.so.1
    std::filesystem::path powercap_root = "/sys/class/powercap";
    bool process = true;                                     // RSS and CPU time of this process ("proc")
    std::function<int64_t()> now_ns;                         // default clock::now_ns (tests script it)
    size_t max_samples = 200'000;                            // in memory; beyond it every other one is dropped
};

// Thread safety: every member may be called from any thread; readings are serialized by one mutex.
class sampler {
  public:
    explicit sampler(sampler_options o = {});
    ~sampler();  // stops the thread
    sampler(const sampler &) = delete;
    sampler & operator=(const sampler &) = delete;

    // Samples every interval on a background thread until stop(); idempotent.
    void start();
    void stop();
    // Labels the samples from now on and takes one at the boundary; a new segment starts with it.
    void set_stage(const std::string & stage, int level = 0);
    // Same stage, another level (W or concurrency): takes a sample and starts a new segment with it.
    void set_level(int level);
    // Takes one sample now (labelled with the current stage and level) and returns it.
    sample sample_now();
    // Takes one sample now and returns the peaks of the segment that began with the last set_stage or
    // set_level (this sample included).
    segment_peaks close_segment();
    series snapshot() const;

  private:
    sample take_locked();
    void run();

    sampler_options opt_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::thread thread_;
    bool running_ = false;
    nvml_reader nvml_;
    rapl_reader rapl_;
    int64_t t0_ns_ = 0;
    double cpu0_s_ = -1;
    std::optional<double> last_cpu_j_, last_cpu_s_;
    int64_t last_ns_ = 0;
    std::string stage_;
    int level_ = 0;
    segment_peaks segment_;
    series data_;
};

// At most `max` samples, evenly spaced over the originals: index round(k·(n − 1)/(max − 1)) for
// k = 0 … max − 1 (first and last kept). Unchanged when there are no more than `max`.
std::vector<sample> decimate(const std::vector<sample> & samples, size_t max);

}  // namespace im::telemetry
