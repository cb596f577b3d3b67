#include "hardware/system.h"

#include "ggml-backend.h"

#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include <sys/utsname.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace im::hardware {

namespace {

std::string read_line(const std::string & path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// "32768K", "2M", "64K" as sysfs writes cache sizes.
uint64_t parse_cache_size(const std::string & s) {
    if (s.empty()) return 0;
    size_t pos = 0;
    uint64_t v = 0;
    try {
        v = std::stoull(s, &pos);
    } catch (...) {
        return 0;
    }
    const char unit = pos < s.size() ? s[pos] : ' ';
    if (unit == 'K') return v * 1024;
    if (unit == 'M') return v * 1024 * 1024;
    if (unit == 'G') return v * 1024 * 1024 * 1024;
    return v;
}

void read_linux(system_info & s) {
    // Physical cores: distinct (physical id, core id) pairs; lscpu does the same.
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    std::set<std::pair<std::string, std::string>> cores;
    std::string phys = "0";
    while (std::getline(in, line)) {
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
        const std::string val = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
        if (key == "physical id") phys = val;
        if (key == "core id") cores.emplace(phys, val);
    }
    if (!cores.empty()) s.n_cores = static_cast<int>(cores.size());

    for (int i = 0; i < 8; ++i) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
        const std::string level = read_line(dir + "level");
        if (level.empty()) break;
        const std::string type = read_line(dir + "type");
        const uint64_t size = parse_cache_size(read_line(dir + "size"));
        if (level == "1" && type == "Data") s.l1d_bytes = size;
        if (level == "2") s.l2_bytes = size;
        if (level == "3") s.l3_bytes = std::max(s.l3_bytes, size);
    }
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) s.memory_total_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

#if defined(__APPLE__)
template <typename T> T sysctl_value(const char * name) {
    T v{};
    size_t n = sizeof(v);
    return sysctlbyname(name, &v, &n, nullptr, 0) == 0 ? v : T{};
}

void read_apple(system_info & s) {
    char brand[256] = {};
    size_t n = sizeof(brand);
    if (sysctlbyname("machdep.cpu.brand_string", brand, &n, nullptr, 0) == 0) s.cpu_model = brand;
    s.n_cores = static_cast<int>(sysctl_value<int32_t>("hw.physicalcpu"));
    s.l1d_bytes = sysctl_value<uint64_t>("hw.l1dcachesize");
    s.l2_bytes = sysctl_value<uint64_t>("hw.l2cachesize");
    s.l3_bytes = sysctl_value<uint64_t>("hw.l3cachesize");
    s.memory_total_bytes = sysctl_value<uint64_t>("hw.memsize");
}
#endif

}  // namespace

system_info describe_system() {
    system_info s;
    s.cpu_model = engine::cpu_name();
    s.n_threads = static_cast<int>(std::thread::hardware_concurrency());
#if defined(__APPLE__)
    read_apple(s);
#else
    read_linux(s);
#endif
    if (s.n_cores <= 0) s.n_cores = s.n_threads;

    utsname u{};
    if (uname(&u) == 0) {
        s.os = std::string(u.sysname) + " " + u.release + " " + u.machine;
        s.hostname = u.nodename;
    }
    s.devices = engine::devices();

    // Runtime and build features as each backend reports them (CUDA version, compute capability,
    // CPU SIMD flags): the closest thing to driver versions the generic API offers.
    for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
        ggml_backend_reg_t reg = ggml_backend_reg_get(i);
        auto get_features = reinterpret_cast<ggml_backend_get_features_t>(
            ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features"));
        if (!get_features) continue;
        std::string line;
        for (const ggml_backend_feature * f = get_features(reg); f && f->name; ++f) {
            line += (line.empty() ? "" : ", ") + std::string(f->name) + "=" + (f->value ? f->value : "");
        }
        if (!line.empty()) s.backend_features.push_back(std::string(ggml_backend_reg_name(reg)) + ": " + line);
    }
    return s;
}

}  // namespace im::hardware
