#include "support/powercap.h"
#include "support/run.h"
#include "telemetry/sampler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace im::telemetry;
namespace fs = std::filesystem;

namespace {

constexpr const char * no_nvml = "/nonexistent/libnvidia-ml.so.1";

// A sampler on recorded inputs only, with a clock the test moves by hand.
struct scripted {
    int64_t now_ns = 0;
    sampler_options options(const std::string & nvml, const fs::path & powercap, bool process) {
        sampler_options o;
        o.nvml_library = nvml;
        o.powercap_root = powercap;
        o.process = process;
        o.now_ns = [this] { return now_ns; };
        return o;
    }
};

}  // namespace

// CPU package power = RAPL joules since the previous sample / its seconds, wraparound included.
TEST(telemetry_sampler, rapl_power_from_energy_deltas_on_a_recorded_tree) {
    const auto root = im::test::recorded_powercap("sampler-powercap");
    scripted clock;
    sampler s(clock.options(no_nvml, root, false));
    const auto first = s.snapshot();
    EXPECT_EQ(first.sources, (std::vector<std::string>{"rapl"}));
    EXPECT_NE(first.nvml_why_not.find("could not be loaded"), std::string::npos) << first.nvml_why_not;
    EXPECT_TRUE(first.rapl_why_not.empty());

    // package-0 wraps (328,850 + 500,000 + 1 µJ), package-1 advances 2.5 J: 3.328851 J in 0.5 s.
    im::test::put_text(root / "intel-rapl:0" / "energy_uj", "500000");
    im::test::put_text(root / "intel-rapl:1" / "energy_uj", "3500000");
    clock.now_ns = 500'000'000;
    const auto a = s.sample_now();
    EXPECT_DOUBLE_EQ(a.t_s, 0.5);
    ASSERT_TRUE(a.cpu_package_power_w.has_value());
    EXPECT_NEAR(*a.cpu_package_power_w, 3.328851 / 0.5, 1e-9);
    EXPECT_FALSE(a.gpu_power_w.has_value());
    EXPECT_FALSE(a.process_rss_mib.has_value()) << "proc was not asked for";

    im::test::put_text(root / "intel-rapl:1" / "energy_uj", "4500000");  // +1 J in 0.25 s
    clock.now_ns = 750'000'000;
    EXPECT_NEAR(*s.sample_now().cpu_package_power_w, 4.0, 1e-9);
    const auto all = s.snapshot();
    EXPECT_TRUE(all.has_power());
    EXPECT_EQ(all.why_no_power(), "");
    EXPECT_EQ(all.samples_recorded, 2u);
}

TEST(telemetry_sampler, nvml_readings_from_the_recorded_library) {
    scripted clock;
    sampler s(clock.options(INFERMETER_FAKE_NVML, im::test::temp_dir("no-powercap-s") / "none", false));
    const auto x = s.sample_now();
    ASSERT_TRUE(x.gpu_power_w.has_value());
    EXPECT_NEAR(*x.gpu_power_w, 412.345, 1e-9);
    EXPECT_DOUBLE_EQ(*x.gpu_memory_used_mib, 3072.0);  // 3,221,225,472 B
    EXPECT_NEAR(*x.gpu_util_pct, 87.0, 1e-9);
    EXPECT_DOUBLE_EQ(*x.gpu_sm_clock_mhz, 1980.0);
    EXPECT_FALSE(x.cpu_package_power_w.has_value());
    const auto snap = s.snapshot();
    EXPECT_EQ(snap.sources, (std::vector<std::string>{"nvml"}));
    EXPECT_EQ(snap.gpu_name, "NVIDIA H200 (recorded)");
    EXPECT_NE(snap.rapl_why_not.find("no "), std::string::npos) << snap.rapl_why_not;
}

// Labels, stage spans and the peaks of a segment (what a lockstep row records).
TEST(telemetry_sampler, labels_stages_and_segment_peaks) {
    scripted clock;
    sampler s(clock.options(INFERMETER_FAKE_NVML, im::test::temp_dir("no-powercap-l") / "none", true));
    clock.now_ns = 1'000'000'000;
    s.set_stage("bench", 1);
    clock.now_ns = 2'000'000'000;
    s.sample_now();
    clock.now_ns = 3'000'000'000;
    s.set_stage("parallel");
    clock.now_ns = 3'500'000'000;
    s.set_level(2);
    clock.now_ns = 4'000'000'000;
    const auto peaks = s.close_segment();
    EXPECT_DOUBLE_EQ(*peaks.gpu_memory_used_mib, 3072.0);
    ASSERT_TRUE(peaks.process_rss_mib.has_value());
    EXPECT_GT(*peaks.process_rss_mib, 0.0);

    const auto snap = s.snapshot();
    EXPECT_EQ(snap.sources, (std::vector<std::string>{"nvml", "proc"}));
    ASSERT_EQ(snap.samples.size(), 5u);
    EXPECT_EQ(snap.samples[0].stage, "bench");
    EXPECT_EQ(snap.samples[0].level, 1);
    EXPECT_EQ(snap.samples[2].stage, "parallel");
    EXPECT_EQ(snap.samples[2].level, 0);
    EXPECT_EQ(snap.samples[4].level, 2);
    EXPECT_DOUBLE_EQ(snap.samples[4].t_s, 4.0);
    ASSERT_EQ(snap.stages.size(), 2u);
    EXPECT_EQ(snap.stages[0].stage, "bench");
    EXPECT_DOUBLE_EQ(snap.stages[0].start_s, 1.0);
    EXPECT_DOUBLE_EQ(snap.stages[0].end_s, 2.0);
    EXPECT_DOUBLE_EQ(snap.stages[1].start_s, 3.0);
    EXPECT_DOUBLE_EQ(snap.stages[1].end_s, 4.0);
    ASSERT_TRUE(snap.samples[1].process_cpu_s.has_value());
    EXPECT_GE(*snap.samples[1].process_cpu_s, 0.0);
    ASSERT_TRUE(snap.samples[1].process_cpu_cores.has_value()) << "CPU seconds over the 1 s since the previous sample";
    EXPECT_GE(*snap.samples[1].process_cpu_cores, 0.0);
}

