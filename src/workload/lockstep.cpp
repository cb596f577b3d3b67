#include "workload/lockstep.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/format.h"
#include "core/interrupt.h"
#include "core/process.h"
#include "engine/backend.h"
#include "engine/llama/session.h"
#include "telemetry/energy.h"
#include "workload/batch.h"
#include "workload/metrics.h"
#include "workload/plan.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <unistd.h>

namespace im::workload {

namespace {

uint64_t host_available_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit) {
        if (key == "MemAvailable:") return kb * 1024;
    }
    return 0;
}

int64_t n_ctx_for(const lockstep_config & c, int workers) {
    return c.n_ctx > 0 ? c.n_ctx : auto_n_ctx(workers, c.n_prompt, c.n_predict, c.ctx_min);
}

}  // namespace

std::optional<double> lockstep_row::joules_per_output_token() const {
    const double tokens = static_cast<double>(workers) * n_predict * static_cast<double>(t_tg_s.size());
    if (!energy_j || tokens <= 0) return std::nullopt;
    return *energy_j / tokens;
}

void lockstep_row::add_repetition(double t_pp, double t_tg) {
    const auto rates = lockstep_rates_of(workers, n_prompt, n_predict, t_pp, t_tg);
    t_pp_s.push_back(t_pp);
    t_tg_s.push_back(t_tg);
    prompt_tps_samples.push_back(rates.prompt_tps);
    gen_tps_samples.push_back(rates.gen_tps);
    overall_tps_samples.push_back(rates.overall_tps);
}

void lockstep_row::summarize() {
    prompt_tps = stats::summarize(prompt_tps_samples);
    gen_tps = stats::summarize(gen_tps_samples);
    overall_tps = stats::summarize(overall_tps_samples);
    t_pp_mean_s = stats::summarize(t_pp_s).mean;
    t_tg_mean_s = stats::summarize(t_tg_s).mean;
}

std::pair<std::string, uint64_t> kv_device_free(const engine::llama::engine_params & p) {
    const auto devs = engine::llama::offload_devices(p);
    if (devs.empty()) return {"host memory", host_available_bytes()};
    // Weights and KV are split by layer in proportion to -ts (or, by default, to each device's free
    // memory): what fits is bounded by the device whose free memory is the smallest multiple of its share.
    std::vector<double> share(devs.size(), 0.0);
    for (size_t i = 0; i < devs.size(); ++i) {
        share[i] = p.tensor_split.empty() ? static_cast<double>(devs[i].memory_free)
                                          : i < p.tensor_split.size() ? p.tensor_split[i] : 0.0;
    }
    double total_share = 0;
    for (double s : share) total_share += s;
    std::string names;
    for (size_t i = 0; i < devs.size(); ++i) {
        if (share[i] <= 0 && total_share > 0) continue;
        names += (names.empty() ? "" : " + ") + devs[i].name + " (" + devs[i].description + ")";
    }
    if (total_share <= 0) {  // no device reports free memory (llama.cpp then splits evenly)
        uint64_t sum = 0;
        for (const auto & d : devs) sum += d.memory_free;
        return {names, sum};
    }
    double capacity = -1;
    for (size_t i = 0; i < devs.size(); ++i) {
        if (share[i] <= 0) continue;
        const double c = static_cast<double>(devs[i].memory_free) / (share[i] / total_share);
        if (capacity < 0 || c < capacity) capacity = c;
    }
    return {names, static_cast<uint64_t>(std::max(0.0, capacity))};
}

