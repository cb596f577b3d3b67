#pragma once

#include "model/preset.h"

#include "llama.h"

#include <filesystem>
#include <optional>
#include <string>

namespace im::model {

// A parsed "synth:PRESET[-QUANT]" model reference, e.g. synth:qwen2-1.5b-q4_k_m.
struct synth_ref {
    std::string preset;
    llama_ftype ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
    std::string quant;  // lower-case file type name
};

// Empty when `ref` does not start with "synth:"; throws a usage error for an unknown preset/quant.
std::optional<synth_ref> parse_synth_ref(const std::string & ref);

// Cached location of a synthesized model: ~/.cache/infermeter/models/<preset>-<quant>.gguf.
std::filesystem::path synth_cache_path(const synth_ref & r);

// Turns what the user passed to -m into a GGUF path: a path is checked to exist; a synth: reference
// is synthesized on first use (logged) and cached. Throws a runtime error naming the input.
std::filesystem::path resolve(const std::string & ref);

}  // namespace im::model
