#include "telemetry/sampler.h"

#include "core/clock.h"
#include "core/process.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace im::telemetry {

namespace {

constexpr double mib = 1024.0 * 1024.0;

void raise(std::optional<double> & peak, const std::optional<double> & v) {
    if (v && (!peak || *v > *peak)) peak = v;
}

}  // namespace

bool series::has_power() const {
    return std::any_of(samples.begin(), samples.end(),
                       [](const sample & s) { return s.gpu_power_w.has_value() || s.cpu_package_power_w.has_value(); });
}

std::string series::why_no_power() const {
    if (has_power()) return "";
    const std::string gpu = nvml_why_not.empty() ? "NVML gave no power reading" : fmt::format("NVML absent ({})", nvml_why_not);
    const std::string cpu = rapl_why_not.empty() ? "RAPL gave no reading" : fmt::format("RAPL not readable ({})", rapl_why_not);
    return fmt::format("no power counter on this machine: {}, {}", gpu, cpu);
}

sampler::sampler(sampler_options o)
    : opt_(std::move(o)), nvml_(0, opt_.nvml_library), rapl_(opt_.powercap_root) {
    if (!opt_.now_ns) opt_.now_ns = [] { return clock::now_ns(); };
    if (opt_.interval_ns <= 0) opt_.interval_ns = 250'000'000;
    if (opt_.max_samples < 2) opt_.max_samples = 2;
    t0_ns_ = opt_.now_ns();
    last_ns_ = t0_ns_;
    data_.interval_s = static_cast<double>(opt_.interval_ns) / 1e9;
    if (nvml_.available()) {
        data_.sources.push_back("nvml");
        data_.gpu_name = nvml_.name();
    } else {
        data_.nvml_why_not = nvml_.why_not();
    }
    if (rapl_.available()) {
        data_.sources.push_back("rapl");
        last_cpu_j_ = rapl_.joules();  // the zero of this sampler's energy deltas
    } else {
        data_.rapl_why_not = rapl_.why_not();
    }
    if (opt_.process) {
        cpu0_s_ = process::cpu_seconds();
        if (cpu0_s_ >= 0 || process::rss_bytes() > 0) data_.sources.push_back("proc");
        if (cpu0_s_ >= 0) last_cpu_s_ = 0.0;
    }
}

sampler::~sampler() { stop(); }

void sampler::start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return;
    running_ = true;
    thread_ = std::thread([this] { run(); });
}

void sampler::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!running_) return;
        running_ = false;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void sampler::run() {
    // Deadlines on a fixed grid (start + k·interval): a slow reading does not shift the ones after it.
    using steady = std::chrono::steady_clock;
    const auto interval = std::chrono::nanoseconds(opt_.interval_ns);
    auto next = steady::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (running_) {
        take_locked();
        next += interval;
        const auto now = steady::now();
        if (next < now) next = now + interval - (now - next) % interval;
        cv_.wait_until(lock, next, [this] { return !running_; });
    }
}

void sampler::set_stage(const std::string & stage, int level) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool new_span = stage != stage_;
    stage_ = stage;
    level_ = level;
    segment_ = {};
    const double t = static_cast<double>(opt_.now_ns() - t0_ns_) / 1e9;
    if (new_span && !stage.empty()) data_.stages.push_back({stage, t, t});
    take_locked();
}

void sampler::set_level(int level) {
    std::lock_guard<std::mutex> lock(mu_);
    level_ = level;
    segment_ = {};
    take_locked();
}

sample sampler::sample_now() {
    std::lock_guard<std::mutex> lock(mu_);
    return take_locked();
}

segment_peaks sampler::close_segment() {
    std::lock_guard<std::mutex> lock(mu_);
    take_locked();
    return segment_;
}

series sampler::snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return data_;
}

sample sampler::take_locked() {
    const int64_t now = opt_.now_ns();
    const double dt = static_cast<double>(now - last_ns_) / 1e9;
    sample s;
    s.t_s = static_cast<double>(now - t0_ns_) / 1e9;
    s.stage = stage_;
    s.level = level_;
    if (nvml_.available()) {
        s.gpu_power_w = nvml_.watts();
        if (const auto b = nvml_.memory_used_bytes()) s.gpu_memory_used_mib = static_cast<double>(*b) / mib;
        if (const auto u = nvml_.utilization()) s.gpu_util_pct = *u * 100.0;
        s.gpu_sm_clock_mhz = nvml_.sm_clock_mhz();
    }
    if (rapl_.available()) {
        const auto j = rapl_.joules();
        if (j && last_cpu_j_ && dt > 0) s.cpu_package_power_w = (*j - *last_cpu_j_) / dt;
        if (j) last_cpu_j_ = j;
    }
    if (opt_.process) {
        if (const uint64_t rss = process::rss_bytes(); rss > 0) s.process_rss_mib = static_cast<double>(rss) / mib;
        if (cpu0_s_ >= 0) {
            const double c = process::cpu_seconds();
            if (c >= 0) {
                s.process_cpu_s = c - cpu0_s_;
                if (last_cpu_s_ && dt > 0) s.process_cpu_cores = (*s.process_cpu_s - *last_cpu_s_) / dt;
                last_cpu_s_ = s.process_cpu_s;
            }
        }
    }
    last_ns_ = now;
    raise(segment_.gpu_memory_used_mib, s.gpu_memory_used_mib);
    raise(segment_.process_rss_mib, s.process_rss_mib);
    if (!s.stage.empty() && !data_.stages.empty() && data_.stages.back().stage == s.stage) data_.stages.back().end_s = s.t_s;
    ++data_.samples_recorded;
    data_.samples.push_back(s);
    if (data_.samples.size() >= opt_.max_samples) {
        // Bounded memory on long runs: every other sample goes (the segment peaks are kept apart).
        std::vector<sample> kept;
        kept.reserve(data_.samples.size() / 2 + 1);
        for (size_t i = 0; i < data_.samples.size(); i += 2) kept.push_back(std::move(data_.samples[i]));
        data_.samples = std::move(kept);
    }
    return s;
}

std::vector<sample> decimate(const std::vector<sample> & samples, size_t max) {
    if (samples.size() <= max) return samples;
    if (max == 0) return {};
    if (max == 1) return {samples.front()};
    std::vector<sample> out;
    out.reserve(max);
    const double n1 = static_cast<double>(samples.size() - 1);
    const double m1 = static_cast<double>(max - 1);
    for (size_t k = 0; k < max; ++k) {
        out.push_back(samples[static_cast<size_t>(std::llround(static_cast<double>(k) * n1 / m1))]);
    }
    return out;
}

}  // namespace im::telemetry