void validate(const lockstep_config & c, const im::model::info & m) {
    if (c.n_prompt <= 0) throw_usage("-p: the prompt length must be > 0 (got {})", c.n_prompt);
    if (c.n_predict <= 0) throw_usage("-n: the number of tokens to generate must be > 0 (got {})", c.n_predict);
    if (c.workers.empty()) throw_usage("--workers: no worker counts given");
    if (c.repetitions < 1) throw_usage("-r: repetitions must be >= 1 (got {})", c.repetitions);
    const int max_seq = static_cast<int>(llama_max_parallel_sequences());
    if (c.extend && (c.max_workers < 1 || c.max_workers > max_seq)) {
        throw_usage("--max-workers: {} is out of range: the sweep extension runs up to llama.cpp's limit of {} "
                    "parallel sequences (1..{})", c.max_workers, max_seq, max_seq);
    }
    for (int w : reachable_workers(c)) {
        if (w < 1) throw_usage("--workers: {} is out of range (must be >= 1)", w);
        if (w > max_seq) {
            throw_usage("--workers: {} exceeds llama.cpp's limit of {} parallel sequences", w, max_seq);
        }
        if (c.n_ctx > 0) {
            const int64_t per_seq = n_ctx_seq(c.n_ctx, w, c.kv_unified);
            const int64_t need = c.kv_unified ? static_cast<int64_t>(w) * (c.n_prompt + c.n_predict) : c.n_prompt + c.n_predict;
            if (per_seq < need) {
                throw_usage("--ctx {} is too small for {} workers at {}+{} tokens ({} cells per sequence, {} needed); "
                            "use --ctx auto", c.n_ctx, w, c.n_prompt, c.n_predict, per_seq, need);
            }
        }
    }
    if (c.n_prompt > max_ctx_cells || c.n_predict > max_ctx_cells) {
        throw_usage("-p {} / -n {}: at most {} tokens each", c.n_prompt, c.n_predict, max_ctx_cells);
    }
    const int per_seq = c.n_prompt + c.n_predict;
    if (m.n_ctx_train > 0 && per_seq > m.n_ctx_train) {
        if (!c.allow_ctx_overflow) {
            throw_usage("-p {} + -n {} = {} tokens per sequence exceeds the model's trained context of {}; pass "
                        "--allow-ctx-overflow to measure it anyway", c.n_prompt, c.n_predict, per_seq, m.n_ctx_train);
        }
    }
    validate_ctx_min(c, m);
}

void validate_ctx_min(const lockstep_config & c, const im::model::info & m, bool overflow_flag) {
    const char * flag = c.n_ctx > 0 ? "--ctx" : "--ctx-min";
    const int64_t asked = c.n_ctx > 0 ? c.n_ctx : c.ctx_min;
    if (asked <= 0 || c.workers.empty()) return;
    if (asked > max_ctx_cells) {
        throw_usage("{} {}: at most {} cells (llama.cpp's positions are 32-bit)", flag, asked, max_ctx_cells);
    }
    // Only where the flag, not W · pad256(p + n), sets the context: the smallest W gets the most cells each.
    const int w = *std::min_element(c.workers.begin(), c.workers.end());
    const int64_t n_ctx = n_ctx_for(c, w);
    if (n_ctx != asked) return;
    const int64_t per_seq = n_ctx_seq(n_ctx, w, c.kv_unified);
    if (m.n_ctx_train > 0 && per_seq > std::max<int64_t>(m.n_ctx_train, pad256(c.n_prompt + c.n_predict)) &&
        !c.allow_ctx_overflow) {
        throw_usage("{} {}: {} worker{} would get {} cells per sequence, more than the model's trained context of {}; "
                    "lower {}{}", flag, asked, w, w == 1 ? "" : "s", per_seq, m.n_ctx_train, flag,
                    overflow_flag ? " or pass --allow-ctx-overflow" : "");
    }
    // Arithmetic only, before llama.cpp allocates anything (its per-cell bookkeeping alone for 2e9 cells
    // exhausted 24 GB): the KV cache this flag forces at every W, plus the weights.
    const uint64_t kv = kv_bytes(n_ctx, im::model::kv_bytes_per_token(m, c.params.type_k, c.params.type_v));
    const auto [device, free] = kv_device_free(c.params);
    if (free > 0 && kv + m.size_bytes > free) {
        throw_usage("{} {}: the KV cache alone needs {} MiB at any worker count (+ {} MiB of weights) but {} has {} MiB "
                    "free; lower {}", flag, asked, fmtx::thousands(static_cast<double>(kv) / fmtx::mib, 0),
                    fmtx::thousands(static_cast<double>(m.size_bytes) / fmtx::mib, 0), device,
                    fmtx::thousands(static_cast<double>(free) / fmtx::mib, 0), flag);
    }
}

namespace {

memory_plan plan_one(const engine::llama::model & dry, const lockstep_config & c, int w, uint64_t kvpt,
                     const std::pair<std::string, uint64_t> & device_free) {
    memory_plan p;
    p.workers = w;
    p.n_ctx = n_ctx_for(c, w);
    p.n_ctx_seq = n_ctx_seq(p.n_ctx, w, c.kv_unified);
    p.kv_bytes = kv_bytes(p.n_ctx, kvpt);
    p.weights_bytes = dry.size_bytes();
    // The dry run still allocates llama.cpp's per-cell bookkeeping: skip it when the arithmetic says no.
    const bool hopeless = p.n_ctx > max_ctx_cells || p.kv_bytes + p.weights_bytes > device_free.second;
    engine::llama::context_request req{static_cast<uint32_t>(p.n_ctx), static_cast<uint32_t>(w), c.kv_unified, false};
    try {
        if (!hopeless) {
            engine::llama::context ctx(dry, c.params, req);
            p.kv_bytes_reported = ctx.alloc().kv_bytes;
            p.compute_bytes = ctx.alloc().compute_bytes;
        }
    } catch (const im::error & ex) {
        // No memory is allocated in a dry run: a refusal is a configuration llama.cpp rejects, and a
        // real run of it would fail the same way. Never report it as fitting.
        p.refused = ex.what();
        p.refused_kind = engine::llama::is_address_space_refusal(ex) ? im::error_kind::runtime : im::error_kind::usage;
    }
    p.total_bytes = p.weights_bytes + p.kv_bytes + p.compute_bytes;
    p.free_bytes = device_free.second;
    p.device = device_free.first;
    p.fits = p.refused.empty() && p.total_bytes <= p.free_bytes;
    return p;
}

}  // namespace

