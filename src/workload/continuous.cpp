#include "workload/continuous.h"

#include "core/error.h"
#include "core/format.h"
#include "core/interrupt.h"
#include "model/info.h"
#include "workload/lockstep.h"
#include "workload/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

namespace im::workload {

int slots_for(const continuous_sweep & s, const request_workload & w) {
    if (s.n_slots > 0) return s.n_slots;
    if (w.arrivals == arrival_kind::closed) return w.concurrency;
    return w.max_concurrency > 0 ? w.max_concurrency : 16;
}

continuous_runner::continuous_runner(const continuous_sweep & s)
    : s_(s), model_(s.model_path, s.params), source_(s.lengths, model_.vocab(), s.seed) {
    per_request_ = source_.max_tokens_per_request();
    kvpt_ = im::model::kv_bytes_per_token(model_.info(), s.params.type_k, s.params.type_v);
}

request_run continuous_runner::run(const request_workload & w, const continuous_callbacks & cb) {
    const int slots = slots_for(s_, w);
    if (slots > static_cast<int>(llama_max_parallel_sequences())) {
        throw_usage("{} slots exceed llama.cpp's limit of {} parallel sequences (lower --concurrency or --slots)", slots,
                    llama_max_parallel_sequences());
    }
    engine::llama::continuous_config cc;
    cc.n_slots = slots;
    cc.n_ctx = auto_n_ctx(slots, static_cast<int>(std::min<int64_t>(per_request_, INT32_MAX / 2)), 0, s_.ctx_min);
    cc.kv_unified = s_.kv_unified;
    cc.step_tokens = s_.step_tokens;
    cc.sampling = s_.sampling;
    const uint64_t need = kv_bytes(cc.n_ctx, kvpt_);
    const auto [device, free_bytes] = kv_device_free(s_.params);
    if (need > free_bytes) {
        throw_runtime("{} slots of {} cells need {} MiB of KV cache but {} has {} MiB free (lower --concurrency/--slots, "
                      "the lengths, or quantize the cache with -ctk/-ctv q8_0)", slots, pad256(per_request_),
                      fmtx::thousands(static_cast<double>(need) / fmtx::mib, 0), device,
                      fmtx::thousands(static_cast<double>(free_bytes) / fmtx::mib, 0));
    }
    engine::llama::continuous_engine eng(model_, s_.params, cc);
    if (s_.warmup) eng.warmup(std::min<int>(s_.lengths.n_prompt, 128));
    request_callbacks rc;
    if (cb.progress) rc.progress = [&](const request_progress & p) { cb.progress(w, p); };
    request_run run = run_requests(eng, w, [&](uint64_t i) { return source_.make(i); }, rc);
    run.lengths = source_.lengths().describe();
    run.sampling = s_.sampling.describe();
    run.n_slots = slots;
    run.n_ctx = eng.alloc().n_ctx;
    run.n_threads = eng.n_threads();
    return run;
}

}  // namespace im::workload
