#pragma once

#include "support/run.h"

#include <filesystem>
#include <fstream>
#include <string>

// Recorded /sys/class/powercap trees for the RAPL tests (telemetry/energy.h, telemetry/sampler.h).
namespace im::test {

inline void put_text(const std::filesystem::path & p, const std::string & text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
}

// Two packages, a core subzone inside package 0 (not counted again), and a psys zone (the whole
// platform: would count the packages twice). package-0 sits 328,850 µJ below its wraparound.
inline std::filesystem::path recorded_powercap(const std::string & tag = "powercap") {
    const auto root = temp_dir(tag) / "powercap";
    std::filesystem::remove_all(root);
    put_text(root / "intel-rapl:0" / "name", "package-0");
    put_text(root / "intel-rapl:0" / "energy_uj", "262143000000");
    put_text(root / "intel-rapl:0" / "max_energy_range_uj", "262143328850");
    put_text(root / "intel-rapl:0:0" / "name", "core");
    put_text(root / "intel-rapl:0:0" / "energy_uj", "5000000");
    put_text(root / "intel-rapl:1" / "name", "package-1");
    put_text(root / "intel-rapl:1" / "energy_uj", "1000000");
    put_text(root / "intel-rapl:1" / "max_energy_range_uj", "262143328850");
    put_text(root / "intel-rapl:2" / "name", "psys");
    put_text(root / "intel-rapl:2" / "energy_uj", "99000000");
    return root;
}

}  // namespace im::test
