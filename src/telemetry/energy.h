#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Energy and device telemetry (issue 11): GPU energy, power, memory, utilisation and clocks through
// NVML (libnvidia-ml.so.1, loaded with dlopen at run time: infermeter neither links nor needs it), CPU
// package energy through Linux RAPL (/sys/class/powercap). Either may be absent (a VM, macOS, no NVIDIA
// driver, no read permission): each reader then says why, and nothing is estimated in its place.
namespace im::telemetry {

// Sum of the RAPL package domains (intel-rapl:N, and AMD's same interface), in joules, wraparound handled
// with each domain's max_energy_range_uj. `root` is /sys/class/powercap (tests point it at a recorded tree).
class rapl_reader {
  public:
    explicit rapl_reader(std::filesystem::path root = "/sys/class/powercap");
    bool available() const { return !domains_.empty(); }
    const std::string & why_not() const { return why_not_; }
    // Joules since this reader was made (monotonic across counter wraparounds); nullopt on a read failure.
    std::optional<double> joules();
    std::vector<std::string> domain_names() const;

  private:
    struct domain {
        std::filesystem::path energy;
        std::string name;
        uint64_t max_range_uj = 0;
        uint64_t last_uj = 0;
        double total_j = 0;
    };
    std::vector<domain> domains_;
    std::string why_not_;
};

// One GPU through NVML. The library path defaults to libnvidia-ml.so.1 (INFERMETER_NVML_LIB overrides it,
// as the tests do with a recorded fake).
class nvml_reader {
  public:
    explicit nvml_reader(unsigned device_index = 0, const std::string & library = "");
    ~nvml_reader();
    nvml_reader(const nvml_reader &) = delete;
    nvml_reader & operator=(const nvml_reader &) = delete;
    bool available() const { return dev_ != nullptr; }
    const std::string & why_not() const { return why_not_; }
    const std::string & name() const { return name_; }
    // Total energy since the driver loaded, in joules (Volta and later); nullopt where unsupported.
    std::optional<double> joules();
    std::optional<double> watts();
    std::optional<uint64_t> memory_used_bytes();
    std::optional<double> utilization();      // SM busy fraction over the driver's last sample period
    std::optional<double> sm_clock_mhz();

  private:
    struct api;
    std::unique_ptr<api> api_;
    void * dev_ = nullptr;
    std::string why_not_;
    std::string name_;
};

// What a measured interval cost: energy from the counters at its start and end, watts = joules / seconds.
struct interval_energy {
    std::optional<double> gpu_j, cpu_j;
    double seconds = 0;
    std::optional<double> total_j() const;
    std::optional<double> watts() const;
    // Joules per output token; nullopt without energy or tokens.
    std::optional<double> per_token(double tokens) const;
};

// Reads both counters at start() and stop(): the energy of one measured phase.
class energy_meter {
  public:
    energy_meter();  // opens NVML (GPU 0) and RAPL; either may be unavailable
    std::string sources() const;  // "NVML (NVIDIA H200) + RAPL (package-0)", or why there is none
    bool any() const;
    void start();
    interval_energy stop();

  private:
    nvml_reader nvml_;
    rapl_reader rapl_;
    std::optional<double> gpu0_, cpu0_;
    int64_t t0_ns_ = 0;
};

}  // namespace im::telemetry
