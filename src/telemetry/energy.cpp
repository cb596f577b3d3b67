#include "telemetry/energy.h"

#include "core/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define IM_HAVE_DLOPEN 1
#endif

namespace im::telemetry {

namespace {

std::optional<uint64_t> read_u64(const std::filesystem::path & p) {
    std::ifstream in(p);
    uint64_t v = 0;
    if (!(in >> v)) return std::nullopt;
    return v;
}

std::string read_line(const std::filesystem::path & p) {
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
}

}  // namespace

// ---- RAPL -------------------------------------------------------------------------------------------

rapl_reader::rapl_reader(std::filesystem::path root) {
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec)) {
        why_not_ = fmt::format("no {} (not Linux, or no RAPL driver: common in VMs)", root.string());
        return;
    }
    // Top-level zones only (intel-rapl:0, intel-rapl:1): their subzones (core, uncore, dram) are inside
    // the package figure; a "psys" zone covers the whole platform and would count the packages twice.
    std::vector<std::filesystem::path> zones;
    for (const auto & e : std::filesystem::directory_iterator(root, ec)) {
        const auto n = e.path().filename().string();
        if (n.rfind("intel-rapl:", 0) == 0 && n.find(':', 11) == std::string::npos) zones.push_back(e.path());
    }
    std::sort(zones.begin(), zones.end());
    bool unreadable = false;
    for (const auto & z : zones) {
        const std::string name = read_line(z / "name");
        if (name == "psys") continue;
        const auto now = read_u64(z / "energy_uj");
        if (!now) {
            unreadable = true;  // root-only since 2020 (CVE-2020-8694) on most distributions
            continue;
        }
        domain d;
        d.energy = z / "energy_uj";
        d.name = name.empty() ? z.filename().string() : name;
        d.max_range_uj = read_u64(z / "max_energy_range_uj").value_or(0);
        d.last_uj = *now;
        domains_.push_back(d);
    }
    if (domains_.empty()) {
        why_not_ = zones.empty() ? fmt::format("no RAPL package zone under {}", root.string())
                   : unreadable  ? fmt::format("RAPL energy_uj under {} is not readable (root only)", root.string())
                                 : "no RAPL package zone";
    }
}

std::optional<double> rapl_reader::joules() {
    double total = 0;
    for (auto & d : domains_) {
        const auto now = read_u64(d.energy);
        if (!now) return std::nullopt;
        // The counter wraps at max_energy_range_uj (about 262 kJ on many CPUs: minutes at full load).
        uint64_t delta = *now >= d.last_uj ? *now - d.last_uj
                         : d.max_range_uj > d.last_uj ? d.max_range_uj - d.last_uj + *now + 1
                                                      : *now;
        d.last_uj = *now;
        d.total_j += static_cast<double>(delta) / 1e6;
        total += d.total_j;
    }
    return domains_.empty() ? std::nullopt : std::optional<double>(total);
}

std::vector<std::string> rapl_reader::domain_names() const {
    std::vector<std::string> v;
    for (const auto & d : domains_) v.push_back(d.name);
    return v;
}

// ---- NVML -------------------------------------------------------------------------------------------

// The handful of NVML entry points used, resolved by name (nvml.h is not needed to build).
struct nvml_reader::api {
    void * lib = nullptr;
    using init_t = int (*)();
    using shutdown_t = int (*)();
    using handle_t = int (*)(unsigned, void **);
    using name_t = int (*)(void *, char *, unsigned);
    using energy_t = int (*)(void *, unsigned long long *);
    using power_t = int (*)(void *, unsigned *);
    struct memory { unsigned long long total, free, used; };
    using mem_t = int (*)(void *, memory *);
    struct utilization { unsigned gpu, memory; };
    using util_t = int (*)(void *, utilization *);
    using clock_t_ = int (*)(void *, int, unsigned *);
    init_t init = nullptr;
    shutdown_t shutdown = nullptr;
    handle_t handle = nullptr;
    name_t name = nullptr;
    energy_t energy = nullptr;
    power_t power = nullptr;
    mem_t mem = nullptr;
    util_t util = nullptr;
    clock_t_ clock = nullptr;
};

