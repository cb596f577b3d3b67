#include "model/ref.h"

#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/info.h"
#include "model/quant.h"
#include "model/synth.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace im::model {

std::optional<synth_ref> parse_synth_ref(const std::string & ref) {
    const std::string prefix = "synth:";
    if (ref.rfind(prefix, 0) != 0) {
        return std::nullopt;
    }
    const std::string body = ref.substr(prefix.size());
    if (find_preset(body)) {
        return synth_ref{body, LLAMA_FTYPE_MOSTLY_Q4_K_M, "q4_k_m"};
    }
    const size_t dash = body.rfind('-');
    if (dash != std::string::npos && find_preset(body.substr(0, dash))) {
        const std::string quant = body.substr(dash + 1);
        if (auto ft = ftype_from_name(quant)) {
            return synth_ref{body.substr(0, dash), *ft, ftype_id(*ft)};
        }
        throw_usage("-m {}: unknown quantization '{}' (one of: {})", ref, quant, fmt::join(ftype_names(), ", "));
    }
    throw_usage("-m {}: unknown preset '{}' (presets: {})", ref, body, fmt::join(preset_names(), ", "));
}

std::filesystem::path synth_cache_path(const synth_ref & r) {
    return fs::cache_dir() / "models" / (r.preset + "-" + r.quant + ".gguf");
}

std::filesystem::path resolve(const std::string & ref) {
    if (auto sr = parse_synth_ref(ref)) {
        const std::filesystem::path path = synth_cache_path(*sr);
        std::error_code ec;
        if (std::filesystem::is_regular_file(path, ec)) {
            // A cache file cut short (disk full, a killed synthesis from an older version) or damaged
            // is made again rather than failing every command that names it.
            try {
                read_info(path);
                return path;
            } catch (const error & e) {
                log::warn("the cached {} is damaged ({}); synthesizing it again", path.string(), e.what());
                std::filesystem::remove(path, ec);
            }
        } else if (std::filesystem::exists(path, ec)) {
            throw_runtime("the synth cache path {} exists but is not a file; move it away", path.string());
        }
        log::info("synthesizing {} (first use; cached at {})", ref, path.string());
        synth_options opts;
        opts.s = *find_preset(sr->preset);
        opts.ftype = sr->ftype;
        opts.out = path;
        opts.out_hint = "the synth: model cache; set XDG_CACHE_HOME to a writable folder";
        const synth_result res = synthesize(opts);
        log::info("synthesized {} in {}", path.string(), fmtx::duration(res.seconds));
        return path;
    }
    if (ref.empty()) {
        throw_usage("-m: no model given (a .gguf path or synth:PRESET, e.g. synth:tiny)");
    }
    std::error_code ec;
    if (std::filesystem::is_directory(ref, ec)) {
        throw_runtime("-m {} is a directory; give the .gguf file inside it (or synth:PRESET, e.g. synth:tiny)", ref);
    }
    if (!std::filesystem::exists(ref, ec)) {
        throw_runtime("model file {} not found (-m takes a .gguf path or synth:PRESET, e.g. synth:tiny)", ref);
    }
    if (!std::filesystem::is_regular_file(ref, ec)) {
        throw_runtime("-m {} is not a regular file (a device, FIFO or socket); give a .gguf file", ref);
    }
    return ref;
}

}  // namespace im::model
