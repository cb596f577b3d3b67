#include "workload/bench.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "engine/backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

namespace im::workload {

std::string bench_test::name() const {
    std::string s;
    if (n_prompt > 0 && n_gen > 0) s = "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen);
    else if (n_prompt > 0) s = "pp" + std::to_string(n_prompt);
    else s = "tg" + std::to_string(n_gen);
    if (n_depth > 0) s += " @ d" + std::to_string(n_depth);
    return s;
}

std::vector<bench_test> expand_tests(const std::vector<engine::llama::engine_params> & params,
                                     const std::vector<int> & n_prompt, const std::vector<int> & n_gen,
                                     const std::vector<std::pair<int, int>> & pg, const std::vector<int> & n_depth) {
    std::vector<bench_test> out;
    for (const auto & p : params) {
        for (int d : n_depth) {
            for (int np : n_prompt) {
                if (np > 0) out.push_back({np, 0, d, p});
            }
            for (int ng : n_gen) {
                if (ng > 0) out.push_back({0, ng, d, p});
            }
            for (const auto & [np, ng] : pg) {
                out.push_back({np, ng, d, p});
            }
        }
    }
    return out;
}

// Same token choices as llama-bench: BOS first when the vocabulary adds one, then random ids.
bool decode_prompt(llama_context * ctx, int n_prompt, int n_batch) {
    const llama_vocab * vocab = llama_model_get_vocab(llama_get_model(ctx));
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    std::vector<llama_token> tokens(static_cast<size_t>(n_batch));
    int n_processed = 0;
    while (n_processed < n_prompt) {
        const int n_tokens = std::min(n_prompt - n_processed, n_batch);
        tokens[0] = n_processed == 0 && llama_vocab_get_add_bos(vocab) ? llama_vocab_bos(vocab) : std::rand() % n_vocab;
        for (int i = 1; i < n_tokens; ++i) tokens[static_cast<size_t>(i)] = std::rand() % n_vocab;
        if (llama_decode(ctx, llama_batch_get_one(tokens.data(), n_tokens)) != 0) return false;
        n_processed += n_tokens;
    }
    llama_synchronize(ctx);
    return true;
}

bool decode_gen(llama_context * ctx, int n_gen) {
    const llama_vocab * vocab = llama_model_get_vocab(llama_get_model(ctx));
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    llama_token token = llama_vocab_get_add_bos(vocab) ? llama_vocab_bos(vocab) : std::rand() % n_vocab;
    for (int i = 0; i < n_gen; ++i) {
        if (llama_decode(ctx, llama_batch_get_one(&token, 1)) != 0) return false;
        llama_synchronize(ctx);
        token = std::rand() % n_vocab;
    }
    return true;
}

bool warmup_done(const bench_policy & p, std::span<const double> warmup_ts) {
    if (warmup_ts.size() < 2) return false;
    const double a = warmup_ts[warmup_ts.size() - 2], b = warmup_ts.back();
    const double hi = std::max(a, b);
    return hi > 0 && std::abs(a - b) <= p.warmup_agreement * hi;
}

double ci95_relative(std::span<const double> samples_ts) {
    const auto s = stats::summarize(samples_ts);
    if (!s.ci95_high || s.median <= 0) return 0;
    return (*s.ci95_high - s.mean) / s.median;
}

bool repetitions_done(const bench_policy & p, std::span<const double> samples_ts, double elapsed_s) {
    const auto n = static_cast<int>(samples_ts.size());
    if (n < p.min_reps) return false;
    if (n >= p.max_reps) return true;
    return elapsed_s >= p.min_time_s && n >= 2 && ci95_relative(samples_ts) <= p.precision;
}

warmup_outcome warm_up(const bench_policy & p, const std::function<double()> & one_run) {
    warmup_outcome o;
    if (!p.warmup) return o;
    std::vector<double> ts;
    while (o.n < p.max_warmup && !warmup_done(p, ts)) {
        if (interrupt::requested()) {
            o.interrupted = true;
            return o;
        }
        ts.push_back(one_run());
        ++o.n;
    }
    o.converged = warmup_done(p, ts);
    return o;
}

bool repeat(const bench_policy & p, const std::function<timed_run()> & one_run, std::vector<int64_t> & samples_ns,
            std::vector<double> & samples_ts) {
    double elapsed_s = 0;
    for (int64_t ns : samples_ns) elapsed_s += static_cast<double>(ns) / 1e9;
    while (!repetitions_done(p, samples_ts, elapsed_s)) {
        if (interrupt::requested()) return false;
        const timed_run t = one_run();
        samples_ns.push_back(t.ns);
        samples_ts.push_back(t.ts);
        elapsed_s += static_cast<double>(t.ns) / 1e9;
    }
    return true;
}

bool run_bench(const std::filesystem::path & model_path, const std::vector<bench_test> & tests,
               const bench_policy & policy, const bench_callbacks & cb) {
    std::unique_ptr<engine::llama::model> model;
    const engine::llama::engine_params * loaded_with = nullptr;
    for (size_t ti = 0; ti < tests.size(); ++ti) {
        const bench_test & t = tests[ti];
        if (!model || !engine::llama::model::same_load(*loaded_with, t.params)) {
            model.reset();
            model = std::make_unique<engine::llama::model>(model_path, t.params);
            loaded_with = &t.params;
        }
        engine::llama::context_request req;
        req.n_ctx = static_cast<uint32_t>(t.n_prompt + t.n_gen + t.n_depth);
        engine::llama::context ctx(*model, t.params, req);
        ctx.clear();

        const auto fail = [&](const char * what) {
            const std::string why = engine::last_llama_errors();
            throw_runtime("{}: llama_decode failed during {}{}", t.name(), what, why.empty() ? "" : ": " + why);
        };
        bench_result r;
        r.test = t;
        r.test_time = clock::rfc3339_now();
        r.n_ctx_allocated = ctx.alloc().n_ctx;
        r.n_threads = ctx.n_threads();
        const auto finish = [&] {
            r.ts = stats::summarize(r.samples_ts);
            stats::welford ns;
            for (int64_t s : r.samples_ns) ns.add(static_cast<double>(s));
            r.avg_ns = ns.mean();
            r.stddev_ns = ns.stddev().value_or(0.0);
            r.ci95_rel = ci95_relative(r.samples_ts);
            r.precision_met = r.samples_ts.size() >= 2 && r.ci95_rel <= policy.precision;
            if (cb.result) cb.result(r, *model);
        };
        const auto stop = [&] {
            // Keep the repetitions that finished (DESIGN §5: partial results, marked); an interrupted
            // warmup has none, and the outputs say interrupted.
            r.partial = true;
            if (!r.samples_ns.empty()) finish();
            return false;
        };
        // Warmup runs do the timed work (the generation capped at warmup_gen_cap tokens) until two in a
        // row agree: one run left the first timed pp128 on an H200 at half speed (issue 9).
        const int n_gen_warm = std::min(t.n_gen, warmup_gen_cap);
        const auto w = warm_up(policy, [&] {
            if (cb.progress) cb.progress(ti, tests.size(), t, -(r.n_warmup + 1));
            ctx.clear();
            const int64_t t0 = clock::now_ns();
            if (t.n_prompt > 0 && !decode_prompt(ctx.get(), t.n_prompt, t.params.n_batch)) fail("warmup");
            if (n_gen_warm > 0 && !decode_gen(ctx.get(), n_gen_warm)) fail("warmup");
            const int64_t dt = std::max<int64_t>(1, clock::now_ns() - t0);
            ++r.n_warmup;
            return 1e9 * (t.n_prompt + n_gen_warm) / static_cast<double>(dt);
        });
        r.warmup_converged = w.converged;
        if (w.interrupted) return stop();
        const bool complete = repeat(policy, [&] {
            if (cb.progress) cb.progress(ti, tests.size(), t, static_cast<int>(r.samples_ns.size()));
            ctx.clear();
            if (t.n_depth > 0 && !decode_prompt(ctx.get(), t.n_depth, t.params.n_batch)) fail("depth prefill");
            const int64_t t0 = clock::now_ns();
            if (t.n_prompt > 0 && !decode_prompt(ctx.get(), t.n_prompt, t.params.n_batch)) fail("prompt processing");
            if (t.n_gen > 0 && !decode_gen(ctx.get(), t.n_gen)) fail("generation");
            const int64_t dt = std::max<int64_t>(1, clock::now_ns() - t0);
            return timed_run{dt, 1e9 * (t.n_prompt + t.n_gen) / static_cast<double>(dt)};
        }, r.samples_ns, r.samples_ts);
        if (!complete) return stop();
        finish();
    }
    return true;
}

}  // namespace im::workload
