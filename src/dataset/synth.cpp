#include "dataset/synth.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/ranges.h"
#include "dataset/vocab.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <thread>
#include <unistd.h>

namespace im::dataset {

namespace {

constexpr double z90 = 1.2815515655446004;  // standard normal quantile of 0.90

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Inverse standard normal CDF: Acklam's rational approximation (relative error 1.15e-9) with one
// Halley step (P. J. Acklam, "An algorithm for computing the inverse normal cumulative distribution
// function", 2003).
double normal_quantile(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    p = std::clamp(p, 1e-300, 1.0 - 1e-16);
    double x;
    if (p < 0.02425) {
        const double q = std::sqrt(-2 * std::log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        const double q = std::sqrt(-2 * std::log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        const double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    const double e = normal_cdf(x) - p;
    const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

[[noreturn]] void bad_spec(const std::string & flag, const std::string & spec, const std::string & why) {
    throw_usage("{} '{}': {} (forms: fixed:N, uniform:A,B, normal:mean=M,sd=S[,min=N,max=N], "
                "lognormal:median=M,p90=P | lognormal:median=M,sigma=S | lognormal:mean=M,sd=S)",
                flag, spec, why);
}

double number(const std::string & flag, const std::string & spec, const std::string & text) {
    try {
        size_t used = 0;
        const double v = std::stod(text, &used);
        if (used != text.size() || !std::isfinite(v)) throw std::invalid_argument(text);
        return v;
    } catch (const std::exception &) {
        bad_spec(flag, spec, "'" + text + "' is not a number");
    }
}

// Pieces " word" (a space and 2-12 lowercase ASCII letters) that tokenize back to one token, in
// token-id order: text made of them has a known token count in this vocabulary.
std::vector<std::string> word_pool(const llama_vocab * vocab) {
    std::vector<std::string> pool;
    std::vector<llama_token> buf;
    char piece[64];
    const int n = llama_vocab_n_tokens(vocab);
    for (llama_token t = 0; t < n; ++t) {
        if (llama_vocab_get_attr(vocab, t) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED)) continue;
        const int32_t len = llama_token_to_piece(vocab, t, piece, sizeof(piece), 0, false);
        if (len < 3 || len > 13 || piece[0] != ' ') continue;
        if (!std::all_of(piece + 1, piece + len, [](char c) { return c >= 'a' && c <= 'z'; })) continue;
        const std::string w(piece, static_cast<size_t>(len));
        if (count_tokens(vocab, w, false, buf) == 1) pool.push_back(w);
    }
    return pool;
}

// Text of `target` tokens: random pool words, then words added or removed until it tokenizes to
// exactly `target` (the first word, lacking its space, may split). Returns the final miss.
int64_t make_text(const llama_vocab * vocab, const std::vector<std::string> & pool, int32_t target,
                  std::mt19937_64 & rng, std::string & text, std::vector<llama_token> & buf) {
    text.clear();
    if (target <= 0) return 0;
    // Zipf's law (s = 1) over the pool in token-id order: BPE ids follow merge order, roughly
    // frequency, so common short words dominate as in natural text, and so does the tokenizer's speed.
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const double log_n = std::log(static_cast<double>(pool.size()) + 1.0);
    const auto pick = [&] {
        const auto r = static_cast<size_t>(std::exp(unit(rng) * log_n));
        return std::clamp<size_t>(r, 1, pool.size()) - 1;
    };
    std::vector<size_t> ends;  // text size after each word
    const auto add = [&](int64_t k) {
        for (int64_t i = 0; i < k; ++i) {
            text += pool[pick()];
            ends.push_back(text.size());
        }
    };
    add(target);
    text.erase(0, 1);  // no leading space
    for (auto & e : ends) --e;
    int64_t miss = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
        miss = static_cast<int64_t>(target) - count_tokens(vocab, text, false, buf);
        if (miss == 0) break;
        if (miss > 0) {
            add(miss);
        } else {
            const auto drop = std::min<size_t>(static_cast<size_t>(-miss), ends.size() - 1);
            ends.resize(ends.size() - drop);
            text.resize(ends.back());
        }
    }
    return miss;
}

int32_t draw(const length_distribution & d, bool stratified, size_t i, size_t n, std::mt19937_64 & rng) {
    if (stratified) return length_quantile(d, (static_cast<double>(i) + 0.5) / static_cast<double>(n));
    return length_quantile(d, std::uniform_real_distribution<double>(1e-12, 1.0 - 1e-12)(rng));
}

}  // namespace

length_distribution parse_distribution(const std::string & spec, const std::string & flag) {
    length_distribution d;
    d.spec = spec;
    const size_t colon = spec.find(':');
    if (colon == std::string::npos) bad_spec(flag, spec, "no ':' after the distribution's name");
    const std::string name = spec.substr(0, colon);
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, double>> named;
    for (const auto & item : split_list(spec.substr(colon + 1))) {
        const size_t eq = item.find('=');
        if (eq == std::string::npos) {
            positional.push_back(item);
        } else {
            named.emplace_back(item.substr(0, eq), number(flag, spec, item.substr(eq + 1)));
        }
    }
    const auto get = [&](const char * key) -> std::optional<double> {
        for (const auto & [k, v] : named) {
            if (k == key) return v;
        }
        return std::nullopt;
    };
    for (const auto & kv : named) {
        const std::string & k = kv.first;  // not a structured binding: clang 14 (the fuzz build) cannot capture one
        static const char * known[] = {"mean", "sd", "median", "p90", "sigma", "min", "max"};
        if (std::none_of(std::begin(known), std::end(known), [&](const char * x) { return k == x; })) {
            bad_spec(flag, spec, "unknown parameter '" + k + "'");
        }
    }
    // Range-checked before the conversion (a double beyond int64 is undefined behaviour: found by fuzzing).
    for (const char * key : {"min", "max"}) {
        if (auto v = get(key); v && !(*v >= 0 && *v <= 10'000'000)) bad_spec(flag, spec, "needs 0 <= min <= max <= 10,000,000");
    }
    if (auto v = get("min")) d.min_tokens = static_cast<int64_t>(*v);
    if (auto v = get("max")) d.max_tokens = static_cast<int64_t>(*v);
    if (name == "fixed") {
        if (positional.size() != 1) bad_spec(flag, spec, "fixed takes one length");
        d.shape = length_distribution::kind::fixed;
        d.a = number(flag, spec, positional[0]);
        d.min_tokens = 0;
    } else if (name == "uniform") {
        if (positional.size() != 2) bad_spec(flag, spec, "uniform takes two lengths A,B");
        d.shape = length_distribution::kind::uniform;
        d.a = number(flag, spec, positional[0]);
        d.b = number(flag, spec, positional[1]);
        if (d.b < d.a) bad_spec(flag, spec, "B is below A");
        d.min_tokens = 0;
    } else if (name == "normal") {
        const auto mean = get("mean"), sd = get("sd");
        if (!mean || !sd || !positional.empty()) bad_spec(flag, spec, "normal needs mean= and sd=");
        if (*sd < 0) bad_spec(flag, spec, "sd is negative");
        d.shape = length_distribution::kind::normal;
        d.a = *mean;
        d.b = *sd;
    } else if (name == "lognormal") {
        d.shape = length_distribution::kind::lognormal;
        const auto median = get("median"), p90 = get("p90"), sigma = get("sigma"), mean = get("mean"),
                   sd = get("sd");
        if (median && p90) {
            if (*median <= 0 || *p90 < *median) bad_spec(flag, spec, "needs 0 < median <= p90");
            d.a = std::log(*median);
            d.b = std::log(*p90 / *median) / z90;
        } else if (median && sigma) {
            if (*median <= 0 || *sigma < 0) bad_spec(flag, spec, "needs median > 0 and sigma >= 0");
            d.a = std::log(*median);
            d.b = *sigma;
        } else if (mean && sd) {
            if (*mean <= 0 || *sd < 0) bad_spec(flag, spec, "needs mean > 0 and sd >= 0");
            d.b = std::sqrt(std::log(1 + (*sd * *sd) / (*mean * *mean)));
            d.a = std::log(*mean) - d.b * d.b / 2;
        } else {
            bad_spec(flag, spec, "lognormal needs median= with p90= or sigma=, or mean= with sd=");
        }
    } else {
        bad_spec(flag, spec, "unknown distribution '" + name + "'");
    }
    if (d.min_tokens < 0 || d.max_tokens < d.min_tokens || d.max_tokens > 10'000'000) {
        bad_spec(flag, spec, "needs 0 <= min <= max <= 10,000,000");
    }
    // Lengths are clamped to [min, max] when drawn: a fixed or uniform length outside it would be
    // changed silently, so it is refused instead.
    const bool bounded = d.shape == length_distribution::kind::fixed || d.shape == length_distribution::kind::uniform;
    const double hi = d.shape == length_distribution::kind::uniform ? d.b : d.a;
    if (bounded && (!std::isfinite(d.a) || !std::isfinite(hi) || d.a < static_cast<double>(d.min_tokens) ||
                    hi > static_cast<double>(d.max_tokens))) {
        bad_spec(flag, spec, fmt::format("lengths must lie in {}..{} tokens (raise the cap with max=N, at most "
                                         "10,000,000)", d.min_tokens, d.max_tokens));
    }
    return d;
}

int32_t length_quantile(const length_distribution & d, double u) {
    u = std::clamp(u, 1e-12, 1.0 - 1e-12);
    double x = 0;
    switch (d.shape) {
        case length_distribution::kind::fixed: x = d.a; break;
        case length_distribution::kind::uniform: x = std::floor(d.a + u * (d.b - d.a + 1)); break;
        case length_distribution::kind::normal: {
            if (d.b == 0) {
                x = d.a;
                break;
            }
            // Truncated to [min - 0.5, max + 0.5] so rounding keeps the shape (no pile-up at the bounds).
            const double lo = normal_cdf((static_cast<double>(d.min_tokens) - 0.5 - d.a) / d.b);
            const double hi = normal_cdf((static_cast<double>(d.max_tokens) + 0.5 - d.a) / d.b);
            x = d.a + d.b * normal_quantile(lo + u * (hi - lo));
            break;
        }
        case length_distribution::kind::lognormal: x = std::exp(d.a + d.b * normal_quantile(u)); break;
    }
    const double r = std::clamp(std::round(x), static_cast<double>(d.min_tokens), static_cast<double>(d.max_tokens));
    return static_cast<int32_t>(r);
}

synth_options reference_synth_options() {
    synth_options o;
    o.prompt_tokens = parse_distribution("normal:mean=70,sd=25,min=4", "--prompt-tokens");
    o.output_tokens = parse_distribution("lognormal:median=500,p90=1280", "--output-tokens");
    o.records = 2000;
    o.seed = 42;
    return o;
}

synth_result synthesize(const synth_options & opts, const llama_vocab * vocab) {
    if (opts.out.empty()) throw_usage("dataset synth: -o FILE.jsonl is required");
    if (opts.records == 0) throw_usage("--records: must be at least 1");
    const int64_t t0 = clock::now_ns();
    const std::vector<std::string> pool = word_pool(vocab);
    if (pool.size() < 100) {
        throw_runtime("the vocabulary has only {} plain word tokens; dataset synth needs a BPE/SPM vocabulary of "
                      "natural-language text (-m/--vocab)",
                      pool.size());
    }
    synth_result res;
    res.records = opts.records;

    // Lengths first, from one generator, so that they do not depend on the thread count.
    std::mt19937_64 rng(opts.seed);
    std::vector<int32_t> prompt_len(opts.records), output_len(opts.records);
    for (size_t i = 0; i < opts.records; ++i) {
        prompt_len[i] = draw(opts.prompt_tokens, opts.stratified, i, opts.records, rng);
        output_len[i] = draw(opts.output_tokens, opts.stratified, i, opts.records, rng);
    }
    if (opts.stratified) {
        std::shuffle(prompt_len.begin(), prompt_len.end(), rng);
        std::shuffle(output_len.begin(), output_len.end(), rng);
    }
    res.mean_prompt_tokens = std::accumulate(prompt_len.begin(), prompt_len.end(), 0.0) / static_cast<double>(opts.records);
    res.mean_output_tokens = std::accumulate(output_len.begin(), output_len.end(), 0.0) / static_cast<double>(opts.records);

    // Streamed to a temporary beside the target, renamed when complete (a crash leaves no half file);
    // a device or FIFO is written through (core/fs.h).
    fs::output_file out(opts.out, opts.out_hint);
    const std::filesystem::path tmp = out.temp_path();
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw_runtime("cannot write {}{}", tmp.string(), opts.out_hint.empty() ? "" : " (" + opts.out_hint + ")");

    const unsigned hw = std::thread::hardware_concurrency();
    const size_t n_threads = static_cast<size_t>(opts.n_threads > 0 ? opts.n_threads : (hw ? hw : 1));
    constexpr size_t round_size = 256;
    std::vector<std::string> lines(round_size);
    std::vector<int64_t> misses(round_size);
    for (size_t base = 0; base < opts.records; base += round_size) {
        const size_t n = std::min(round_size, opts.records - base);
        std::vector<std::thread> threads;
        for (size_t t = 0; t < n_threads; ++t) {
            threads.emplace_back([&, t] {
                std::vector<llama_token> buf;
                std::string instruction, output;
                for (size_t k = t; k < n; k += n_threads) {
                    const size_t i = base + k;
                    std::mt19937_64 text_rng(opts.seed * 0x9E3779B97F4A7C15ull + i + 1);
                    const int64_t m1 = make_text(vocab, pool, prompt_len[i], text_rng, instruction, buf);
                    const int64_t m2 = make_text(vocab, pool, output_len[i], text_rng, output, buf);
                    nlohmann::ordered_json j;
                    j["instruction"] = instruction;
                    j["input"] = "";
                    j["output"] = output;
                    lines[k] = j.dump() + "\n";
                    misses[k] = std::max(std::abs(m1), std::abs(m2));
                }
            });
        }
        for (auto & th : threads) th.join();
        for (size_t k = 0; k < n; ++k) {
            f << lines[k];
            res.bytes += lines[k].size();
            if (misses[k] != 0) {
                ++res.texts_off;
                res.max_miss_tokens = std::max(res.max_miss_tokens, misses[k]);
            }
        }
    }
    f.flush();
    f.close();
    if (!f) throw_runtime("cannot write {}: disk full or I/O error{}", opts.out.string(),
                          opts.out_hint.empty() ? "" : " (" + opts.out_hint + ")");
    out.commit();
    if (res.texts_off > 0) {
        log::warn("{} record(s) did not tokenize to their exact target (off by up to {} tokens)", res.texts_off,
                  res.max_miss_tokens);
    }
    res.seconds = static_cast<double>(clock::now_ns() - t0) / 1e9;
    return res;
}

}  // namespace im::dataset
