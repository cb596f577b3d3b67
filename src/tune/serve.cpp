#include "tune/serve.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/escape.h"
#include "core/interrupt.h"
#include "engine/http/client.h"
#include "engine/http/protocol.h"
#include "engine/llama/session.h"
#include "engine/text_keeping.h"
#include "workload/request_source.h"
#include "workload/requests.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <thread>

namespace im::tune {

divergence first_divergence(const reference_answer & ref, std::string_view text, double tie_margin) {
    std::string ref_text;
    std::vector<size_t> starts;
    for (const auto & t : ref) {
        starts.push_back(ref_text.size());
        ref_text += t.piece;
    }
    const size_t n = std::min(ref_text.size(), text.size());
    size_t d = 0;
    while (d < n && ref_text[d] == text[d]) ++d;
    divergence r;
    if (d == ref_text.size() && d == text.size()) return r;
    r.diverged = true;
    r.byte = d;
    // The positions judged: the token holding byte d, and the one before when d starts a token (or is
    // past the reference's end: the text went on where the reference stopped).
    std::vector<size_t> judged;
    if (d < ref_text.size()) {
        const size_t k = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), d) - starts.begin()) - 1;
        judged.push_back(k);
        if (starts[k] == d && k > 0) judged.push_back(k - 1);
    } else if (!ref.empty()) {
        judged.push_back(ref.size() - 1);
    }
    r.gap = std::numeric_limits<double>::infinity();
    for (size_t k : judged) {
        const double gap = ref[k].p1 - ref[k].p2;
        if (gap < r.gap) {
            r.gap = gap;
            r.token = static_cast<int>(k);
        }
    }
    r.near_tie = r.token >= 0 && r.gap < tie_margin;
    if (r.token < 0) r.gap = 0;
    return r;
}

output_check compare_answers(const std::vector<reference_answer> & ref, const std::vector<std::string> & texts,
                             double tie_margin) {
    IM_CHECK(ref.size() == texts.size(), "tune: answers and references of different counts");
    output_check r;
    r.n_rows = static_cast<int>(ref.size());
    std::optional<std::pair<size_t, divergence>> clear;  // the first divergence at a clear choice
    double widest_tie = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const auto d = first_divergence(ref[i], texts[i], tie_margin);
        if (!d.diverged) continue;
        ++r.n_flips;
        if (d.near_tie) {
            ++r.n_near_ties;
            widest_tie = std::max(widest_tie, d.gap);
        } else if (!clear) {
            clear = {i, d};
        }
    }
    if (clear) {
        const auto & [i, d] = *clear;
        r.detail = d.token < 0 ? fmt::format("other text: answer {} of {} diverged from the baseline's at byte {}, past its end", i + 1,
                                             r.n_rows, d.byte)
                               : fmt::format("other text: {} of {} answers diverged, {} where the baseline's choice was clear "
                                             "(answer {}, token {}: top-2 probabilities {:.3g} / {:.3g}, gap {:.3g} >= {:g})",
                                             r.n_flips, r.n_rows, r.n_flips - r.n_near_ties, i + 1, d.token + 1,
                                             ref[i][static_cast<size_t>(d.token)].p1, ref[i][static_cast<size_t>(d.token)].p2,
                                             d.gap, tie_margin);
    } else {
        r.same = true;
        r.detail = r.n_flips == 0 ? fmt::format("identical text in {} of {} answers", r.n_rows, r.n_rows)
                                  : fmt::format("{} of {} answers diverged, all at near ties (the baseline's top-2 probabilities "
                                                "within {:g}, widest gap {:.2g})",
                                                r.n_flips, r.n_rows, tie_margin, widest_tie);
    }
    return r;
}

double near_tie_share(const std::vector<reference_answer> & ref, double tie_margin) {
    size_t n = 0, ties = 0;
    for (const auto & a : ref) {
        for (const auto & t : a) {
            ++n;
            ties += t.p1 - t.p2 < tie_margin;
        }
    }
    return n ? static_cast<double>(ties) / static_cast<double>(n) : 0;
}