nvml_reader::nvml_reader(unsigned device_index, const std::string & library) : api_(std::make_unique<api>()) {
#if IM_HAVE_DLOPEN
    std::string lib = library;
    if (lib.empty()) {
        const char * env = std::getenv("INFERMETER_NVML_LIB");
        lib = env && *env ? env : "libnvidia-ml.so.1";
    }
    api_->lib = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!api_->lib) {
        why_not_ = fmt::format("no NVML ({} could not be loaded: no NVIDIA driver here)", lib);
        return;
    }
    const auto sym = [&](const char * n) { return dlsym(api_->lib, n); };
    api_->init = reinterpret_cast<api::init_t>(sym("nvmlInit_v2"));
    api_->shutdown = reinterpret_cast<api::shutdown_t>(sym("nvmlShutdown"));
    api_->handle = reinterpret_cast<api::handle_t>(sym("nvmlDeviceGetHandleByIndex_v2"));
    api_->name = reinterpret_cast<api::name_t>(sym("nvmlDeviceGetName"));
    api_->energy = reinterpret_cast<api::energy_t>(sym("nvmlDeviceGetTotalEnergyConsumption"));
    api_->power = reinterpret_cast<api::power_t>(sym("nvmlDeviceGetPowerUsage"));
    api_->mem = reinterpret_cast<api::mem_t>(sym("nvmlDeviceGetMemoryInfo"));
    api_->util = reinterpret_cast<api::util_t>(sym("nvmlDeviceGetUtilizationRates"));
    api_->clock = reinterpret_cast<api::clock_t_>(sym("nvmlDeviceGetClockInfo"));
    if (!api_->init || !api_->handle || !api_->shutdown) {
        why_not_ = fmt::format("{} lacks nvmlInit_v2/nvmlDeviceGetHandleByIndex_v2", lib);
        return;
    }
    if (const int rc = api_->init(); rc != 0) {
        why_not_ = fmt::format("nvmlInit_v2 failed (NVML error {})", rc);
        api_->shutdown = nullptr;  // nothing to shut down
        return;
    }
    void * dev = nullptr;
    if (const int rc = api_->handle(device_index, &dev); rc != 0 || !dev) {
        why_not_ = fmt::format("NVML has no GPU {} (error {})", device_index, rc);
        return;
    }
    dev_ = dev;
    char buf[96] = {};
    if (api_->name && api_->name(dev_, buf, sizeof buf) == 0) name_ = buf;
#else
    (void)device_index;
    (void)library;
    why_not_ = "NVML needs dlopen, not available on this platform";
#endif
}

nvml_reader::~nvml_reader() {
#if IM_HAVE_DLOPEN
    if (api_ && api_->lib) {
        if (api_->shutdown) api_->shutdown();
        dlclose(api_->lib);
    }
#endif
}

std::optional<double> nvml_reader::joules() {
    unsigned long long mj = 0;
    if (!dev_ || !api_->energy || api_->energy(dev_, &mj) != 0) return std::nullopt;
    return static_cast<double>(mj) / 1e3;
}

std::optional<double> nvml_reader::watts() {
    unsigned mw = 0;
    if (!dev_ || !api_->power || api_->power(dev_, &mw) != 0) return std::nullopt;
    return mw / 1e3;
}

std::optional<uint64_t> nvml_reader::memory_used_bytes() {
    api::memory m{};
    if (!dev_ || !api_->mem || api_->mem(dev_, &m) != 0) return std::nullopt;
    return m.used;
}

std::optional<double> nvml_reader::utilization() {
    api::utilization u{};
    if (!dev_ || !api_->util || api_->util(dev_, &u) != 0) return std::nullopt;
    return u.gpu / 100.0;
}

std::optional<double> nvml_reader::sm_clock_mhz() {
    unsigned mhz = 0;
    if (!dev_ || !api_->clock || api_->clock(dev_, 1 /* NVML_CLOCK_SM */, &mhz) != 0) return std::nullopt;
    return mhz;
}

// ---- intervals --------------------------------------------------------------------------------------

std::optional<double> interval_energy::total_j() const {
    if (!gpu_j && !cpu_j) return std::nullopt;
    return gpu_j.value_or(0) + cpu_j.value_or(0);
}

std::optional<double> interval_energy::watts() const {
    const auto j = total_j();
    if (!j || seconds <= 0) return std::nullopt;
    return *j / seconds;
}

std::optional<double> interval_energy::per_token(double tokens) const {
    const auto j = total_j();
    if (!j || tokens <= 0) return std::nullopt;
    return *j / tokens;
}

energy_meter::energy_meter() : nvml_(0) {}

bool energy_meter::any() const { return nvml_.available() || rapl_.available(); }

std::string energy_meter::sources() const {
    std::vector<std::string> parts;
    if (nvml_.available()) parts.push_back(fmt::format("NVML ({})", nvml_.name().empty() ? "GPU 0" : nvml_.name()));
    if (rapl_.available()) {
        std::string names;
        for (const auto & n : rapl_.domain_names()) names += (names.empty() ? "" : ", ") + n;
        parts.push_back(fmt::format("RAPL ({})", names));
    }
    if (parts.empty()) return fmt::format("none: {}; {}", nvml_.why_not(), rapl_.why_not());
    std::string s;
    for (const auto & p : parts) s += (s.empty() ? "" : " + ") + p;
    return s;
}

void energy_meter::start() {
    gpu0_ = nvml_.joules();
    cpu0_ = rapl_.joules();
    t0_ns_ = clock::now_ns();
}

interval_energy energy_meter::stop() {
    interval_energy e;
    e.seconds = static_cast<double>(clock::now_ns() - t0_ns_) / 1e9;
    if (gpu0_) {
        if (const auto g = nvml_.joules()) e.gpu_j = *g - *gpu0_;
    }
    if (cpu0_) {
        if (const auto c = rapl_.joules()) e.cpu_j = *c - *cpu0_;
    }
    return e;
}

}  // namespace im::telemetry