TEST(telemetry_sampler, absent_sources_are_absent_and_say_why) {
    scripted clock;
    sampler s(clock.options(no_nvml, im::test::temp_dir("no-powercap-a") / "none", false));
    clock.now_ns = 250'000'000;
    const auto x = s.sample_now();
    EXPECT_FALSE(x.gpu_power_w || x.gpu_memory_used_mib || x.gpu_util_pct || x.gpu_sm_clock_mhz || x.cpu_package_power_w ||
                 x.process_rss_mib || x.process_cpu_s || x.process_cpu_cores);
    const auto snap = s.snapshot();
    EXPECT_TRUE(snap.sources.empty());
    EXPECT_FALSE(snap.has_power());
    const auto why = snap.why_no_power();
    EXPECT_EQ(why.rfind("no power counter on this machine: NVML absent (", 0), 0u) << why;
    EXPECT_NE(why.find("RAPL not readable ("), std::string::npos) << why;
}

// The thread samples on its own, every interval, until stopped.
TEST(telemetry_sampler, background_thread_samples_every_interval) {
    sampler_options o;
    o.interval_ns = 10'000'000;
    o.nvml_library = no_nvml;
    o.powercap_root = im::test::temp_dir("no-powercap-t") / "none";
    sampler s(o);
    s.start();
    s.start();  // idempotent
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    s.stop();
    const auto snap = s.snapshot();
    EXPECT_GE(snap.samples.size(), 3u) << "about 15 at 10 ms, fewer on a loaded machine";
    EXPECT_DOUBLE_EQ(snap.interval_s, 0.01);
    for (size_t i = 1; i < snap.samples.size(); ++i) EXPECT_GE(snap.samples[i].t_s, snap.samples[i - 1].t_s);
    ASSERT_FALSE(snap.samples.empty());
    EXPECT_TRUE(snap.samples.back().process_rss_mib.has_value());
    const size_t n = snap.samples.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(s.snapshot().samples.size(), n) << "no sample after stop()";
    s.stop();
}

TEST(telemetry_sampler, memory_is_bounded_by_dropping_every_other_sample) {
    scripted clock;
    auto o = clock.options(no_nvml, im::test::temp_dir("no-powercap-b") / "none", false);
    o.max_samples = 10;
    sampler s(o);
    for (int i = 0; i < 25; ++i) {
        clock.now_ns = int64_t{i} * 1'000'000'000;
        s.sample_now();
    }
    const auto snap = s.snapshot();
    EXPECT_EQ(snap.samples_recorded, 25u);
    EXPECT_LT(snap.samples.size(), 10u);
    EXPECT_DOUBLE_EQ(snap.samples.front().t_s, 0.0);
    for (size_t i = 1; i < snap.samples.size(); ++i) EXPECT_GT(snap.samples[i].t_s, snap.samples[i - 1].t_s);
}

TEST(telemetry_decimate, evenly_spaced_first_and_last_kept) {
    std::vector<sample> v(50'001);
    for (size_t i = 0; i < v.size(); ++i) v[i].t_s = static_cast<double>(i);
    const auto d = decimate(v, 20'000);
    ASSERT_EQ(d.size(), 20'000u);
    EXPECT_DOUBLE_EQ(d.front().t_s, 0.0);
    EXPECT_DOUBLE_EQ(d.back().t_s, 50'000.0);
    // index round(k · 50,000 / 19,999): gaps of 2 or 3 originals, never more, never a repeat.
    for (size_t k = 1; k < d.size(); ++k) {
        const double gap = d[k].t_s - d[k - 1].t_s;
        EXPECT_TRUE(gap == 2.0 || gap == 3.0) << k << ": " << gap;
    }
    EXPECT_DOUBLE_EQ(d[1].t_s, 3.0);  // round(2.50013)
    EXPECT_EQ(decimate(v, 60'000).size(), v.size()) << "no more than max: unchanged";
    EXPECT_EQ(decimate(v, 1).size(), 1u);
    EXPECT_TRUE(decimate(v, 0).empty());
}
