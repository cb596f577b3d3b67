#pragma once

#include "hardware/ceilings.h"

#include <optional>
#include <string>
#include <vector>

// Datasheet ceilings of well-known devices, for display and for analyzing numbers measured on a
// machine that is not this one (--device-spec). Never used in place of a measurement silently.
namespace im::hardware {

struct datasheet_entry {
    std::string name;            // "H100 SXM", "M1 Pro", ...; matched case-insensitively by --device-spec
    std::string kind;            // "gpu" | "soc" | "cpu"
    double mem_bw_bytes_per_s;   // peak memory bandwidth
    double flops_per_s;          // peak dense matmul rate of the path llama.cpp uses (see `flops_note`)
    std::string flops_note;      // what the number is, e.g. "FP16 tensor, dense", "FP32 (Apple)"
    std::string source;          // where the numbers come from
};

// The reference table (DESIGN §2.4), in display order.
const std::vector<datasheet_entry> & datasheets();

// The entry whose name matches `name` case-insensitively, ignoring spaces, '-' and '_'.
std::optional<datasheet_entry> find_datasheet(const std::string & name);

// Ceilings from a user's --device-spec: a datasheet name ("M1 Pro" -> source "spec:M1 Pro"), or
// comma-separated key=value pairs (source "user"):
//   bw=200GB/s (B/s, KB/s, MB/s, GB/s, TB/s, KiB/s, MiB/s, GiB/s, TiB/s; a bare number is B/s)
//   flops=5.2TF (F, KF, MF, GF, TF, PF with optional "LOPS" or "LOP/s"; sets f16 and quant alike)
//   f16=..., quant=... (separately), launch=20us (s, ms, us, ns), name=TEXT
// Empty `spec` -> nullopt. Throws a usage error naming --device-spec for anything else it cannot read,
// and when bw or flops is missing.
std::optional<ceilings> parse_device_spec(const std::string & spec);

// "200 GB/s" style (decimal units) for bandwidth; "5.20 TFLOP/s" for rates.
std::string format_bytes_per_s(double bytes_per_s);
std::string format_flops_per_s(double flops_per_s);

}  // namespace im::hardware
