#include "hardware/specs.h"

#include "core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace im::hardware {

namespace {

constexpr double giga = 1e9;
constexpr double tera = 1e12;

// Apple publishes FP32 TFLOPS for M1 and M2 GPUs only; M3 values are cores x 128 ALUs x 2 x clock
// (~1.38 GHz), labelled as estimates. Server CPUs: cores x base clock x FP32 FLOP/cycle of their
// widest FMA path; memory bandwidth = channels x MT/s x 8 bytes.
const std::vector<datasheet_entry> g_datasheets = {
    {"H100 SXM", "gpu", 3.35 * tera, 989.4 * tera, "FP16 tensor, dense", "NVIDIA H100 datasheet (80GB HBM3)"},
    {"H100 PCIe", "gpu", 2.0 * tera, 756.0 * tera, "FP16 tensor, dense", "NVIDIA H100 datasheet (80GB HBM2e)"},
    {"H100 NVL", "gpu", 3.9 * tera, 835.0 * tera, "FP16 tensor, dense", "NVIDIA H100 NVL datasheet (94GB)"},
    {"H200 SXM", "gpu", 4.8 * tera, 989.4 * tera, "FP16 tensor, dense", "NVIDIA H200 datasheet (141GB HBM3e)"},
    {"A100 SXM", "gpu", 2.039 * tera, 312.0 * tera, "FP16 tensor, dense", "NVIDIA A100 datasheet (80GB HBM2e)"},
    {"A100 PCIe", "gpu", 1.935 * tera, 312.0 * tera, "FP16 tensor, dense", "NVIDIA A100 datasheet (80GB HBM2e)"},
    {"A100 40GB", "gpu", 1.555 * tera, 312.0 * tera, "FP16 tensor, dense", "NVIDIA A100 datasheet (40GB HBM2)"},
    {"L40S", "gpu", 864.0 * giga, 362.05 * tera, "FP16 tensor, dense", "NVIDIA L40S datasheet"},
    {"L4", "gpu", 300.0 * giga, 121.0 * tera, "FP16 tensor, dense", "NVIDIA L4 datasheet"},
    {"RTX 4090", "gpu", 1008.0 * giga, 165.2 * tera, "FP16 tensor, FP32 accumulate, dense",
     "NVIDIA Ada Lovelace architecture whitepaper"},
    {"RTX 3090", "gpu", 936.0 * giga, 71.0 * tera, "FP16 tensor, FP32 accumulate, dense",
     "NVIDIA Ampere GA102 whitepaper"},
    {"M1 Pro", "soc", 200.0 * giga, 5.2 * tera, "GPU FP32 (16-core)", "Apple M1 Pro press release, 2021"},
    {"M1 Max", "soc", 400.0 * giga, 10.4 * tera, "GPU FP32 (32-core)", "Apple M1 Max press release, 2021"},
    {"M1 Ultra", "soc", 800.0 * giga, 21.0 * tera, "GPU FP32 (64-core)", "Apple M1 Ultra press release, 2022"},
    {"M2 Pro", "soc", 200.0 * giga, 6.8 * tera, "GPU FP32 (19-core)", "Apple M2 Pro press release, 2023"},
    {"M2 Max", "soc", 400.0 * giga, 13.6 * tera, "GPU FP32 (38-core)", "Apple M2 Max press release, 2023"},
    {"M2 Ultra", "soc", 800.0 * giga, 27.2 * tera, "GPU FP32 (76-core)", "Apple M2 Ultra press release, 2023"},
    {"M3 Pro", "soc", 150.0 * giga, 6.4 * tera, "GPU FP32 (18-core), estimate", "Apple M3 Pro specs; FLOPS estimated"},
    {"M3 Max", "soc", 400.0 * giga, 14.1 * tera, "GPU FP32 (40-core), estimate", "Apple M3 Max specs; FLOPS estimated"},
    {"M3 Ultra", "soc", 819.0 * giga, 28.3 * tera, "GPU FP32 (80-core), estimate",
     "Apple M3 Ultra specs; FLOPS estimated"},
    {"EPYC 9654", "cpu", 460.8 * giga, 7.37 * tera, "FP32 FMA, 96 cores x 2.4 GHz x 32",
     "AMD EPYC 9004 (Genoa): 12 x DDR5-4800"},
    {"EPYC 9754", "cpu", 460.8 * giga, 9.22 * tera, "FP32 FMA, 128 cores x 2.25 GHz x 32",
     "AMD EPYC 9004 (Bergamo): 12 x DDR5-4800"},
    {"EPYC 7763", "cpu", 204.8 * giga, 5.02 * tera, "FP32 FMA, 64 cores x 2.45 GHz x 32",
     "AMD EPYC 7003 (Milan): 8 x DDR4-3200"},
    {"Xeon 8480+", "cpu", 307.2 * giga, 7.17 * tera, "FP32 AVX-512 FMA, 56 cores x 2.0 GHz x 64 (AMX higher)",
     "Intel Xeon Platinum 8480+ (Sapphire Rapids): 8 x DDR5-4800"},
    {"Xeon 6980P", "cpu", 614.4 * giga, 16.4 * tera, "FP32 AVX-512 FMA, 128 cores x 2.0 GHz x 64 (AMX higher)",
     "Intel Xeon 6980P (Granite Rapids): 12 x DDR5-6400"},
    {"Graviton3", "cpu", 307.2 * giga, 5.32 * tera, "FP32 SVE FMA, 64 cores x 2.6 GHz x 32",
     "AWS Graviton3: 8 x DDR5-4800"},
    {"Graviton4", "cpu", 537.6 * giga, 8.6 * tera, "FP32 SVE2 FMA, 96 cores x 2.8 GHz x 32",
     "AWS Graviton4: 12 x DDR5-5600"},
};

std::string squash(const std::string & s) {
    std::string out;
    for (char c : s) {
        if (c == ' ' || c == '-' || c == '_') continue;
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string lower(std::string s) {
    for (auto & c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(const std::string & s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

[[noreturn]] void bad(const std::string & spec, const std::string & why) {
    throw_usage("--device-spec '{}': {} (e.g. \"bw=200GB/s,flops=5.2TF\", or a datasheet name such as \"M1 Pro\"; "
                "`infermeter roofline --list-specs` lists them)",
                spec, why);
}

// Splits "200GB/s" into 200 and "gb/s" (lower case, spaces removed).
std::pair<double, std::string> number_and_unit(const std::string & spec, const std::string & key, const std::string & v) {
    const std::string t = trim(v);
    char * end = nullptr;
    const double x = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || !std::isfinite(x) || x <= 0) bad(spec, fmt::format("{}={} is not a positive number", key, v));
    std::string unit;
    for (const char * p = end; *p; ++p) {
        if (*p != ' ') unit += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    }
    return {x, unit};
}

double si_prefix(char c, bool & ok) {
    ok = true;
    switch (c) {
        case 'k': return 1e3;
        case 'm': return 1e6;
        case 'g': return 1e9;
        case 't': return 1e12;
        case 'p': return 1e15;
        default: ok = false; return 1.0;
    }
}

double parse_bandwidth(const std::string & spec, const std::string & key, const std::string & v) {
    auto [x, unit] = number_and_unit(spec, key, v);
    for (const char * suffix : {"/s", "ps"}) {
        const std::string s = suffix;
        if (unit.size() >= s.size() && unit.compare(unit.size() - s.size(), s.size(), s) == 0) {
            unit.resize(unit.size() - s.size());
            break;
        }
    }
    if (unit.empty() || unit == "b") return x;
    if (unit.back() != 'b') bad(spec, fmt::format("{}={}: unknown unit (B/s, KB/s, MB/s, GB/s, TB/s, GiB/s...)", key, v));
    unit.pop_back();
    bool ok = false;
    if (unit.size() == 2 && unit[1] == 'i') {
        const int power = unit[0] == 'k' ? 1 : unit[0] == 'm' ? 2 : unit[0] == 'g' ? 3 : unit[0] == 't' ? 4 : 0;
        if (power == 0) bad(spec, fmt::format("{}={}: unknown unit", key, v));
        return x * std::pow(1024.0, power);
    }
    const double mult = unit.size() == 1 ? si_prefix(unit[0], ok) : 1.0;
    if (!ok) bad(spec, fmt::format("{}={}: unknown unit (B/s, KB/s, MB/s, GB/s, TB/s, GiB/s...)", key, v));
    return x * mult;
}

double parse_flops(const std::string & spec, const std::string & key, const std::string & v) {
    auto [x, unit] = number_and_unit(spec, key, v);
    if (unit.size() >= 2 && unit.compare(unit.size() - 2, 2, "/s") == 0) unit.resize(unit.size() - 2);
    for (const char * suffix : {"flops", "flop", "f"}) {
        const std::string s = suffix;
        if (unit.size() >= s.size() && unit.compare(unit.size() - s.size(), s.size(), s) == 0) {
            unit.resize(unit.size() - s.size());
            break;
        }
    }
    if (unit.empty()) return x;
    bool ok = false;
    const double mult = unit.size() == 1 ? si_prefix(unit[0], ok) : 1.0;
    if (!ok) bad(spec, fmt::format("{}={}: unknown unit (TF, TFLOPS, GFLOP/s, ...)", key, v));
    return x * mult;
}

double parse_seconds(const std::string & spec, const std::string & key, const std::string & v) {
    auto [x, unit] = number_and_unit(spec, key, v);
    if (unit.empty() || unit == "s") return x;
    if (unit == "ms") return x * 1e-3;
    if (unit == "us" || unit == "\xc2\xb5s") return x * 1e-6;
    if (unit == "ns") return x * 1e-9;
    bad(spec, fmt::format("{}={}: unknown unit (s, ms, us, ns)", key, v));
}

}  // namespace

const std::vector<datasheet_entry> & datasheets() { return g_datasheets; }

std::optional<datasheet_entry> find_datasheet(const std::string & name) {
    const std::string want = squash(name);
    for (const auto & d : g_datasheets) {
        if (squash(d.name) == want) return d;
    }
    return std::nullopt;
}

std::optional<ceilings> parse_device_spec(const std::string & spec) {
    if (trim(spec).empty()) return std::nullopt;
    if (spec.find('=') == std::string::npos) {
        const auto d = find_datasheet(spec);
        if (!d) {
            std::string names;
            for (const auto & e : g_datasheets) names += (names.empty() ? "" : ", ") + e.name;
            throw_usage("--device-spec '{}': no such datasheet entry (known: {}); or give \"bw=...,flops=...\"", spec,
                        names);
        }
        ceilings c;
        c.device = d->name;
        c.mem_bw_bytes_per_s = d->mem_bw_bytes_per_s;
        c.matmul_f16_flops_per_s = d->flops_per_s;
        c.matmul_quant_flops_per_s = d->flops_per_s;
        c.source = "spec:" + d->name;
        return c;
    }
    ceilings c;
    c.source = "user";
    c.device = "user spec";
    double flops = 0.0;
    size_t pos = 0;
    while (pos <= spec.size()) {
        const size_t comma = std::min(spec.find(',', pos), spec.size());
        const std::string item = trim(spec.substr(pos, comma - pos));
        pos = comma + 1;
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        if (eq == std::string::npos) bad(spec, fmt::format("'{}' is not key=value", item));
        const std::string key = lower(trim(item.substr(0, eq)));
        const std::string val = trim(item.substr(eq + 1));
        if (key == "bw" || key == "bandwidth") {
            c.mem_bw_bytes_per_s = parse_bandwidth(spec, key, val);
        } else if (key == "flops" || key == "compute") {
            flops = parse_flops(spec, key, val);
        } else if (key == "f16") {
            c.matmul_f16_flops_per_s = parse_flops(spec, key, val);
        } else if (key == "quant") {
            c.matmul_quant_flops_per_s = parse_flops(spec, key, val);
        } else if (key == "launch") {
            c.launch_overhead_s = parse_seconds(spec, key, val);
        } else if (key == "name") {
            c.device = val;
        } else {
            bad(spec, fmt::format("unknown key '{}' (bw, flops, f16, quant, launch, name)", key));
        }
    }
    if (flops > 0) {
        if (c.matmul_f16_flops_per_s == 0) c.matmul_f16_flops_per_s = flops;
        if (c.matmul_quant_flops_per_s == 0) c.matmul_quant_flops_per_s = flops;
    }
    if (c.matmul_f16_flops_per_s > 0 && c.matmul_quant_flops_per_s == 0) c.matmul_quant_flops_per_s = c.matmul_f16_flops_per_s;
    if (c.matmul_quant_flops_per_s > 0 && c.matmul_f16_flops_per_s == 0) c.matmul_f16_flops_per_s = c.matmul_quant_flops_per_s;
    if (c.mem_bw_bytes_per_s <= 0) bad(spec, "bw= is missing");
    if (c.matmul_f16_flops_per_s <= 0) bad(spec, "flops= is missing");
    // Bounds far outside any device, so that a typo cannot turn every fraction into 0% or "inf%".
    const auto within = [&](double v, double lo, double hi, const char * what, const std::string & range) {
        if (!(v >= lo && v <= hi)) bad(spec, fmt::format("{} {} is outside {}", what, v, range));
    };
    within(c.mem_bw_bytes_per_s, 1e6, 1e16, "bandwidth", "1 MB/s..10 PB/s");
    within(c.matmul_f16_flops_per_s, 1e6, 1e19, "f16 matmul rate", "1 MFLOP/s..10 EFLOP/s");
    within(c.matmul_quant_flops_per_s, 1e6, 1e19, "quantized matmul rate", "1 MFLOP/s..10 EFLOP/s");
    within(c.launch_overhead_s, 0, 1, "launch overhead", "0..1 s");
    if (c.device.size() > 200) bad(spec, "name= is longer than 200 characters");
    return c;
}

std::string format_bytes_per_s(double v) {
    if (v >= 1e12) return fmt::format("{:.2f} TB/s", v / 1e12);
    if (v >= 1e9) return fmt::format("{:.1f} GB/s", v / 1e9);
    if (v >= 1e6) return fmt::format("{:.1f} MB/s", v / 1e6);
    return fmt::format("{:.0f} B/s", v);
}

std::string format_flops_per_s(double v) {
    if (v >= 1e12) return fmt::format("{:.2f} TFLOP/s", v / 1e12);
    if (v >= 1e9) return fmt::format("{:.1f} GFLOP/s", v / 1e9);
    if (v >= 1e6) return fmt::format("{:.1f} MFLOP/s", v / 1e6);
    return fmt::format("{:.0f} FLOP/s", v);
}

}  // namespace im::hardware
