#include "workload/requests.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/process.h"
#include "core/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <unordered_map>

namespace im::workload {

std::string arrival_name(arrival_kind a) {
    switch (a) {
        case arrival_kind::closed: return "closed";
        case arrival_kind::poisson: return "poisson";
        case arrival_kind::constant: return "constant";
        case arrival_kind::gamma: return "gamma";
    }
    return "?";
}

std::string slo::describe() const {
    return fmt::format("p{:g} TTFT <= {:g} ms, p{:g} TPOT <= {:g} ms", percentile, ttft_ms, percentile, tpot_ms);
}

namespace {

// "500ms", "0.5s", "500" (ms) -> milliseconds.
double parse_duration_ms(const std::string & v, const std::string & spec) {
    size_t used = 0;
    double x = 0;
    try {
        x = std::stod(v, &used);
    } catch (const std::exception &) {
        throw_usage("--slo '{}': '{}' is not a duration (e.g. 500ms, 0.5s)", spec, v);
    }
    const std::string unit = v.substr(used);
    if (unit == "s") x *= 1000;
    else if (unit == "us") x /= 1000;
    else if (!unit.empty() && unit != "ms") throw_usage("--slo '{}': unknown unit '{}' (ms, s, us)", spec, unit);
    if (!(x > 0) || !std::isfinite(x)) throw_usage("--slo '{}': durations must be > 0", spec);
    return x;
}

}  // namespace

slo parse_slo(const std::string & spec) {
    slo s;
    std::string rest = spec;
    if (rest.size() > 1 && rest[0] == 'p') {
        const auto colon = rest.find(':');
        if (colon == std::string::npos) throw_usage("--slo '{}': expected pNN:ttft=...,tpot=...", spec);
        try {
            s.percentile = std::stod(rest.substr(1, colon - 1));
        } catch (const std::exception &) {
            throw_usage("--slo '{}': '{}' is not a percentile", spec, rest.substr(0, colon));
        }
        if (!(s.percentile > 0 && s.percentile < 100)) throw_usage("--slo '{}': the percentile must be in (0, 100)", spec);
        rest = rest.substr(colon + 1);
    }
    size_t start = 0;
    while (start <= rest.size()) {
        const size_t comma = std::min(rest.find(',', start), rest.size());
        const std::string item = rest.substr(start, comma - start);
        const auto eq = item.find('=');
        if (eq == std::string::npos) throw_usage("--slo '{}': expected key=value pairs (ttft=500ms,tpot=30ms)", spec);
        const std::string key = item.substr(0, eq);
        const double ms = parse_duration_ms(item.substr(eq + 1), spec);
        if (key == "ttft") s.ttft_ms = ms;
        else if (key == "tpot") s.tpot_ms = ms;
        else throw_usage("--slo '{}': unknown objective '{}' (ttft, tpot)", spec, key);
        start = comma + 1;
    }
    return s;
}

void validate(const request_workload & w) {
    if (w.arrivals == arrival_kind::closed) {
        if (w.concurrency < 1) throw_usage("--concurrency must be >= 1 (got {})", w.concurrency);
    } else {
        if (!(w.rate > 0) || !std::isfinite(w.rate)) throw_usage("--rate must be > 0 requests per second (got {})", w.rate);
        if (w.rate > 1e6) throw_usage("--rate {} is above the supported 1,000,000 requests per second", w.rate);
        if (w.arrivals == arrival_kind::gamma && !(w.burstiness > 0)) throw_usage("--burstiness must be > 0 (got {})", w.burstiness);
        if (w.max_concurrency < 0) throw_usage("--max-concurrency must be >= 0 (got {})", w.max_concurrency);
    }
    if (w.n_requests < 0) throw_usage("--requests must be >= 0 (got {})", w.n_requests);
    if (w.n_requests > 10'000'000) throw_usage("--requests {} is above the supported 10,000,000", w.n_requests);
    if (w.duration_s < 0 || !std::isfinite(w.duration_s)) throw_usage("--duration must be >= 0 seconds");
    if (w.n_requests == 0 && w.duration_s == 0) throw_usage("give --requests N or --duration S");
    if (w.warmup_requests < 0) throw_usage("--warmup-requests must be >= 0 (got {})", w.warmup_requests);
    if (w.n_requests > 0 && w.warmup_requests >= w.n_requests) {
        throw_usage("--warmup-requests {} leaves no measured request of --requests {}", w.warmup_requests, w.n_requests);
    }
    if (w.think_time_s < 0) throw_usage("--think-time must be >= 0 seconds");
    if (w.n_shards < 1 || w.shard < 0 || w.shard > w.n_shards) throw_usage("--shard {}/{}: K must be in 1..N", w.shard, w.n_shards);
    if (w.n_shards > 1 && w.shard > 0) {
        const auto where = fmt::format("--shard {}/{}", w.shard, w.n_shards);
        if (w.arrivals == arrival_kind::closed && w.concurrency < w.n_shards) {
            throw_usage("{} with --concurrency {}: users are split across the shards, so every shard needs one (C >= {})", where,
                        w.concurrency, w.n_shards);
        }
        if (w.arrivals != arrival_kind::closed && w.max_concurrency > 0 && w.max_concurrency < w.n_shards) {
            throw_usage("{} with --max-concurrency {}: the cap is split across the shards, so it must be >= {}", where,
                        w.max_concurrency, w.n_shards);
        }
        if (w.n_requests > 0 && w.n_requests < w.n_shards) {
            throw_usage("{} with --requests {}: every shard needs a request (--requests >= {})", where, w.n_requests, w.n_shards);
        }
    }
}

void parse_shard(const std::string & spec, request_workload & w) {
    const auto slash = spec.find('/');
    int k = 0, n = 0;
    try {
        size_t used_k = 0, used_n = 0;
        if (slash == std::string::npos) throw std::invalid_argument("no slash");
        k = std::stoi(spec.substr(0, slash), &used_k);
        n = std::stoi(spec.substr(slash + 1), &used_n);
        if (used_k != slash || used_n != spec.size() - slash - 1) throw std::invalid_argument("trailing text");
    } catch (const std::exception &) {
        throw_usage("--shard '{}': expected K/N, e.g. 2/3 (the 2nd of 3 client processes)", spec);
    }
    if (n < 1 || n > 1024) throw_usage("--shard '{}': N must be in 1..1024", spec);
    if (k < 1 || k > n) throw_usage("--shard '{}': K must be in 1..{}", spec, n);
    w.shard = k;
    w.n_shards = n;
}

bool in_shard(const request_workload & w, uint64_t index) {
    return w.shard == 0 || w.n_shards <= 1 || index % static_cast<uint64_t>(w.n_shards) == static_cast<uint64_t>(w.shard - 1);
}

namespace {

// How many of 0..n-1 are congruent to K - 1 modulo N (all n unsharded or merged).
int shard_part(int n, const request_workload & w) {
    if (w.shard == 0 || w.n_shards <= 1) return n;
    return n >= w.shard ? (n - w.shard) / w.n_shards + 1 : 0;
}

}  // namespace

int shard_users(const request_workload & w) { return shard_part(w.concurrency, w); }
int shard_max_concurrency(const request_workload & w) { return shard_part(w.max_concurrency, w); }

std::string shard_label(const request_workload & w) {
    if (w.n_shards <= 1) return "";
    if (w.shard == 0) return fmt::format("merged {}", w.n_shards);
    return fmt::format("{}/{}", w.shard, w.n_shards);
}

std::string load_label(const request_workload & w, bool with_cap) {
    std::string s = w.arrivals == arrival_kind::closed ? fmt::format("C={}", w.concurrency) : fmt::format("{:.2f} req/s", w.rate);
    if (w.arrivals != arrival_kind::closed && with_cap && w.max_concurrency > 0) s += fmt::format(" (max {})", w.max_concurrency);
    if (w.n_shards > 1) s += w.shard == 0 ? fmt::format(", {} shards merged", w.n_shards) : fmt::format(", shard {}", shard_label(w));
    return s;
}

int default_requests(const request_workload & w) {
    if (w.arrivals == arrival_kind::closed) return std::max(16, 4 * w.concurrency);
    return std::max(32, static_cast<int>(std::ceil(20 * w.rate)));
}

std::string request_run::load_label() const { return workload::load_label(workload); }

double request_record::ttft_ms() const { return static_cast<double>(t_first_ns - t_intended_ns) / 1e6; }
double request_record::ttft_sent_ms() const {
    const int64_t from = t_sent_ns >= 0 ? t_sent_ns : t_admitted_ns;
    return static_cast<double>(t_first_ns - from) / 1e6;
}
double request_record::queue_ms() const {
    const int64_t at = t_admitted_ns >= 0 ? t_admitted_ns : t_sent_ns;
    return static_cast<double>(at - t_intended_ns) / 1e6;
}
double request_record::e2e_ms() const { return static_cast<double>(t_end_ns - t_intended_ns) / 1e6; }
double request_record::tpot_ms() const {
    if (n_output < 2) return std::numeric_limits<double>::quiet_NaN();
    return (e2e_ms() - ttft_ms()) / (n_output - 1);
}

latency_stats latency_of(std::vector<double> samples) {
    latency_stats s;
    samples.erase(std::remove_if(samples.begin(), samples.end(), [](double x) { return !std::isfinite(x); }), samples.end());
    s.n = samples.size();
    if (samples.empty()) return s;
    std::sort(samples.begin(), samples.end());
    double sum = 0;
    for (double x : samples) sum += x;
    s.mean = sum / static_cast<double>(samples.size());
    s.p50 = stats::percentile_sorted(samples, 50);
    s.p90 = stats::percentile_sorted(samples, 90);
    s.p99 = stats::percentile_sorted(samples, 99);
    s.max = samples.back();
    return s;
}

double latency_stats::at(double percentile) const {
    if (percentile == 50) return p50;
    if (percentile == 90) return p90;
    if (percentile == 99) return p99;
    // Between the kept percentiles: linear in the percentile (documented approximation).
    if (percentile < 50) return p50;
    if (percentile < 90) return p50 + (p90 - p50) * (percentile - 50) / 40;
    if (percentile < 99) return p90 + (p99 - p90) * (percentile - 90) / 9;
    return p99 + (max - p99) * (percentile - 99);
}

std::vector<int64_t> open_loop_schedule(arrival_kind a, double rate, double burstiness, size_t n, int64_t t0_ns,
                                        uint64_t seed) {
    std::vector<int64_t> out;
    out.reserve(n);
    std::mt19937_64 rng(seed);
    double t = 0;  // seconds from t0, accumulated in double: each time is computed from t0, so no drift
    for (size_t i = 0; i < n; ++i) {
        out.push_back(t0_ns + static_cast<int64_t>(std::llround(t * 1e9)));
        double gap = 1.0 / rate;
        if (a == arrival_kind::poisson) {
            gap = std::exponential_distribution<double>(rate)(rng);
        } else if (a == arrival_kind::gamma) {
            // Mean 1/rate, shape k: scale = 1/(rate·k) (vLLM's --burstiness).
            gap = std::gamma_distribution<double>(burstiness, 1.0 / (rate * burstiness))(rng);
        }
        t += gap;
    }
    return out;
}

namespace {

// Regularized incomplete beta via continued fractions (Numerical Recipes §6.4), for Clopper–Pearson.
double betacf(double a, double b, double x) {
    const int max_it = 300;
    const double eps = 1e-14, fpmin = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (std::fabs(d) < fpmin) d = fpmin;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= max_it; ++m) {
        const int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < fpmin) d = fpmin;
        c = 1 + aa / c;
        if (std::fabs(c) < fpmin) c = fpmin;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < fpmin) d = fpmin;
        c = 1 + aa / c;
        if (std::fabs(c) < fpmin) c = fpmin;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (std::fabs(del - 1) < eps) break;
    }
    return h;
}