std::vector<memory_plan> plan(const lockstep_config & c) {
    engine::llama::model dry(c.model_path, c.params, /*no_alloc=*/true);
    const uint64_t kvpt = im::model::kv_bytes_per_token(dry.info(), c.params.type_k, c.params.type_v);
    const auto device_free = kv_device_free(c.params);
    std::vector<memory_plan> out;
    for (int w : reachable_workers(c)) out.push_back(plan_one(dry, c, w, kvpt, device_free));
    return out;
}

std::string fits_text(int largest_fitting) {
    return largest_fitting > 0 ? fmt::format("the largest worker count that fits is {}", largest_fitting)
                               : std::string("no worker count fits (lower --ctx-min/--ctx, -p/-n or the cache types)");
}

std::vector<int> reachable_workers(const lockstep_config & c) {
    std::vector<int> out = c.workers;
    if (!c.extend) return out;
    std::vector<int> chain;
    for (int w : c.workers) {
        // 64-bit doubling: a chain from a large W must not overflow past max_workers.
        for (int64_t next = 2 * static_cast<int64_t>(w); w >= 1 && next <= c.max_workers; next *= 2) {
            chain.push_back(static_cast<int>(next));
        }
    }
    std::sort(chain.begin(), chain.end());
    for (int w : chain) {
        if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
    }
    return out;
}

void check_plan(const std::vector<memory_plan> & plan) {
    for (const auto & p : plan) {
        if (p.refused.empty()) continue;
        throw im::error(p.refused_kind,
                        fmt::format("{} workers ({} cells, {} per sequence): llama.cpp rejects this configuration in a "
                                    "dry run, so the sweep would fail there: {}. Change the engine flags (-fa, "
                                    "-ctk/-ctv, -ub), --workers or --max-workers",
                                    p.workers, p.n_ctx, p.n_ctx_seq, p.refused));
    }
}

int largest_fitting_workers(const memory_plan & p, const lockstep_config & c, uint64_t kv_bytes_per_token) {
    const uint64_t per_worker = static_cast<uint64_t>(pad256(c.n_prompt + c.n_predict)) * kv_bytes_per_token;
    const uint64_t fixed = p.weights_bytes + p.compute_bytes;
    if (p.free_bytes <= fixed || per_worker == 0) return 0;
    // --ctx / --ctx-min set a floor on the context of every W: if the floor does not fit, no W does.
    const int64_t floor_cells = c.n_ctx > 0 ? c.n_ctx : c.ctx_min;
    if (kv_bytes(floor_cells, kv_bytes_per_token) > p.free_bytes - fixed) return 0;
    if (c.n_ctx > 0) return static_cast<int>(llama_max_parallel_sequences());
    return static_cast<int>(std::min<uint64_t>((p.free_bytes - fixed) / per_worker, llama_max_parallel_sequences()));
}

