#include "support/powercap.h"
#include "support/run.h"
#include "telemetry/energy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace im::telemetry;
namespace fs = std::filesystem;

namespace {

void put(const fs::path & p, const std::string & text) { im::test::put_text(p, text); }
fs::path recorded_powercap() { return im::test::recorded_powercap(); }

}  // namespace

TEST(telemetry_rapl, sums_packages_and_handles_wraparound) {
    const auto root = recorded_powercap();
    rapl_reader r(root);
    ASSERT_TRUE(r.available()) << r.why_not();
    EXPECT_EQ(r.domain_names(), (std::vector<std::string>{"package-0", "package-1"}));
    EXPECT_DOUBLE_EQ(*r.joules(), 0.0);
    // package-0 wraps: 262143000000 -> max 262143328850 -> 500000 (328850 + 500000 + 1 µJ);
    // package-1 advances 2.5 J; the core and psys zones change and are ignored.
    put(root / "intel-rapl:0" / "energy_uj", "500000");
    put(root / "intel-rapl:1" / "energy_uj", "3500000");
    put(root / "intel-rapl:0:0" / "energy_uj", "9000000");
    put(root / "intel-rapl:2" / "energy_uj", "199000000");
    EXPECT_NEAR(*r.joules(), 0.828851 + 2.5, 1e-9);
    put(root / "intel-rapl:1" / "energy_uj", "4500000");
    EXPECT_NEAR(*r.joules(), 0.828851 + 3.5, 1e-9);
}

TEST(telemetry_rapl, absent_or_empty_says_why) {
    rapl_reader none(im::test::temp_dir("no-powercap") / "nothing-here");
    EXPECT_FALSE(none.available());
    EXPECT_NE(none.why_not().find("no "), std::string::npos) << none.why_not();
    EXPECT_FALSE(none.joules().has_value());
    const auto root = im::test::temp_dir("psys-only") / "powercap";
    fs::remove_all(root);
    put(root / "intel-rapl:0" / "name", "psys");
    put(root / "intel-rapl:0" / "energy_uj", "1");
    rapl_reader psys(root);
    EXPECT_FALSE(psys.available());
}

TEST(telemetry_nvml, reads_a_recorded_library_through_dlopen) {
    nvml_reader n(0, INFERMETER_FAKE_NVML);
    ASSERT_TRUE(n.available()) << n.why_not();
    EXPECT_EQ(n.name(), "NVIDIA H200 (recorded)");
    const double j0 = *n.joules();
    EXPECT_NEAR(*n.joules() - j0, 700.0, 1e-9);  // the recorded counter: 700 J per read
    EXPECT_NEAR(*n.watts(), 412.345, 1e-9);
    EXPECT_EQ(*n.memory_used_bytes(), 3221225472ULL);
    EXPECT_NEAR(*n.utilization(), 0.87, 1e-12);
    EXPECT_EQ(*n.sm_clock_mhz(), 1980);
    nvml_reader other(1, INFERMETER_FAKE_NVML);
    EXPECT_FALSE(other.available());
    EXPECT_NE(other.why_not().find("no GPU 1"), std::string::npos) << other.why_not();
    nvml_reader missing(0, "/nonexistent/libnvidia-ml.so.1");
    EXPECT_FALSE(missing.available());
    EXPECT_FALSE(missing.joules().has_value());
    EXPECT_NE(missing.why_not().find("could not be loaded"), std::string::npos);
}

TEST(telemetry_meter, interval_energy_and_per_token) {
    interval_energy e;
    EXPECT_FALSE(e.total_j().has_value());
    EXPECT_FALSE(e.per_token(100).has_value());
    e.gpu_j = 700;
    e.cpu_j = 50;
    e.seconds = 2;
    EXPECT_DOUBLE_EQ(*e.total_j(), 750);
    EXPECT_DOUBLE_EQ(*e.watts(), 375);
    EXPECT_DOUBLE_EQ(*e.per_token(1500), 0.5);
    EXPECT_FALSE(e.per_token(0).has_value());

    // The meter with the recorded NVML (INFERMETER_NVML_LIB, as a user would point it elsewhere): one
    // read at start, one at stop = 700 J.
    ::setenv("INFERMETER_NVML_LIB", INFERMETER_FAKE_NVML, 1);
    energy_meter m;
    ::unsetenv("INFERMETER_NVML_LIB");
    ASSERT_TRUE(m.any()) << m.sources();
    EXPECT_EQ(m.sources().rfind("NVML (NVIDIA H200 (recorded))", 0), 0u) << m.sources();
    m.start();
    const auto got = m.stop();
    ASSERT_TRUE(got.gpu_j.has_value());
    EXPECT_NEAR(*got.gpu_j, 700.0, 1e-9);
}
