#include "hardware/ceilings.h"

#include <cctype>
#include <cstdint>

namespace im::hardware {

namespace {

std::string lower(std::string s) {
    for (auto & c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

double matmul_ceiling_for(const ceilings & c, const std::string & weight_type_name) {
    const std::string t = lower(weight_type_name);
    const bool is_float = t == "f16" || t == "bf16" || t == "f32";
    if (!is_float && c.matmul_quant_flops_per_s > 0 && lower(c.quant_type) == t) return c.matmul_quant_flops_per_s;
    if (c.matmul_f16_flops_per_s > 0) return c.matmul_f16_flops_per_s;
    return c.matmul_quant_flops_per_s;
}

double matmul_model_rate(const ceilings & c, int n_cols) {
    for (const auto & e : c.matmul_model) {
        if (e.n_cols == n_cols) return e.flops_per_s;
    }
    return 0.0;
}

}  // namespace im::hardware
