#include "hardware/roofline.h"

#include "core/error.h"
#include "core/format.h"
#include "hardware/specs.h"
#include "model/quant.h"

#include "llama.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

namespace im::hardware {

namespace {

std::string trim(const std::string & s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string mb(double bytes) { return fmt::format("{} MB", fmtx::thousands(bytes / 1e6, 1)); }
std::string gflop(double flops) { return fmt::format("{} GFLOP", fmtx::thousands(flops / 1e9, 2)); }
std::string tps(double t) { return fmtx::thousands(t, t >= 100 ? 0 : 2); }
std::string pct(double f) { return fmtx::percent(f, f < 0.1 ? 1 : 0); }

// What a step spends time on besides traffic and arithmetic, in words that fit the backend: a CPU
// backend launches no kernels (its per-step cost is thread synchronization and scheduling).
std::string overhead_causes(const ceilings & ceil) {
    return ceil.backend == "CPU" ? "thread synchronization, scheduling, or kernels far from peak"
                                 : "kernel launches, synchronization, scheduling, or kernels far from peak";
}

// Q·K^T and A·V: 2 FLOPs per multiply-add, over head_dim_k and head_dim_v, per head, per layer.
double attn_flops_per_position(const model_cost & c) {
    return 4.0 * static_cast<double>(c.n_layer) * static_cast<double>(c.attn_width);
}

double kv_bytes_at(const model_cost & c, int workers, double depth) {
    return static_cast<double>(workers) * depth * static_cast<double>(c.kv_bytes_per_token);
}

// Workers at which a decode step turns from bandwidth- to compute-limited on this roof, or 0 when
// it never does (attention traffic per token grows faster than its arithmetic).
double compute_crossover_workers(const model_cost & c, const ceilings & ceil, double depth) {
    const double f = matmul_ceiling_for(ceil, c.weight_type);
    const double per_worker_compute_s = decode_step_flops(c, 1, depth) / f;
    const double per_worker_kv_s = kv_bytes_at(c, 1, depth) / ceil.mem_bw_bytes_per_s;
    if (per_worker_compute_s <= per_worker_kv_s) return 0.0;
    return (static_cast<double>(c.weight_bytes_per_step) / ceil.mem_bw_bytes_per_s) /
           (per_worker_compute_s - per_worker_kv_s);
}

}  // namespace

ggml_type weight_type_of_ftype(int file_type) {
    switch (file_type) {
        case LLAMA_FTYPE_ALL_F32:        return GGML_TYPE_F32;
        case LLAMA_FTYPE_MOSTLY_F16:     return GGML_TYPE_F16;
        case LLAMA_FTYPE_MOSTLY_BF16:    return GGML_TYPE_BF16;
        case LLAMA_FTYPE_MOSTLY_Q4_0:    return GGML_TYPE_Q4_0;
        case LLAMA_FTYPE_MOSTLY_Q4_1:    return GGML_TYPE_Q4_1;
        case LLAMA_FTYPE_MOSTLY_Q5_0:    return GGML_TYPE_Q5_0;
        case LLAMA_FTYPE_MOSTLY_Q5_1:    return GGML_TYPE_Q5_1;
        case LLAMA_FTYPE_MOSTLY_Q8_0:    return GGML_TYPE_Q8_0;
        case LLAMA_FTYPE_MOSTLY_Q2_K:
        case LLAMA_FTYPE_MOSTLY_Q2_K_S:  return GGML_TYPE_Q2_K;
        case LLAMA_FTYPE_MOSTLY_Q3_K_S:
        case LLAMA_FTYPE_MOSTLY_Q3_K_M:
        case LLAMA_FTYPE_MOSTLY_Q3_K_L:  return GGML_TYPE_Q3_K;
        case LLAMA_FTYPE_MOSTLY_Q4_K_S:
        case LLAMA_FTYPE_MOSTLY_Q4_K_M:  return GGML_TYPE_Q4_K;
        case LLAMA_FTYPE_MOSTLY_Q5_K_S:
        case LLAMA_FTYPE_MOSTLY_Q5_K_M:  return GGML_TYPE_Q5_K;
        case LLAMA_FTYPE_MOSTLY_Q6_K:    return GGML_TYPE_Q6_K;
        case LLAMA_FTYPE_MOSTLY_IQ4_NL:  return GGML_TYPE_IQ4_NL;
        case LLAMA_FTYPE_MOSTLY_IQ4_XS:  return GGML_TYPE_IQ4_XS;
        case LLAMA_FTYPE_MOSTLY_IQ2_XXS: return GGML_TYPE_IQ2_XXS;
        case LLAMA_FTYPE_MOSTLY_IQ2_XS:  return GGML_TYPE_IQ2_XS;
        case LLAMA_FTYPE_MOSTLY_IQ3_XXS: return GGML_TYPE_IQ3_XXS;
        default:                         return GGML_TYPE_COUNT;
    }
}

model_cost cost_of(const model::info & m, ggml_type type_k, ggml_type type_v) {
    model_cost c;
    c.model = m.description();
    const ggml_type wt = weight_type_of_ftype(m.file_type);
    c.weight_type = wt == GGML_TYPE_COUNT ? "unknown" : ggml_type_name(wt);
    c.n_params = m.n_params;
    const uint64_t embd_params = static_cast<uint64_t>(m.n_vocab) * static_cast<uint64_t>(m.n_embd);
    c.weight_bytes_per_step = m.size_bytes;
    c.matmul_params = m.n_params;
    if (!m.tied_embeddings && embd_params < m.n_params) {
        // Untied: token_embd is gathered (W rows per step), not streamed, and does no matmul; its
        // bytes are estimated at the model's average bytes per parameter (model::info has no per-tensor sizes).
        c.matmul_params = m.n_params - embd_params;
        c.weight_bytes_per_step = m.size_bytes - static_cast<uint64_t>(static_cast<double>(m.size_bytes) *
                                                                       static_cast<double>(embd_params) /
                                                                       static_cast<double>(m.n_params));
    }
    c.kv_bytes_per_token = model::kv_bytes_per_token(m, type_k, type_v);
    c.n_layer = m.n_layer;
    c.attn_width = m.n_head * (m.head_dim_k + m.head_dim_v) / 2;
    c.type_k = ggml_type_name(type_k);
    c.type_v = ggml_type_name(type_v);
    return c;
}

double decode_step_bytes(const model_cost & c, int workers, double mean_depth_tokens) {
    return static_cast<double>(c.weight_bytes_per_step) + kv_bytes_at(c, workers, mean_depth_tokens);
}

double decode_step_flops(const model_cost & c, int workers, double mean_depth_tokens) {
    return static_cast<double>(workers) *
           (2.0 * static_cast<double>(c.matmul_params) + attn_flops_per_position(c) * mean_depth_tokens);
}

double prefill_flops(const model_cost & c, int n_prompt, int workers) {
    const double n = n_prompt;
    return static_cast<double>(workers) *
           (2.0 * static_cast<double>(c.matmul_params) * n + attn_flops_per_position(c) * n * (n - 1.0) / 2.0);
}

double prefill_bytes(const model_cost & c, int n_prompt, int workers, int n_ubatch) {
    const double tokens = static_cast<double>(workers) * n_prompt;
    const double n_passes = std::ceil(tokens / std::max(1, n_ubatch));
    return static_cast<double>(c.weight_bytes_per_step) * n_passes + tokens * static_cast<double>(c.kv_bytes_per_token);
}

int prefill_ubatch_tokens(const observation & o) {
    const int64_t tokens = static_cast<int64_t>(std::max(1, o.workers)) * std::max(1, o.n_prompt);
    return static_cast<int>(std::min<int64_t>(std::max(1, o.n_ubatch), tokens));
}

std::string fraction_of_ceiling(double fraction, const std::string & ceiling) {
    if (fraction > 1.0) return fmt::format("above the {} ceiling", ceiling);
    return pct(fraction);
}

bool has_kernel_launches(const ceilings & c) { return !c.backend.empty() && c.backend != "CPU"; }

double ideal_decode_tokens_per_s(const model_cost & c, const ceilings & ceil, int workers, double mean_depth_tokens) {
    const double bw_s = decode_step_bytes(c, workers, mean_depth_tokens) / ceil.mem_bw_bytes_per_s;
    const double fl_s = decode_step_flops(c, workers, mean_depth_tokens) / matmul_ceiling_for(ceil, c.weight_type);
    return static_cast<double>(workers) / std::max(bw_s, fl_s);
}

std::vector<observation> parse_observation(const std::string & text, int default_n_ubatch) {
    int workers = 1;
    double gen_tps = 0, pp_tps = 0, depth = -1;
    int n_prompt = 0, n_gen = 0, n_ubatch = default_n_ubatch;
    size_t pos = 0;
    auto bad = [&](const std::string & why) {
        throw_usage("--observed '{}': {} (e.g. \"workers=8,gen_tps=181.59,depth=2176\" or "
                    "\"workers=8,pp_tps=1319.9,n_prompt=128\")",
                    text, why);
    };
    auto number = [&](const std::string & key, const std::string & v) {
        char * end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0) bad(fmt::format("{}={} is not a number >= 0", key, v));
        return x;
    };
    auto integer = [&](const std::string & key, const std::string & v) {
        const double x = number(key, v);
        if (x != std::floor(x) || x > 1e9) bad(fmt::format("{}={} is not a whole number", key, v));
        return static_cast<int>(x);
    };
    while (pos <= text.size()) {
        const size_t comma = std::min(text.find(',', pos), text.size());
        const std::string item = trim(text.substr(pos, comma - pos));
        pos = comma + 1;
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        if (eq == std::string::npos) bad(fmt::format("'{}' is not key=value", item));
        std::string key = trim(item.substr(0, eq));
        for (auto & ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const std::string v = trim(item.substr(eq + 1));
        if (key == "workers" || key == "w") workers = integer(key, v);
        else if (key == "gen_tps" || key == "tg_tps") gen_tps = number(key, v);
        else if (key == "pp_tps" || key == "prompt_tps") pp_tps = number(key, v);
        else if (key == "depth") depth = number(key, v);
        else if (key == "n_prompt" || key == "p") n_prompt = integer(key, v);
        else if (key == "n_gen" || key == "n") n_gen = integer(key, v);
        else if (key == "n_ubatch" || key == "ub") n_ubatch = integer(key, v);
        else bad(fmt::format("unknown key '{}' (workers, gen_tps, pp_tps, depth, n_prompt, n_gen, n_ubatch)", key));
    }
    if (workers < 1 || workers > 65536) bad("workers must be 1..65536");
    // Bounds far outside any measurement, so that a typo cannot print "inf%" or overflow the curve.
    if (gen_tps > 1e9 || pp_tps > 1e9) bad("tokens per second above 1e9");
    if (depth > 1e8) bad("depth above 100,000,000 tokens");
    if (n_prompt > 100'000'000 || n_gen > 100'000'000) bad("n_prompt/n_gen above 100,000,000 tokens");
    if (n_ubatch < 1) bad("n_ubatch must be >= 1");
    if (gen_tps <= 0 && pp_tps <= 0) bad("give gen_tps= (decode) or pp_tps= (prefill), > 0");
    std::vector<observation> out;
    if (gen_tps > 0) {
        observation o;
        o.phase = "decode";
        o.workers = workers;
        o.tokens_per_s = gen_tps;
        o.n_prompt = n_prompt;
        // Decode of n_gen tokens after an n_prompt prompt sees depths n_prompt .. n_prompt + n_gen - 1.
        o.mean_depth_tokens = depth >= 0 ? depth : n_prompt + n_gen / 2.0;
        out.push_back(o);
    }
    if (pp_tps > 0) {
        if (n_prompt <= 0) bad("pp_tps needs n_prompt= (prompt tokens per sequence)");
        observation o;
        o.phase = "prefill";
        o.workers = workers;
        o.tokens_per_s = pp_tps;
        o.n_prompt = n_prompt;
        o.n_ubatch = n_ubatch;
        out.push_back(o);
    }
    return out;
}

const char * bound_name(bound b) {
    switch (b) {
        case bound::bandwidth: return "bandwidth-bound";
        case bound::compute:   return "compute-bound";
        case bound::kernel:    return "kernel-bound";
        case bound::overhead:  return "overhead-bound";
    }
    return "?";
}

verdict classify(const model_cost & c, const ceilings & ceil, const observation & obs) {
    if (obs.tokens_per_s <= 0 || obs.workers < 1) {
        throw_usage("observation of {} at W={} has no throughput to classify", obs.phase, obs.workers);
    }
    const bool decode = obs.phase != "prefill";
    // The rate probed at the model's own shapes for this phase's N (decode: W columns; prefill: one
    // micro-batch) when there is one, else the generic probe's rate for the weight type.
    const int n_cols = decode ? obs.workers : prefill_ubatch_tokens(obs);
    const double f_model = matmul_model_rate(ceil, n_cols);
    const double f_ceiling = f_model > 0 ? f_model : matmul_ceiling_for(ceil, c.weight_type);
    if (ceil.mem_bw_bytes_per_s <= 0 || f_ceiling <= 0) {
        throw_runtime("roofline: the ceilings of {} lack bandwidth or matmul rate; pass --device-spec", ceil.device);
    }
    verdict v;
    v.obs = obs;
    v.matmul_ceiling_flops_per_s = f_ceiling;
    v.matmul_ceiling = f_model > 0 ? fmt::format("matmul (model's shapes, N = {})", n_cols)
                       : ceil.source == "measured"
                           ? fmt::format("matmul ({})", matmul_ceiling_for(ceil, c.weight_type) ==
                                                                ceil.matmul_quant_flops_per_s && ceil.matmul_quant_flops_per_s > 0
                                                            ? ceil.quant_type + " probe shape"
                                                            : std::string("f16 probe shape"))
                           : std::string("matmul");
    const double tokens = decode ? obs.workers : static_cast<double>(obs.workers) * obs.n_prompt;
    if (!decode && obs.n_prompt <= 0) throw_usage("prefill observation at W={} needs n_prompt", obs.workers);
    v.step_s = tokens / obs.tokens_per_s;
    v.bytes_per_step = decode ? decode_step_bytes(c, obs.workers, obs.mean_depth_tokens)
                              : prefill_bytes(c, obs.n_prompt, obs.workers, obs.n_ubatch);
    v.flops_per_step = decode ? decode_step_flops(c, obs.workers, obs.mean_depth_tokens)
                              : prefill_flops(c, obs.n_prompt, obs.workers);
    v.achieved_bw_bytes_per_s = v.bytes_per_step / v.step_s;
    v.achieved_flops_per_s = v.flops_per_step / v.step_s;
    v.bw_fraction = v.achieved_bw_bytes_per_s / ceil.mem_bw_bytes_per_s;
    v.flops_fraction = v.achieved_flops_per_s / f_ceiling;
    const double bw_s = v.bytes_per_step / ceil.mem_bw_bytes_per_s;
    const double fl_s = v.flops_per_step / f_ceiling;
    v.roof_step_s = std::max(bw_s, fl_s);
    v.unexplained_s = v.step_s - v.roof_step_s;
    v.ideal_tokens_per_s = tokens / v.roof_step_s;
    // Near the model-shape rate at this N, but that rate itself far below the device's large-matmul
    // rate: the kernels at this batch size are the limit, not the device (H200, W = 1..32: 75-87% of a
    // rate that is 1-12% of the 181 TFLOP/s q4_K peak). More columns run the same kernels closer to peak.
    const double f_peak = matmul_ceiling_for(ceil, c.weight_type);
    const bool kernel_limited = f_model > 0 && f_peak > 0 && f_model < bound_threshold * f_peak;
    // The weight bandwidth the model-shape probe itself streamed at this N (bytes per weight / (2·N)
    // FLOPs): at N = 1 on a CPU that rate is the memory's (2-core VM: 72 GFLOP/s = 23 GB/s of q4_K
    // weights), so a decode near it is bandwidth-bound through the kernel, not compute-bound.
    const double weight_bytes_per_flop =
        c.matmul_params > 0 ? static_cast<double>(c.weight_bytes_per_step) / (2.0 * static_cast<double>(c.matmul_params) * n_cols) : 0;
    v.kernel_bw_fraction = f_model > 0 ? f_model * weight_bytes_per_flop / ceil.mem_bw_bytes_per_s : 0;
    if (v.bw_fraction >= bound_threshold || v.flops_fraction >= bound_threshold) {
        if (v.bw_fraction >= v.flops_fraction) v.kind = bound::bandwidth;
        else if (decode && v.kernel_bw_fraction >= bound_threshold) v.kind = bound::bandwidth;
        else v.kind = kernel_limited ? bound::kernel : bound::compute;
    } else {
        v.kind = bound::overhead;
    }

    const std::string where = decode ? fmt::format("Decode at W={} (mean depth {} tokens)", obs.workers,
                                                   fmtx::thousands(obs.mean_depth_tokens, 0))
                                     : fmt::format("Prefill at W={} ({} prompt tokens each)", obs.workers, obs.n_prompt);
    if (decode) {
        const double kv = kv_bytes_at(c, obs.workers, obs.mean_depth_tokens);
        v.sentences.push_back(fmt::format(
            "{}: each step reads {} of weights + {} of KV cache ({} x {} x {} B) = {} and does {}; at {} t/s a step "
            "takes {} ms.",
            where, mb(static_cast<double>(c.weight_bytes_per_step)), mb(kv), obs.workers,
            fmtx::thousands(obs.mean_depth_tokens, 0), fmtx::thousands(static_cast<int64_t>(c.kv_bytes_per_token)),
            mb(v.bytes_per_step), gflop(v.flops_per_step), fmtx::thousands(obs.tokens_per_s, 2),
            fmtx::thousands(v.step_s * 1e3, 2)));
    } else {
        v.sentences.push_back(fmt::format("{}: {} tokens take {} ms, {} and about {} of traffic (weights once per "
                                          "{}-token micro-batch, -ub {}).",
                                          where, fmtx::thousands(tokens, 0), fmtx::thousands(v.step_s * 1e3, 2),
                                          gflop(v.flops_per_step), mb(v.bytes_per_step), prefill_ubatch_tokens(obs),
                                          obs.n_ubatch));
    }
    const std::string mm_words = v.matmul_ceiling == "matmul" ? "matmul" : v.matmul_ceiling;
    // "X = 45% of the R name ceiling", or "X, above the R name ceiling" (never a percentage > 100%).
    const auto share = [](const std::string & achieved, double fraction, const std::string & roof, const std::string & name) {
        return fraction > 1.0 ? fmt::format("{}, above the {} {} ceiling", achieved, roof, name)
                              : fmt::format("{} = {} of the {} {} ceiling", achieved, pct(fraction), roof, name);
    };
    v.sentences.push_back(fmt::format(
        "That is {}, and {} ({}).",
        share(format_bytes_per_s(v.achieved_bw_bytes_per_s), v.bw_fraction, format_bytes_per_s(ceil.mem_bw_bytes_per_s),
              "bandwidth"),
        share(format_flops_per_s(v.achieved_flops_per_s), v.flops_fraction, format_flops_per_s(f_ceiling), mm_words),
        ceil.source == "measured" ? "measured here" : ceil.source));
    const double headroom = v.ideal_tokens_per_s / obs.tokens_per_s;
    switch (v.kind) {
        case bound::bandwidth:
            if (v.flops_fraction > v.bw_fraction) {
                // Bandwidth-bound through the matmul kernel: it streams the weights slower than the probe's
                // STREAM-like copy, and the step runs near that kernel's own rate.
                v.sentences.push_back(fmt::format(
                    "Bandwidth-bound through the matmul kernel: the matmuls run {} of the rate ggml's kernels reach "
                    "on this model's shapes with N = {} columns, and at that rate they stream the weights at {} of "
                    "the bandwidth ceiling. More sequences sharing each weight read raise throughput; faster memory "
                    "or a smaller quant type raise it per sequence.",
                    v.flops_fraction > 1.0 ? std::string("above") : fmt::format("at {}", pct(v.flops_fraction)), n_cols,
                    pct(v.kernel_bw_fraction)));
                break;
            }
            v.sentences.push_back(fmt::format(
                "Bandwidth-bound: memory traffic runs {} (>= {}). Only less traffic per step "
                "(more sequences sharing each weight read, a smaller quant type, a quantized KV cache) or faster "
                "memory raises throughput.",
                v.bw_fraction > 1.0 ? std::string("above the ceiling")
                                    : fmt::format("at {} of the ceiling", pct(v.bw_fraction)),
                pct(bound_threshold)));
            break;
        case bound::compute:
            v.sentences.push_back(fmt::format(
                "Compute-bound: matmul runs {} (>= {}); more workers cannot add throughput "
                "on this device.",
                v.flops_fraction > 1.0 ? std::string("above the ceiling")
                                       : fmt::format("at {} of the ceiling", pct(v.flops_fraction)),
                pct(bound_threshold)));
            break;
        case bound::kernel:
            v.sentences.push_back(fmt::format(
                "Kernel-bound at this batch: the matmuls run {} of what ggml's kernels reach on this model's shapes "
                "with N = {} columns, and that rate is only {} of the device's large-matmul rate ({}). The device is not "
                "full: more columns per step (more workers, a larger micro-batch) run the same kernels closer to peak.",
                v.flops_fraction > 1.0 ? std::string("above") : fmt::format("at {}", pct(v.flops_fraction)), n_cols,
                pct(f_ceiling / f_peak), format_flops_per_s(f_peak)));
            break;
        case bound::overhead: {
            std::string s = fmt::format(
                "Overhead-bound: bandwidth ({}) and compute ({}) are both under {} of their ceilings. The roofline "
                "allows {} t/s here ({}x the measured rate); {} ms of each {} ms step are spent on neither memory "
                "traffic nor arithmetic: {}.",
                pct(v.bw_fraction), pct(v.flops_fraction), pct(bound_threshold), tps(v.ideal_tokens_per_s),
                fmtx::thousands(headroom, 1), fmtx::thousands(v.unexplained_s * 1e3, 2),
                fmtx::thousands(v.step_s * 1e3, 2), overhead_causes(ceil));
            // Only a backend that launches kernels has a launch cost to count the gap in.
            if (ceil.launch_overhead_s > 0 && has_kernel_launches(ceil)) {
                s += fmt::format(" (One trivial graph costs {} us to launch and synchronize on {}; the gap equals {} "
                                 "of those.)",
                                 fmtx::thousands(ceil.launch_overhead_s * 1e6, 1), ceil.device,
                                 fmtx::thousands(v.unexplained_s / ceil.launch_overhead_s, 0));
            }
            v.sentences.push_back(s);
            break;
        }
    }
    // A phase cannot run faster than the hardware: a fraction above 1 says the ceiling is wrong.
    const auto exceeded = [&](const std::string & name, const std::string & achieved, const std::string & roof) {
        v.sentences.push_back(fmt::format(
            "The measured {} ({}) exceeds the {} ceiling ({}): that ceiling is wrong, not the measurement (probed "
            "under load, or the engine runs a faster kernel than the probe); run again with --reprobe on an idle "
            "machine or pass --device-spec.",
            decode ? "decode" : "prefill", achieved, name, roof));
    };
    if (v.bw_fraction > 1.0) {
        exceeded("bandwidth", format_bytes_per_s(v.achieved_bw_bytes_per_s), format_bytes_per_s(ceil.mem_bw_bytes_per_s));
    }
    if (v.flops_fraction > 1.0) {
        exceeded(mm_words, format_flops_per_s(v.achieved_flops_per_s), format_flops_per_s(f_ceiling));
    }
    if (decode && v.flops_fraction < bound_threshold) {
        v.sentences.push_back(fmt::format(
            "Not a compute ceiling: compute-bound decode would need {} of the matmul ceiling; this run uses {}.",
            pct(bound_threshold), fraction_of_ceiling(v.flops_fraction, mm_words)));
    }
    return v;
}

roofline_report make_report(const system_info & sys, const ceilings & ceil, const model_cost & c,
                            const std::vector<observation> & observations, const std::vector<int> & curve_workers,
                            double curve_depth_tokens) {
    roofline_report r;
    r.system = sys;
    r.ceil = ceil;
    r.cost = c;
    r.curve_depth_tokens = curve_depth_tokens;
    for (const auto & o : observations) r.verdicts.push_back(classify(c, ceil, o));
    std::set<int> ws(curve_workers.begin(), curve_workers.end());
    for (const auto & o : observations) {
        if (o.phase == "decode") ws.insert(o.workers);
    }
    for (int w : ws) {
        if (w >= 1) r.ideal_curve.emplace_back(w, ideal_decode_tokens_per_s(c, ceil, w, curve_depth_tokens));
    }

    const double f = matmul_ceiling_for(ceil, c.weight_type);
    const double w1 = ideal_decode_tokens_per_s(c, ceil, 1, curve_depth_tokens);
    r.summary.push_back(fmt::format(
        "On this roof ({} bandwidth, {} matmul) a single sequence at depth {} can decode at most {} t/s: every step "
        "streams all {} of weights for one token.",
        format_bytes_per_s(ceil.mem_bw_bytes_per_s), format_flops_per_s(f), fmtx::thousands(curve_depth_tokens, 0),
        tps(w1), mb(static_cast<double>(c.weight_bytes_per_step))));
    const double cross = compute_crossover_workers(c, ceil, curve_depth_tokens);
    if (cross > 0 && cross < 1) {
        r.summary.push_back("Even at W = 1 a decode step needs more time for its arithmetic than for its memory "
                            "traffic on this roof: decode is compute-limited at every W.");
    } else if (cross > 0) {
        r.summary.push_back(fmt::format(
            "Sequences decoded together share each weight read, so ideal throughput grows almost linearly with W "
            "until compute takes over at about W = {} (for a KV depth of {} tokens per sequence; the crossover moves "
            "with depth).",
            fmtx::thousands(cross, cross < 10 ? 1 : 0), fmtx::thousands(curve_depth_tokens, 0)));
    } else {
        r.summary.push_back("At this depth the KV cache traffic per sequence costs more time than its arithmetic: "
                            "decode stays bandwidth-limited at every W.");
    }

    std::vector<const verdict *> dec;
    for (const auto & v : r.verdicts) {
        if (v.obs.phase == "decode") dec.push_back(&v);
    }
    if (!dec.empty()) {
        std::string rows;
        double max_bw = 0, max_fl = 0;
        bool all_overhead = true;
        for (const auto * v : dec) {
            rows += fmt::format("{}W={}: {} ({}, {})", rows.empty() ? "" : "; ", v->obs.workers, bound_name(v->kind),
                                v->bw_fraction > 1.0 ? std::string("above the bandwidth ceiling")
                                                     : pct(v->bw_fraction) + " BW",
                                v->flops_fraction > 1.0 ? fmt::format("above the {} ceiling", v->matmul_ceiling)
                                                        : pct(v->flops_fraction) + " compute");
            max_bw = std::max(max_bw, v->bw_fraction);
            max_fl = std::max(max_fl, v->flops_fraction);
            all_overhead = all_overhead && v->kind == bound::overhead;
        }
        r.summary.push_back("Measured decode: " + rows + ".");
        if (all_overhead) {
            bool rising = dec.size() >= 2;
            for (size_t i = 1; i < dec.size(); ++i) {
                rising = rising && dec[i]->obs.workers > dec[i - 1]->obs.workers &&
                         dec[i]->obs.tokens_per_s > dec[i - 1]->obs.tokens_per_s;
            }
            r.summary.push_back(fmt::format(
                "The data contradict a \"compute ceiling\" explanation: no measured decode row uses more than {} of "
                "the matmul ceiling or {} of the bandwidth ceiling. Decode is limited by per-step overhead ({}) and "
                "kernels running far from peak, not by the hardware's ceilings{}",
                pct(max_fl), pct(max_bw),
                ceil.backend == "CPU" ? "thread synchronization, scheduling" : "launches, synchronization, scheduling",
                rising ? "; more workers amortize that per-step cost, which is why throughput still rises with W."
                       : "."));
        }
        const verdict & last = *dec.back();
        const double kv = kv_bytes_at(c, last.obs.workers, last.obs.mean_depth_tokens);
        if (kv > 0) {
            r.summary.push_back(fmt::format(
                "Counting only the KV cache ({}) as the traffic of a W={} step, as a KV-only estimate does, understates "
                "it {}x: the {} of weights are read every step too.",
                mb(kv), last.obs.workers, fmtx::thousands(last.bytes_per_step / kv, 1),
                mb(static_cast<double>(c.weight_bytes_per_step))));
        }
    }
    return r;
}

nlohmann::ordered_json to_json(const roofline_report & r) {
    nlohmann::ordered_json j;
    j["schema_version"] = 1;
    auto & s = j["system"];
    s["cpu_model"] = r.system.cpu_model;
    s["n_cores"] = r.system.n_cores;
    s["n_threads"] = r.system.n_threads;
    s["l1d_bytes"] = r.system.l1d_bytes;
    s["l2_bytes"] = r.system.l2_bytes;
    s["l3_bytes"] = r.system.l3_bytes;
    s["memory_total_bytes"] = r.system.memory_total_bytes;
    s["os"] = r.system.os;
    s["devices"] = nlohmann::ordered_json::array();
    for (const auto & d : r.system.devices) {
        s["devices"].push_back({{"name", d.name}, {"description", d.description}, {"type", d.type},
                                {"memory_total_bytes", d.memory_total}, {"memory_free_bytes", d.memory_free}});
    }
    s["backend_features"] = r.system.backend_features;
    auto & c = j["ceilings"];
    c["source"] = r.ceil.source;
    c["backend"] = r.ceil.backend;
    c["device"] = r.ceil.device;
    c["mem_bw_bytes_per_s"] = r.ceil.mem_bw_bytes_per_s;
    c["mem_bw_kind"] = r.ceil.mem_bw_kind;
    c["mem_read_bytes_per_s"] = r.ceil.mem_read_bytes_per_s;
    c["mem_copy_bytes_per_s"] = r.ceil.mem_copy_bytes_per_s;
    c["mem_triad_bytes_per_s"] = r.ceil.mem_triad_bytes_per_s;
    c["mem_probe_bytes"] = r.ceil.mem_probe_bytes;
    c["matmul_f16_flops_per_s"] = r.ceil.matmul_f16_flops_per_s;
    c["matmul_quant_flops_per_s"] = r.ceil.matmul_quant_flops_per_s;
    c["quant_type"] = r.ceil.quant_type;
    c["matmul_flops_per_s_for_model"] = matmul_ceiling_for(r.ceil, r.cost.weight_type);
    c["matmul_model_shapes"] = r.ceil.matmul_model_shapes;
    c["matmul_model"] = nlohmann::ordered_json::array();
    for (const auto & e : r.ceil.matmul_model) {
        c["matmul_model"].push_back({{"n_cols", e.n_cols}, {"flops_per_s", e.flops_per_s}});
    }
    c["launch_overhead_s"] = r.ceil.launch_overhead_s;
    c["n_threads"] = r.ceil.n_threads;
    c["probed_at"] = r.ceil.probed_at;
    auto & m = j["model_cost"];
    m["model"] = r.cost.model;
    m["weight_type"] = r.cost.weight_type;
    m["weight_bytes_per_step"] = r.cost.weight_bytes_per_step;
    m["n_params"] = r.cost.n_params;
    m["matmul_params"] = r.cost.matmul_params;
    m["kv_bytes_per_token"] = r.cost.kv_bytes_per_token;
    m["type_k"] = r.cost.type_k;
    m["type_v"] = r.cost.type_v;
    m["n_layer"] = r.cost.n_layer;
    m["attn_width"] = r.cost.attn_width;
    m["flops_per_token_at_depth_0"] = decode_step_flops(r.cost, 1, 0.0);
    m["attn_flops_per_token_per_depth"] = decode_step_flops(r.cost, 1, 1.0) - decode_step_flops(r.cost, 1, 0.0);
    j["bound_threshold"] = bound_threshold;
    j["verdicts"] = nlohmann::ordered_json::array();
    for (const auto & v : r.verdicts) {
        nlohmann::ordered_json e;
        e["phase"] = v.obs.phase;
        e["workers"] = v.obs.workers;
        e["tokens_per_s"] = v.obs.tokens_per_s;
        e["mean_depth_tokens"] = v.obs.mean_depth_tokens;
        e["n_prompt"] = v.obs.n_prompt;
        e["n_ubatch"] = v.obs.n_ubatch;
        e["step_s"] = v.step_s;
        e["bytes_per_step"] = v.bytes_per_step;
        e["flops_per_step"] = v.flops_per_step;
        e["achieved_bw_bytes_per_s"] = v.achieved_bw_bytes_per_s;
        e["bw_fraction"] = v.bw_fraction;
        e["achieved_flops_per_s"] = v.achieved_flops_per_s;
        e["flops_fraction"] = v.flops_fraction;
        e["matmul_ceiling"] = v.matmul_ceiling;
        e["matmul_ceiling_flops_per_s"] = v.matmul_ceiling_flops_per_s;
        e["roof_step_s"] = v.roof_step_s;
        e["unexplained_s"] = v.unexplained_s;
        e["ideal_tokens_per_s"] = v.ideal_tokens_per_s;
        e["bound"] = bound_name(v.kind);
        e["sentences"] = v.sentences;
        j["verdicts"].push_back(e);
    }
    j["ideal_curve"] = {{"depth_tokens", r.curve_depth_tokens}, {"points", nlohmann::ordered_json::array()}};
    for (const auto & [w, t] : r.ideal_curve) {
        j["ideal_curve"]["points"].push_back({{"workers", w}, {"ideal_tokens_per_s", t}});
    }
    j["summary"] = r.summary;
    return j;
}

std::string to_markdown(const roofline_report & r) {
    std::string md = "### Interpretation\n\n";
    const double f = matmul_ceiling_for(r.ceil, r.cost.weight_type);
    const std::string origin = r.ceil.source == "measured"
                                   ? fmt::format("measured on {} ({}{})", r.ceil.device, r.ceil.backend,
                                                 r.ceil.n_threads > 0 ? fmt::format(", {} threads", r.ceil.n_threads) : "")
                                   : r.ceil.source == "user" ? "given by --device-spec"
                                                             : fmt::format("datasheet values ({})", r.ceil.source);
    md += fmt::format("**Hardware ceilings**: {}.\n\n", origin);
    md += "| Ceiling | Value | How |\n|---|---|---|\n";
    md += fmt::format("| Memory bandwidth | {} | {} |\n", format_bytes_per_s(r.ceil.mem_bw_bytes_per_s),
                      r.ceil.source != "measured" ? "spec"
                      : fmt::format("best ({}) of read-only {} / copy {} / triad {}{}, {} MiB per {}",
                                    r.ceil.mem_bw_kind.empty() ? "?" : r.ceil.mem_bw_kind,
                                    format_bytes_per_s(r.ceil.mem_read_bytes_per_s),
                                    format_bytes_per_s(r.ceil.mem_copy_bytes_per_s),
                                    format_bytes_per_s(r.ceil.mem_triad_bytes_per_s),
                                    r.ceil.backend == "CPU" ? "" : " (ggml sum / cpy / add)",
                                    r.ceil.mem_probe_bytes >> 20, r.ceil.backend == "CPU" ? "array" : "tensor"));
    if (r.ceil.source != "measured" && r.ceil.matmul_f16_flops_per_s == r.ceil.matmul_quant_flops_per_s) {
        md += fmt::format("| Matmul (any weight type) | {} | spec |\n", format_flops_per_s(r.ceil.matmul_f16_flops_per_s));
    } else {
        const std::string how = r.ceil.source == "measured" ? "ggml_mul_mat, best repetition" : "spec";
        md += fmt::format("| Matmul, f16 weights | {} | {} |\n", format_flops_per_s(r.ceil.matmul_f16_flops_per_s), how);
        md += fmt::format("| Matmul, {} weights | {} | {} |\n", r.ceil.quant_type.empty() ? "quantized" : r.ceil.quant_type,
                          format_flops_per_s(r.ceil.matmul_quant_flops_per_s), how);
    }
    for (const auto & e : r.ceil.matmul_model) {
        md += fmt::format("| Matmul at the model's shapes, N = {} | {} | ggml_mul_mat over block 0's matrices ({}), repeated with their own weights to >= 512 MiB, one graph |\n",
                          e.n_cols, format_flops_per_s(e.flops_per_s), r.ceil.matmul_model_shapes);
    }
    if (r.ceil.launch_overhead_s > 0) {
        md += fmt::format("| {} | {} us | one-node graph, median |\n",
                          has_kernel_launches(r.ceil) ? "Graph launch + sync" : "One-node graph compute + sync",
                          fmtx::thousands(r.ceil.launch_overhead_s * 1e6, 1));
    }
    if (r.ceil.matmul_model.empty()) {
        md += fmt::format("\nThe classification uses the {} matmul ceiling for this model's {} weights.\n\n",
                          format_flops_per_s(f), r.cost.weight_type);
    } else {
        md += fmt::format("\nThe classification uses the rate at the model's own shapes for each phase's N (decode: W; "
                          "prefill: one micro-batch), else the {} ceiling for {} weights.\n\n",
                          format_flops_per_s(f), r.cost.weight_type);
    }

    md += fmt::format("**Model cost** ({}, KV cache {}/{}):\n\n", r.cost.model, r.cost.type_k, r.cost.type_v);
    md += fmt::format("- Weights read per decode step: {} MiB ({}), tied embeddings counted once\n",
                      fmtx::thousands(static_cast<double>(r.cost.weight_bytes_per_step) / fmtx::mib, 2),
                      mb(static_cast<double>(r.cost.weight_bytes_per_step)));
    md += fmt::format("- KV cache read per sequence per step: {} B x depth\n",
                      fmtx::thousands(static_cast<int64_t>(r.cost.kv_bytes_per_token)));
    md += fmt::format("- FLOPs per generated token: {} (2 x {} params) + {} x depth (attention)\n\n",
                      gflop(decode_step_flops(r.cost, 1, 0.0)), fmtx::count_si(static_cast<double>(r.cost.matmul_params)),
                      fmtx::thousands(decode_step_flops(r.cost, 1, 1.0) - decode_step_flops(r.cost, 1, 0.0), 0));

    if (!r.verdicts.empty()) {
        md += "**Measured vs roofline**\n\n";
        md += "| Phase | W | Depth / prompt | Measured t/s | Bytes/step | Achieved BW | % BW | Achieved FLOP/s | "
              "% compute | Roofline t/s | Bound |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
        for (const auto & v : r.verdicts) {
            const bool decode = v.obs.phase != "prefill";
            md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", v.obs.phase, v.obs.workers,
                              decode ? fmtx::thousands(v.obs.mean_depth_tokens, 0) : std::to_string(v.obs.n_prompt),
                              fmtx::thousands(v.obs.tokens_per_s, 2), mb(v.bytes_per_step),
                              format_bytes_per_s(v.achieved_bw_bytes_per_s),
                              fraction_of_ceiling(v.bw_fraction, "bandwidth"), format_flops_per_s(v.achieved_flops_per_s),
                              fraction_of_ceiling(v.flops_fraction, v.matmul_ceiling),
                              tps(v.ideal_tokens_per_s), bound_name(v.kind));
        }
        md += "\n";
    }