namespace {

// Measures one worker count on a fresh context. Returns false when interrupted mid-way.
bool measure(const engine::llama::model & model, const lockstep_config & c, const memory_plan & p,
             const lockstep_callbacks & cb, telemetry::energy_meter & meter, lockstep_row & row) {
    const int w = row.workers;
    const int32_t n_vocab = llama_vocab_n_tokens(model.vocab());
    // CPU-only: a persistent threadpool, as llama-bench attaches (no thread start per step). Offloaded:
    // none, as batched-bench (polling CPU threads slowed W >= 32 on an H100 by up to 7%).
    const bool offloaded = c.params.n_gpu_layers != 0 && !engine::gpu_info().empty();
    engine::llama::context_request req{static_cast<uint32_t>(p.n_ctx), static_cast<uint32_t>(w), c.kv_unified, !offloaded};
    engine::llama::context ctx(model, c.params, req);
    row.n_ctx = ctx.alloc().n_ctx;
    row.n_ctx_seq = ctx.alloc().n_ctx_seq;
    row.kv_bytes_allocated = ctx.alloc().kv_bytes;
    row.n_threads = ctx.n_threads();
    row.test_time = clock::rfc3339_now();
    llama_context * lctx = ctx.get();
    batch::holder holder(std::max(w * c.n_prompt, std::max(w, 16)));
    llama_batch & batch = holder.batch;
    const auto fail = [&](const char * phase) {
        const std::string why = engine::last_llama_errors();
        throw_runtime("{} workers: llama_decode failed during {}{}", w, phase, why.empty() ? "" : ": " + why);
    };

    if (c.warmup) {
        // One prefill and one decode step of exactly the measured shapes. batched-bench warms up with
        // 16 tokens only, which leaves the first prefill of each shape cold (on CUDA its W=1 prompt
        // rate reads ~3x low); the memory is cleared before the timed repetitions.
        batch::fill_prompts(batch, w, c.n_prompt, n_vocab);
        if (!batch::decode_chunks(lctx, batch, c.params.n_batch)) fail("warmup");
        batch::fill_step(batch, w, c.n_prompt, n_vocab);
        if (llama_decode(lctx, batch) != 0) fail("warmup");
        llama_synchronize(lctx);
    }
    meter.start();
    for (int rep = 0; rep < c.repetitions; ++rep) {
        ctx.clear();
        batch::fill_prompts(batch, w, c.n_prompt, n_vocab);
        if (cb.progress) cb.progress({w, "prefill", 0, 1, 0, rep});
        const int64_t t_pp0 = clock::now_ns();
        if (!batch::decode_chunks(lctx, batch, c.params.n_batch)) fail("prefill");
        llama_synchronize(lctx);
        const int64_t t_pp1 = clock::now_ns();

        int64_t last_report = t_pp1;
        // No synchronize per step (batched-bench has none): the logits are never read, so the host
        // builds step k+1 while the device still runs step k; T_TG ends at the one synchronize below.
        for (int step = 0; step < c.n_predict; ++step) {
            batch::fill_step(batch, w, c.n_prompt + step, n_vocab);
            if (llama_decode(lctx, batch) != 0) fail("decode");
            if (interrupt::requested()) {
                llama_synchronize(lctx);
                // Keep what finished (DESIGN §5): the whole repetitions, or else this one's steps so far.
                row.partial = true;
                if (rep == 0) {
                    row.n_predict = step + 1;
                    row.add_repetition(static_cast<double>(t_pp1 - t_pp0) / 1e9,
                                       static_cast<double>(clock::now_ns() - t_pp1) / 1e9);
                }
                row.summarize();
                row.rss_bytes = process::rss_bytes();
                return false;
            }
            if (cb.progress) {
                const int64_t now = clock::now_ns();
                if (now - last_report > 100'000'000) {
                    last_report = now;
                    cb.progress({w, "decode", step + 1, c.n_predict,
                                 1e9 * w * (step + 1) / static_cast<double>(now - t_pp1), rep});
                }
            }
        }
        llama_synchronize(lctx);
        const int64_t t_tg1 = clock::now_ns();
        const double t_pp = static_cast<double>(t_pp1 - t_pp0) / 1e9;
        const double t_tg = static_cast<double>(t_tg1 - t_pp1) / 1e9;
        row.add_repetition(t_pp, t_tg);
    }
    const auto energy = meter.stop();
    row.energy_j = energy.total_j();
    row.avg_watts = energy.watts();
    if (row.energy_j) row.energy_source = meter.sources();
    row.summarize();
    row.rss_bytes = process::rss_bytes();
    for (const auto & d : engine::llama::offload_devices(c.params)) row.device_used_bytes += d.memory_total - d.memory_free;
    return true;
}

}  // namespace

int next_extension_workers(const lockstep_config & c, const lockstep_row * before, const lockstep_row & last,
                           std::string & stop, bool predicted) {
    const int next = last.workers * 2;
    const double gain = before ? last.overall_tps.mean / before->overall_tps.mean - 1.0 : 1.0;
    if (gain < c.extend_min_gain) {
        stop = fmt::format("{} to {} workers {} {} overall throughput (< {}){}", before->workers, last.workers,
                           predicted ? "add" : "added", fmtx::percent(gain, 1), fmtx::percent(c.extend_min_gain),
                           predicted ? ", predicted" : "");
        return 0;
    }
    if (next > c.max_workers) {
        stop = fmt::format("the next step, {} workers, is above --max-workers {}", next, c.max_workers);
        return 0;
    }
    return next;
}

