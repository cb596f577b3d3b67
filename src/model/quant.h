#pragma once

#include "llama.h"

#include <optional>
#include <string>
#include <vector>

namespace im::model {

// llama.cpp file types by the names llama-quantize uses ("q4_k_m", "Q8_0", "f16"; case-insensitive).
std::optional<llama_ftype> ftype_from_name(const std::string & name);
// "Q4_K_M" for LLAMA_FTYPE_MOSTLY_Q4_K_M; "unknown(N)" for values this table does not know.
std::string ftype_name(int ftype);
// The lower-case name used in file names and synth: references, e.g. "q4_k_m".
std::string ftype_id(int ftype);
// Names accepted by --quant, lower case.
std::vector<std::string> ftype_names();

}  // namespace im::model