double ibeta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const double bt = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(1 - x));
    if (x < (a + 1) / (a + b + 2)) return bt * betacf(a, b, x) / a;
    return 1 - bt * betacf(b, a, 1 - x) / b;
}

// x with ibeta(a, b, x) = p, by bisection (monotone in x).
double ibeta_inv(double a, double b, double p) {
    double lo = 0, hi = 1;
    for (int i = 0; i < 100; ++i) {
        const double mid = (lo + hi) / 2;
        (ibeta(a, b, mid) < p ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
}

}  // namespace

std::pair<double, double> proportion_ci95(size_t k, size_t n) {
    if (n == 0) return {0, 1};
    const double kd = static_cast<double>(k), nd = static_cast<double>(n);
    const double lo = k == 0 ? 0 : ibeta_inv(kd, nd - kd + 1, 0.025);
    const double hi = k == n ? 1 : ibeta_inv(kd + 1, nd - kd, 0.975);
    return {lo, hi};
}

double slo_miss(const request_metrics & m, const slo & s) {
    return std::max(m.ttft.at(s.percentile) / s.ttft_ms, m.tpot.at(s.percentile) / s.tpot_ms);
}

request_metrics compute_metrics(const std::vector<request_record> & records, const std::vector<engine::step_stats> & steps,
                                const request_workload & w) {
    request_metrics m;
    m.n_requests = records.size();
    if (records.empty()) return m;

    // Steady window (docs/metrics.md): from the intended start of the first measured request (in a
    // closed loop: from when every user has finished its first measured request, if later) to the first
    // completion after the last measured request was submitted — ramp-up, warmup and drain are outside it.
    int64_t first_measured = std::numeric_limits<int64_t>::max(), last_submit = std::numeric_limits<int64_t>::min();
    int64_t run_start = std::numeric_limits<int64_t>::max(), run_end = std::numeric_limits<int64_t>::min();
    for (const auto & r : records) {
        run_start = std::min(run_start, r.t_intended_ns);
        if (r.t_end_ns >= 0) run_end = std::max(run_end, r.t_end_ns);
        if (r.warmup) continue;
        first_measured = std::min(first_measured, r.t_intended_ns);
        last_submit = std::max(last_submit, r.t_intended_ns);
    }
    int64_t start = first_measured;
    const int users = shard_users(w);
    if (w.arrivals == arrival_kind::closed && users > 1) {
        // Ramp-up: the first time `concurrency` requests are in flight at once.
        std::vector<std::pair<int64_t, int>> ev;
        for (const auto & r : records) {
            ev.push_back({r.t_intended_ns, +1});
            if (r.t_end_ns >= 0) ev.push_back({r.t_end_ns, -1});
        }
        std::sort(ev.begin(), ev.end(), [](const auto & a, const auto & b) {
            return a.first != b.first ? a.first < b.first : a.second > b.second;
        });
        int n = 0;
        for (const auto & [t, d] : ev) {
            n += d;
            if (n >= users) {
                start = std::max(start, t);
                break;
            }
        }
    }
    if (w.arrivals == arrival_kind::closed && users > 1) {
        // ... and until every user has finished its first measured request: before that the requests in
        // flight all started together, their ages are not those of a steady state, and the window's
        // edges bias Little's law by about half an E2E over the window's length.
        std::map<int, int64_t> first_end;
        for (const auto & r : records) {
            if (r.warmup || r.user < 0 || r.t_end_ns < 0) continue;
            const auto [it, fresh] = first_end.try_emplace(r.user, r.t_end_ns);
            if (!fresh) it->second = std::min(it->second, r.t_end_ns);
        }
        if (static_cast<int>(first_end.size()) >= users) {
            int64_t turned_over = 0;
            for (const auto & [user, t] : first_end) turned_over = std::max(turned_over, t);
            start = std::max(start, turned_over);
        }
    }
    int64_t end = std::numeric_limits<int64_t>::max();
    for (const auto & r : records) {
        if (r.t_end_ns >= 0 && r.t_end_ns >= last_submit && r.t_intended_ns <= last_submit) end = std::min(end, r.t_end_ns);
    }
    if (end == std::numeric_limits<int64_t>::max()) end = run_end;
    if (end <= start) {
        start = run_start;
        end = run_end;
        m.window_is_whole_run = true;
    }
    m.window_start_ns = start;
    m.window_end_ns = end;
    m.window_s = static_cast<double>(end - start) / 1e9;
    const auto in_window = [&](int64_t t) { return t > start && t <= end; };

    std::vector<double> ttft, ttft_sent, queue, tpot, itl, itl_tok, e2e;
    std::map<std::string, size_t> failures;
    size_t completions = 0, good = 0, good_total = 0;
    double out_tokens = 0, prompt_tokens = 0, e2e_sum_window = 0;
    for (const auto & r : records) {
        for (size_t i = 0; i < r.chunk_ns.size(); ++i) {
            if (in_window(r.chunk_ns[i])) out_tokens += r.chunk_tokens[i];
        }
        if (r.t_admitted_ns >= 0 && in_window(r.t_admitted_ns)) prompt_tokens += r.n_prompt;
        if (r.warmup) continue;
        ++m.n_measured;
        if (!r.ok()) {
            ++m.n_failed;
            ++failures[engine::failure_name(r.cause)];
            continue;
        }
        ++m.n_ok;
        ttft.push_back(r.ttft_ms());
        ttft_sent.push_back(r.ttft_sent_ms());
        queue.push_back(r.queue_ms());
        e2e.push_back(r.e2e_ms());
        tpot.push_back(r.tpot_ms());
        for (size_t i = 1; i < r.chunk_ns.size(); ++i) {
            const double gap = static_cast<double>(r.chunk_ns[i] - r.chunk_ns[i - 1]) / 1e6;
            itl.push_back(gap);
            itl_tok.push_back(gap / std::max(1, r.chunk_tokens[i]));
        }
        if (r.n_output < r.n_predict) ++m.n_output_short;
        if (r.usage_completion_tokens >= 0 && r.usage_completion_tokens != r.n_output) ++m.n_usage_mismatch;
        const double t = r.tpot_ms();
        const bool meets = r.ttft_ms() <= w.objectives.ttft_ms && (!std::isfinite(t) || t <= w.objectives.tpot_ms);
        if (meets) ++good_total;
        if (in_window(r.t_end_ns)) {
            ++completions;
            e2e_sum_window += r.e2e_ms();
            if (meets) ++good;
        }
    }
    for (const auto & [k, v] : failures) m.failures.push_back({k, v});
    m.ttft = latency_of(ttft);
    m.ttft_sent = latency_of(ttft_sent);
    m.queue = latency_of(queue);
    m.tpot = latency_of(tpot);
    m.itl = latency_of(itl);
    m.itl_per_token = latency_of(itl_tok);
    m.e2e = latency_of(e2e);
    if (m.window_s > 0) {
        m.request_tps = static_cast<double>(completions) / m.window_s;
        m.output_tps = out_tokens / m.window_s;
        m.total_tps = (out_tokens + prompt_tokens) / m.window_s;
        m.goodput_rps = static_cast<double>(good) / m.window_s;
        // Little's law, L = λ·W: L is the time-average of requests in flight (intended start .. end)
        // over the window, λ the completion rate and W the mean E2E of the requests completed in it.
        double area = 0;
        for (const auto & r : records) {
            if (r.t_end_ns < 0) continue;
            const int64_t a = std::max(r.t_intended_ns, start), b = std::min(r.t_end_ns, end);
            if (b > a) area += static_cast<double>(b - a) / 1e9;
        }
        m.mean_concurrency = area / m.window_s;
        // Over the whole run L = λ·W holds by construction (every request starts and ends inside it):
        // there is nothing to check then.
        if (m.window_is_whole_run) {
            m.littles_law_error = std::numeric_limits<double>::quiet_NaN();
        } else if (completions > 0 && m.mean_concurrency > 0) {
            const double lw = m.request_tps * (e2e_sum_window / static_cast<double>(completions) / 1e3);
            m.littles_law_error = std::fabs(m.mean_concurrency - lw) / m.mean_concurrency;
        }
    }
    m.slo_fraction = m.n_ok ? static_cast<double>(good_total) / static_cast<double>(m.n_ok) : 0;
    m.slo_met = m.n_ok > 0 && m.n_failed == 0 && m.ttft.at(w.objectives.percentile) <= w.objectives.ttft_ms &&
                (m.tpot.n == 0 || m.tpot.at(w.objectives.percentile) <= w.objectives.tpot_ms);

    double step_sum = 0, dec_sum = 0, smp_sum = 0, decode_tokens = 0, decode_s = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
        const auto & s = steps[i];
        if (!in_window(s.t_start_ns)) continue;
        if (s.n_prefilling == 0 && s.n_decoding > 0) {
            const int64_t next = i + 1 < steps.size() ? steps[i + 1].t_start_ns : s.t_start_ns + s.t_decode_ns + s.t_sample_ns;
            decode_tokens += s.n_decoding;
            decode_s += static_cast<double>(next - s.t_start_ns) / 1e9;
        }
        ++m.n_steps;
        dec_sum += static_cast<double>(s.t_decode_ns) / 1e6;
        smp_sum += static_cast<double>(s.t_sample_ns) / 1e6;
        step_sum += static_cast<double>(s.t_decode_ns + s.t_sample_ns) / 1e6;
    }
    if (decode_s > 0) m.decode_tps = decode_tokens / decode_s;
    if (m.n_steps > 0) {
        m.step_ms_mean = step_sum / static_cast<double>(m.n_steps);
        m.decode_ms_mean = dec_sum / static_cast<double>(m.n_steps);
        m.sample_ms_mean = smp_sum / static_cast<double>(m.n_steps);
        m.sample_share = step_sum > 0 ? smp_sum / step_sum : 0;
    }
    return m;
}

