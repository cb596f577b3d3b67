#include "model/quant.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace im::model {

static const std::vector<std::pair<const char *, llama_ftype>> & table() {
    static const std::vector<std::pair<const char *, llama_ftype>> t = {
        {"F32", LLAMA_FTYPE_ALL_F32},         {"F16", LLAMA_FTYPE_MOSTLY_F16},       {"BF16", LLAMA_FTYPE_MOSTLY_BF16},
        {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},    {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},     {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},
        {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},    {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},     {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},
        {"Q2_K_S", LLAMA_FTYPE_MOSTLY_Q2_K_S}, {"Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S}, {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M},
        {"Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L}, {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
        {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S}, {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},
        {"IQ4_NL", LLAMA_FTYPE_MOSTLY_IQ4_NL}, {"IQ4_XS", LLAMA_FTYPE_MOSTLY_IQ4_XS}, {"TQ1_0", LLAMA_FTYPE_MOSTLY_TQ1_0},
        {"TQ2_0", LLAMA_FTYPE_MOSTLY_TQ2_0},
    };
    return t;
}

std::optional<llama_ftype> ftype_from_name(const std::string & name) {
    std::string upper = name;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    for (const auto & [n, t] : table()) {
        if (upper == n) {
            return t;
        }
    }
    return std::nullopt;
}

std::string ftype_name(int ftype) {
    for (const auto & [n, t] : table()) {
        if (static_cast<int>(t) == ftype) {
            return n;
        }
    }
    return "unknown(" + std::to_string(ftype) + ")";
}

std::string ftype_id(int ftype) {
    std::string lower = ftype_name(ftype);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    return lower;
}

std::vector<std::string> ftype_names() {
    std::vector<std::string> out;
    for (const auto & [n, t] : table()) out.push_back(ftype_id(t));
    return out;
}

}  // namespace im::model