reference_answer parse_reference(std::string_view completion_json) {
    const auto j = nlohmann::json::parse(completion_json, nullptr, false);
    const auto it = j.is_object() ? j.find("completion_probabilities") : j.end();
    if (!j.is_object() || it == j.end() || !it->is_array()) {
        throw_runtime("tune: llama-server's answer has no completion_probabilities (n_probs not supported?): {}",
                      engine::http::error_text(completion_json));
    }
    reference_answer out;
    for (const auto & e : *it) {
        reference_token t;
        if (auto b = e.find("bytes"); b != e.end() && b->is_array()) {
            for (const auto & c : *b) t.piece.push_back(static_cast<char>(c.get<int>()));
        } else {
            t.piece = e.value("token", std::string());
        }
        std::vector<double> p;
        if (auto tl = e.find("top_logprobs"); tl != e.end() && tl->is_array()) {
            for (const auto & x : *tl) p.push_back(std::exp(x.value("logprob", -std::numeric_limits<double>::infinity())));
        } else if (auto tp = e.find("top_probs"); tp != e.end() && tp->is_array()) {
            for (const auto & x : *tp) p.push_back(x.value("prob", 0.0));
        }
        std::sort(p.begin(), p.end(), std::greater<>());
        t.p1 = p.size() > 0 ? p[0] : 0;
        t.p2 = p.size() > 1 ? p[1] : 0;
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<axis> serve_axes(const serve_config & c) {
    std::vector<axis> axes;
    // Where the sampler runs first: on the H200 it moved 64 llama-server streams from 1,332 to 2,726 t/s.
    axes.push_back({"--backend-sampling", values_first(c.backend_sampling ? "1" : "0", {"0", "1"}), true});
    axes.push_back({"-fa", values_first(c.flash_attn, {"auto", "on", "off"})});
    // Per-slot KV (llama-server's default once -np is given) against one unified buffer.
    axes.push_back({"--kv-unified", values_first(c.kv_unified ? "1" : "0", {"0", "1"}), true});
    std::vector<std::string> ub;
    for (int u : {128, 256, 512, 1024, 2048}) {
        if (u <= c.n_batch) ub.push_back(std::to_string(u));
    }
    axes.push_back({"-ub", values_first(std::to_string(c.n_ubatch), ub)});
    std::vector<std::string> b;
    for (int v : {512, 1024, 4096}) {
        if (v >= c.n_ubatch) b.push_back(std::to_string(v));
    }
    axes.push_back({"-b", values_first(std::to_string(c.n_batch), b)});
    if (!c.offloaded) {
        const int logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        const int base_t = c.n_threads > 0 ? c.n_threads : engine::llama::default_threads();
        std::vector<std::string> ts;
        for (int t : {logical, std::max(1, logical / 2), std::max(1, base_t / 2)}) ts.push_back(std::to_string(t));
        axes.push_back({"-t", values_first(std::to_string(base_t), ts)});
        // llama-server's default is max(-np + 4, logical CPUs - 1) HTTP threads; C + 1 still serves every
        // stream and /health, and leaves the cores to the compute threads.
        axes.push_back({"--threads-http", values_first("-1", {std::to_string(c.concurrency + 1)})});
    }
    return axes;
}

int64_t serve_ctx(const serve_config & c) {
    return static_cast<int64_t>(c.concurrency) * (c.n_prompt + c.n_predict + 1 + 64);
}

std::vector<std::string> server_args(const serve_config & c, const std::vector<axis> & axes, const candidate & cand) {
    std::vector<std::string> v{"-m", c.model_path.string(), "-np", std::to_string(c.concurrency), "-c",
                               std::to_string(serve_ctx(c))};
    v.insert(v.end(), c.fixed_args.begin(), c.fixed_args.end());
    for (const auto & a : axes) {
        const auto it = cand.find(a.name);
        if (it == cand.end()) continue;
        if (a.is_switch) {
            if (it->second == "1") v.push_back(a.name);
        } else {
            v.insert(v.end(), {a.name, it->second});
        }
    }
    return v;
}

std::string server_command(const serve_config & c, const std::vector<axis> & axes, const candidate & cand) {
    auto args = server_args(c, axes, cand);
    args.insert(args.begin(), "llama-server");
    return esc::shell_join(args);
}

namespace {

struct probe_result {
    measurement m;
    std::vector<std::string> texts;  // by request index
};

// The closed loop at C through the HTTP client: C users, requests_per_user requests each (the first of
// each user warmup), request i always the same prompt; texts kept by request index.
probe_result run_probe(const serve_config & c, const std::string & url, const workload::request_source & source) {
    engine::http::client_options o;
    o.urls = {url};
    o.endpoint = engine::http::api::llama;
    o.body.temperature = 0;
    o.body.seed = static_cast<int64_t>(c.seed);
    o.body.ignore_eos = true;
    o.client_threads = engine::http::auto_client_threads(c.concurrency);
    o.prefer_token_ids = true;
    o.request_timeout_ms = static_cast<int64_t>(c.request_timeout_s * 1000);
    engine::http::http_engine http(o);
    engine::text_keeping_engine eng(http);
    workload::request_workload w;
    w.arrivals = workload::arrival_kind::closed;
    w.concurrency = c.concurrency;
    w.n_requests = c.concurrency * c.requests_per_user;
    w.warmup_requests = c.concurrency;
    w.seed = c.seed;
    const auto run = workload::run_requests(eng, w, [&](uint64_t i) { return source.make(i); });
    if (run.interrupted) throw im::error(error_kind::interrupted, "interrupted");
    probe_result p;
    p.texts.resize(run.records.size());
    for (const auto & rec : run.records) {
        if (!rec.ok()) {
            throw_runtime("probe request {} failed ({}): {}", rec.id + 1, engine::failure_name(rec.cause), rec.message);
        }
        IM_CHECK(rec.id < p.texts.size(), "tune: a probe request outside the schedule");
        p.texts[rec.id] = eng.take_text(rec.id);
    }
    p.m.score = run.metrics.output_tps;
    p.m.ttft_p50_ms = run.metrics.ttft.p50;
    p.m.tpot_p50_ms = run.metrics.tpot.p50;
    return p;
}

// The reference: every probe request again, one at a time (a batch of one), not streamed, with the
// baseline's top-2 probabilities per token, and without the prompt cache (the probe left its prompts there).
std::vector<reference_answer> take_reference(const serve_config & c, const std::string & url,
                                             const workload::request_source & source, size_t n) {
    engine::http::body_options bo;
    bo.temperature = 0;
    bo.seed = static_cast<int64_t>(c.seed);
    bo.ignore_eos = true;
    std::vector<reference_answer> out;
    for (size_t i = 0; i < n; ++i) {
        if (interrupt::requested()) throw im::error(error_kind::interrupted, "interrupted");
        const auto r = source.make(i);
        auto body = nlohmann::json::parse(engine::http::request_body(engine::http::api::llama, bo, r.prompt_tokens, r.n_predict));
        body["stream"] = false;
        body["n_probs"] = 2;
        body["cache_prompt"] = false;
        const auto a = engine::http::fetch_once(url + engine::http::api_path(engine::http::api::llama), body.dump(),
                                                static_cast<int64_t>(c.request_timeout_s * 1000));
        if (!a.ok) throw_runtime("tune: the baseline's reference request {} failed: {}", i + 1, a.error);
        if (a.status != 200) {
            throw_runtime("tune: the baseline's reference request {} answered HTTP {}: {}", i + 1, a.status,
                          engine::http::error_text(a.body));
        }
        out.push_back(parse_reference(a.body));
    }
    return out;
}

struct serve_state {
    serve_config c;
    std::vector<axis> axes;
    server_launcher launch;
    workload::request_source source;
    candidate baseline;
    std::vector<reference_answer> reference;
    bool have_reference = false;
    std::map<candidate, measurement> pending;  // same_outputs' probe, for the measure call that follows

    serve_state(const serve_config & c_, const std::vector<axis> & a, server_launcher l, const llama_vocab * vocab)
        : c(c_), axes(a), launch(std::move(l)), source(lengths_of(c_), vocab, c_.seed) {
        for (const auto & x : axes) baseline[x.name] = x.values.front();
    }

    static workload::length_source lengths_of(const serve_config & c) {
        workload::length_source l;
        l.shape = workload::length_source::kind::fixed;
        l.n_prompt = c.n_prompt;
        l.n_predict = c.n_predict;
        return l;
    }

    size_t n_requests() const { return static_cast<size_t>(c.concurrency) * static_cast<size_t>(c.requests_per_user); }

    probe_result probe(const candidate & cand, bool take_ref) {
        auto server = launch(server_args(c, axes, cand));
        auto p = run_probe(c, server->url(), source);
        if (take_ref) {
            reference = take_reference(c, server->url(), source, n_requests());
            have_reference = true;
        }
        return p;
    }
};

}  // namespace

evaluator serve_evaluator(const serve_config & c, const std::vector<axis> & axes, server_launcher launch,
                          const llama_vocab * vocab) {
    IM_CHECK(vocab != nullptr, "tune: the serve workload needs the model's vocabulary");
    IM_CHECK(c.concurrency >= 1 && c.requests_per_user >= 2, "tune: a serve probe needs users and measured requests");
    const int64_t t0 = clock::now_ns();
    auto st = std::make_shared<serve_state>(c, axes, std::move(launch), vocab);
    evaluator ev;
    ev.check_baseline = true;
    ev.elapsed_s = [t0] { return static_cast<double>(clock::now_ns() - t0) / 1e9; };
    ev.same_outputs = [st](const candidate & cand) {
        const bool is_baseline = cand == st->baseline;
        if (!st->have_reference && !is_baseline) st->probe(st->baseline, true);  // the reference first
        auto p = st->probe(cand, is_baseline && !st->have_reference);
        st->pending[cand] = p.m;
        auto chk = compare_answers(st->reference, p.texts, st->c.tie_margin);
        if (is_baseline) {
            // The baseline's own probe against its reference: how much batching alone moves the text here,
            // and whether the tie rule decides on this model.
            const double share = near_tie_share(st->reference, st->c.tie_margin);
            size_t n_tokens = 0;
            for (const auto & a : st->reference) n_tokens += a.size();
            chk.detail = fmt::format("reference: {} answers, {} tokens, taken one request at a time with n_probs = 2; "
                                     "{:.1f}% of the baseline's tokens are near ties (top-2 probabilities within {:g}){}; "
                                     "its own probe at C = {}: {}{}",
                                     st->reference.size(), n_tokens, 100 * share, st->c.tie_margin,
                                     share >= 0.5 ? ": near-flat distributions (a random-weight model?), so the tie rule, "
                                                    "not the text, decides this check"
                                                  : "",
                                     st->c.concurrency, chk.detail,
                                     chk.same ? ""
                                              : " — the baseline fails its own check: batching alone moved its text here, so "
                                                "candidates rejected like it are not told apart from it (a larger --tie-margin?)");
            chk.same = true;
        }
        return chk;
    };
    ev.measure = [st](const candidate & cand) -> measurement {
        if (auto it = st->pending.find(cand); it != st->pending.end()) {
            const measurement m = it->second;
            st->pending.erase(it);
            return m;
        }
        return st->probe(cand, false).m;
    };
    return ev;
}

}  // namespace im::tune