void check_start_at(int64_t start_at_unix_ns) {
    const int64_t now = clock::unix_ns();
    if (start_at_unix_ns < now) {
        throw_usage("--start-at {}: that instant passed {:.3f} s ago; give a later one (the shards need time to start)",
                    clock::rfc3339_ms(start_at_unix_ns), static_cast<double>(now - start_at_unix_ns) / 1e9);
    }
}

request_run run_requests(engine::request_engine & eng, const request_workload & w, const request_factory & make,
                         const request_callbacks & cb, int64_t start_at_unix_ns) {
    validate(w);
    IM_CHECK(w.shard >= 1, "run_requests runs one shard, not a merged workload");
    request_run run;
    run.workload = w;
    run.engine = eng.describe();
    run.rss_start_bytes = process::rss_bytes();
    const int64_t now0 = eng.now_ns(), unix0 = clock::unix_ns();
    int64_t t0 = now0;
    run.t0_unix_ns = unix0;
    if (start_at_unix_ns > 0) {
        check_start_at(start_at_unix_ns);
        // Both clocks read together: the instant on the engine's (monotonic) clock is now + (instant − wall now).
        t0 = now0 + (start_at_unix_ns - unix0);
        run.t0_unix_ns = start_at_unix_ns;
        run.started_at = true;
    }
    run.t0_ns = t0;
    const int64_t t_stop = w.duration_s > 0 ? t0 + static_cast<int64_t>(w.duration_s * 1e9) : std::numeric_limits<int64_t>::max();
    const size_t limit = w.n_requests > 0 ? static_cast<size_t>(w.n_requests) : std::numeric_limits<size_t>::max();
    const bool closed = w.arrivals == arrival_kind::closed;
    // A shard's j-th closed-loop request is request j·N + K − 1 of the schedule (unsharded: j).
    const bool sharded = w.n_shards > 1;
    const size_t stride = sharded ? static_cast<size_t>(w.n_shards) : 1, offset = sharded ? static_cast<size_t>(w.shard - 1) : 0;
    const size_t shard_total = w.n_requests > 0 ? static_cast<size_t>(shard_part(w.n_requests, w)) : 0;
    const int cap = shard_max_concurrency(w);

    std::unordered_map<uint64_t, size_t> index_of;  // request id -> records index
    // Open loop: the schedule, generated lazily in blocks so a --duration run needs no bound up front.
    std::vector<int64_t> schedule;
    size_t next_scheduled = 0;
    uint64_t schedule_seed = w.seed;
    const auto extend_schedule = [&] {
        const size_t block = 4096;
        const int64_t from = schedule.empty() ? t0 : schedule.back();
        auto more = open_loop_schedule(w.arrivals, w.rate, w.burstiness, block + 1, from, schedule_seed++);
        schedule.insert(schedule.end(), more.begin() + (schedule.empty() ? 0 : 1), more.end());
    };
    // Closed loop: when each user may send next (-1: busy, or another shard's user).
    std::vector<int64_t> user_ready(closed ? static_cast<size_t>(w.concurrency) : 0, -1);
    for (size_t u = 0; u < user_ready.size(); ++u) {
        if (in_shard(w, u)) user_ready[u] = t0;
    }
    std::deque<size_t> waiting;  // open loop with --max-concurrency: due, held back by the cap

    size_t submitted = 0, finished = 0, failed = 0;
    int64_t last_progress = t0;
    double out_tokens = 0;
    bool stopping = false;
    std::vector<engine::event> events;

    const auto submit = [&](int64_t intended, int user, size_t index) {
        engine::request r = make(index);
        r.id = index;
        r.t_intended_ns = intended;
        request_record rec;
        rec.id = r.id;
        rec.user = user;
        rec.warmup = index < static_cast<size_t>(w.warmup_requests);
        rec.n_prompt = r.n_prompt;
        rec.n_predict = r.n_predict;
        rec.t_intended_ns = intended;
        index_of[r.id] = run.records.size();
        run.records.push_back(std::move(rec));
        ++submitted;
        eng.submit(std::move(r));
    };

    for (;;) {
        const int64_t now = eng.now_ns();
        if (!stopping && interrupt::requested()) {
            stopping = true;
            run.interrupted = true;
            eng.cancel_all();
        }
        const auto next_closed = [&] { return submitted * stride + offset; };
        const bool may_submit = !stopping && (closed ? next_closed() < limit : next_scheduled < limit || !waiting.empty());
        int64_t next_due = std::numeric_limits<int64_t>::max();
        if (may_submit && closed) {
            for (size_t u = 0; u < user_ready.size() && next_closed() < limit; ++u) {
                if (user_ready[u] < 0) continue;
                if (user_ready[u] >= t_stop) continue;
                if (user_ready[u] <= now) {
                    submit(user_ready[u], static_cast<int>(u), next_closed());
                    user_ready[u] = -1;
                } else {
                    next_due = std::min(next_due, user_ready[u]);
                }
            }
        } else if (may_submit) {
            for (;;) {
                if (next_scheduled >= schedule.size()) extend_schedule();
                const int64_t t = schedule[next_scheduled];
                if (t >= t_stop || next_scheduled >= limit) break;
                if (!in_shard(w, next_scheduled)) {  // another shard sends it
                    ++next_scheduled;
                    continue;
                }
                if (t > now) {
                    next_due = t;
                    break;
                }
                waiting.push_back(next_scheduled++);
            }
            while (!waiting.empty() && (cap == 0 || eng.in_flight() < static_cast<size_t>(cap))) {
                submit(schedule[waiting.front()], -1, waiting.front());  // intended time kept: queueing counts in TTFT
                waiting.pop_front();
            }
        }
        const bool more_to_submit = may_submit && (next_due != std::numeric_limits<int64_t>::max() || !waiting.empty());
        if (eng.in_flight() == 0 && !more_to_submit) break;

        events.clear();
        const int64_t deadline = std::min(next_due, now + 100'000'000);  // wake at least 10 times a second
        eng.poll(deadline, events);
        for (const auto & e : events) {
            const auto it = index_of.find(e.id);
            if (it == index_of.end()) continue;
            request_record & r = run.records[it->second];
            r.endpoint = e.endpoint;
            switch (e.kind) {
                case engine::event_kind::sent: r.t_sent_ns = e.t_ns; break;
                case engine::event_kind::admitted: r.t_admitted_ns = e.t_ns; break;
                case engine::event_kind::tokens:
                    if (r.t_first_ns < 0) r.t_first_ns = e.t_ns;
                    r.chunk_ns.push_back(e.t_ns);
                    r.chunk_tokens.push_back(e.n_tokens);
                    r.n_output += e.n_tokens;
                    ++r.n_chunks;
                    out_tokens += e.n_tokens;
                    break;
                case engine::event_kind::finished:
                case engine::event_kind::failed:
                    r.t_end_ns = e.t_ns;
                    r.usage_completion_tokens = e.usage_completion_tokens;
                    r.server_ttft_ms = e.server_ttft_ms;
                    r.server_gen_tps = e.server_gen_tps;
                    if (e.kind == engine::event_kind::failed) {
                        r.cause = e.cause;
                        r.message = e.message;
                        ++failed;
                    } else {
                        ++finished;
                    }
                    if (closed && r.user >= 0) {
                        user_ready[static_cast<size_t>(r.user)] = e.t_ns + static_cast<int64_t>(w.think_time_s * 1e9);
                    }
                    break;
            }
        }
        if (cb.progress && eng.now_ns() - last_progress > 100'000'000) {
            last_progress = eng.now_ns();
            const double el = std::max(0.0, static_cast<double>(last_progress - t0) / 1e9);
            cb.progress({submitted, finished, failed, eng.in_flight(), shard_total, el, el > 0 ? out_tokens / el : 0});
        }
    }
    run.steps = eng.take_steps();
    run.metrics = compute_metrics(run.records, run.steps, w);
    run.rss_end_bytes = process::rss_bytes();
    return run;
}

}  // namespace im::workload