lockstep_result run_lockstep(const lockstep_config & c, const lockstep_callbacks & cb) {
    lockstep_result res;
    engine::llama::model dry(c.model_path, c.params, /*no_alloc=*/true);
    const uint64_t kvpt = im::model::kv_bytes_per_token(dry.info(), c.params.type_k, c.params.type_v);
    for (int w : c.workers) res.plan.push_back(plan_one(dry, c, w, kvpt, kv_device_free(c.params)));
    check_plan(res.plan);
    std::unique_ptr<engine::llama::model> model;  // loaded on the first W that needs measuring
    telemetry::energy_meter meter;                  // NVML / RAPL where they exist: the energy of each W
    double base_overall = 0;
    // Indices into res.rows of the last two measured worker counts (pointers would dangle on growth).
    std::optional<size_t> last, before_last;

    for (size_t wi = 0;; ++wi) {
        if (interrupt::requested()) {
            res.interrupted = true;
            break;
        }
        bool extended = false;
        if (wi >= c.workers.size()) {
            if (!c.extend || !last) break;
            const int next = next_extension_workers(c, before_last ? &res.rows[*before_last] : nullptr, res.rows[*last],
                                                    res.extension_stop);
            if (next == 0) break;
            res.plan.push_back(plan_one(dry, c, next, kvpt, kv_device_free(c.params)));
            if (!res.plan.back().refused.empty()) {
                // Callers check reachable_workers() up front (evaluate does); this only guards the others.
                res.extension_stop = fmt::format("llama.cpp rejects {} workers: {}", next, res.plan.back().refused);
                break;
            }
            extended = true;
        }
        const memory_plan & p = res.plan[wi];
        const int w = p.workers;
        lockstep_row row;
        row.workers = w;
        row.n_prompt = c.n_prompt;
        row.n_predict = c.n_predict;
        row.kv_bytes = p.kv_bytes;
        row.total_kv = static_cast<long>(w) * (c.n_prompt + c.n_predict);
        row.extended = extended;

        const auto done = std::find_if(c.done.begin(), c.done.end(), [&](const lockstep_row & d) {
            return d.workers == w && d.n_prompt == c.n_prompt && d.n_predict == c.n_predict && d.skipped.empty() &&
                   !d.partial;
        });
        if (done != c.done.end()) {
            row = *done;
            row.extended = extended;
        } else {
            // Weights are loaded already (or will be): what this W adds must fit what is free now.
            const auto [device, free_now] = kv_device_free(c.params);
            const uint64_t weights_pending = model ? 0 : p.weights_bytes;
            if (p.kv_bytes + p.compute_bytes + weights_pending > free_now) {
                memory_plan now = p;
                now.free_bytes = free_now + p.weights_bytes - weights_pending;
                row.skipped = fmt::format("{} workers need {} MiB of KV cache + {} MiB of compute buffers but {} has {} "
                                          "MiB free; {}",
                                          w, fmtx::thousands(static_cast<double>(p.kv_bytes) / fmtx::mib, 0),
                                          fmtx::thousands(static_cast<double>(p.compute_bytes) / fmtx::mib, 0), device,
                                          fmtx::thousands(static_cast<double>(free_now) / fmtx::mib, 0),
                                          fits_text(largest_fitting_workers(now, c, kvpt)));
                if (cb.warn) cb.warn(row.skipped);
                res.rows.push_back(row);
                if (extended) {
                    res.extension_stop = fmt::format("{} workers do not fit in memory", w);
                    break;
                }
                continue;
            }
            if (!model) model = std::make_unique<engine::llama::model>(c.model_path, c.params);
            if (cb.sampler) cb.sampler->set_level(w);
            const bool finished = measure(*model, c, p, cb, meter, row);
            if (cb.sampler) {
                const auto peaks = cb.sampler->close_segment();
                row.peak_gpu_memory_mib = peaks.gpu_memory_used_mib;
                row.peak_rss_mib = peaks.process_rss_mib;
            }
            if (!finished) res.interrupted = true;
        }
        if (res.base_workers == 0) {
            res.base_workers = w;
            base_overall = row.overall_tps.mean;
        }
        const auto sc = scaling_of(row.overall_tps.mean, w, base_overall, res.base_workers);
        row.speedup = sc.speedup;
        row.efficiency = sc.efficiency;
        res.rows.push_back(row);
        if (res.interrupted) break;  // the partial row is in the result, not passed to cb.row
        before_last = last;
        last = res.rows.size() - 1;
        if (cb.row) cb.row(res.rows.back(), model ? *model : dry);
    }
    return res;
}

}  // namespace im::workload