    md += fmt::format("**Ideal generation throughput vs workers** (roofline, depth {} tokens per sequence)\n\n",
                      fmtx::thousands(r.curve_depth_tokens, 0));
    md += "| W | Ideal t/s | Limited by | Measured t/s | Measured / ideal |\n|---:|---:|---|---:|---:|\n";
    for (const auto & [w, ideal] : r.ideal_curve) {
        const double bw_s = decode_step_bytes(r.cost, w, r.curve_depth_tokens) / r.ceil.mem_bw_bytes_per_s;
        const double fl_s = decode_step_flops(r.cost, w, r.curve_depth_tokens) / f;
        std::string measured = "", ratio = "";
        for (const auto & v : r.verdicts) {
            if (v.obs.phase == "decode" && v.obs.workers == w) {
                measured = fmtx::thousands(v.obs.tokens_per_s, 2);
                // Against this table's roofline (same ceilings as the Ideal column) at this W's own depth.
                const double of_ideal = v.obs.tokens_per_s / ideal_decode_tokens_per_s(r.cost, r.ceil, w, v.obs.mean_depth_tokens);
                ratio = of_ideal > 1.0 ? "above the roofline (a ceiling is wrong)" : pct(of_ideal);
            }
        }
        md += fmt::format("| {} | {} | {} | {} | {} |\n", w, tps(ideal), bw_s >= fl_s ? "bandwidth" : "compute",
                          measured, ratio);
    }
    md += "\n";
    for (const auto & v : r.verdicts) {
        md += fmt::format("**{} W={}**\n\n", v.obs.phase == "prefill" ? "Prefill" : "Decode", v.obs.workers);
        for (const auto & s : v.sentences) md += "- " + s + "\n";
        md += "\n";
    }
    md += "**Summary**\n\n";
    for (const auto & s : r.summary) md += "- " + s + "\n";
    return md;
}

}  // namespace im::hardware
