#include "workload/bench.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "engine/backend.h"

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

bool run_bench(const std::filesystem::path & model_path, const std::vector<bench_test> & tests, int repetitions,
               bool warmup, const bench_callbacks & cb) {
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
        if (warmup) {
            if (cb.progress) cb.progress(ti, tests.size(), t, -1);
            if (t.n_prompt > 0 && !decode_prompt(ctx.get(), t.n_prompt, t.params.n_batch)) fail("warmup");
            if (t.n_gen > 0 && !decode_gen(ctx.get(), 1)) fail("warmup");
        }
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
            if (cb.result) cb.result(r, *model);
        };
        for (int rep = 0; rep < repetitions; ++rep) {
            if (interrupt::requested()) {
                // Keep the repetitions that finished (DESIGN §5: partial results, marked).
                r.partial = true;
                if (!r.samples_ns.empty()) finish();
                return false;
            }
            if (cb.progress) cb.progress(ti, tests.size(), t, rep);
            ctx.clear();
            if (t.n_depth > 0 && !decode_prompt(ctx.get(), t.n_depth, t.params.n_batch)) fail("depth prefill");
            const int64_t t0 = clock::now_ns();
            if (t.n_prompt > 0 && !decode_prompt(ctx.get(), t.n_prompt, t.params.n_batch)) fail("prompt processing");
            if (t.n_gen > 0 && !decode_gen(ctx.get(), t.n_gen)) fail("generation");
            const int64_t dt = clock::now_ns() - t0;
            r.samples_ns.push_back(dt);
            r.samples_ts.push_back(1e9 * (t.n_prompt + t.n_gen) / static_cast<double>(dt));
        }
        finish();
    }
    return true;
}

}  // namespace im::workload
