#include "predict/step_model.h"

#include "core/error.h"
#include "core/stats.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <map>
#include <utility>

namespace im::predict {

namespace {

using vec3 = std::array<double, 3>;

// One row of a design: regressors x (unused entries 0) and the measured time y > 0.
struct design_row {
    vec3 x{};
    double y = 0;
};

struct ls_result {
    vec3 beta{};
    cov3 cov{};
    int n_params = 0;
    int dof = 0;
    double sd_rel = 0, sd_s = 0, max_rel = 0;
};

// A pivot of the unit-diagonal normal matrix is 1 - R² of its column on the columns before it: below this
// the column is a combination of the others and its coefficient is fixed at 0.
constexpr double k_min_pivot = 1e-10;

// Minimises Σ ((y - x·β) / y)² over the coefficients `wanted` marks (the others stay 0). Normal equations of
// the rows divided by y, columns scaled to unit norm (Aᵢᵢ = 1), Cholesky in column order; a column whose
// pivot falls below k_min_pivot is dropped and the fit repeated, so a later coefficient is fixed before an
// earlier one. One step of iterative refinement recovers the accuracy the squared condition number costs
// (Björck, "Numerical Methods for Least Squares Problems", 1996, §2.9).
ls_result fit_relative(std::span<const design_row> rows, std::array<bool, 3> wanted) {
    std::vector<int> cols;
    for (int j = 0; j < 3; ++j) {
        if (wanted[j]) {
            cols.push_back(j);
        }
    }
    for (;;) {
        IM_CHECK(!cols.empty(), "no coefficient left to fit");
        const size_t k = cols.size();
        vec3 scale{};
        int zero_col = -1;
        for (size_t m = 0; m < k; ++m) {
            double ss = 0;
            for (const auto & r : rows) {
                const double z = r.x[cols[m]] / r.y;
                ss += z * z;
            }
            scale[m] = std::sqrt(ss);
            if (!(scale[m] > 0)) {
                zero_col = static_cast<int>(m);
                break;
            }
        }
        if (zero_col >= 0) {
            cols.erase(cols.begin() + zero_col);
            continue;
        }
        const auto z_of = [&](const design_row & r, size_t m) { return r.x[cols[m]] / (r.y * scale[m]); };
        double a[3][3] = {};
        vec3 rhs{};
        for (const auto & r : rows) {
            for (size_t m = 0; m < k; ++m) {
                const double zm = z_of(r, m);
                rhs[m] += zm;  // the weighted target y / y = 1
                for (size_t n = 0; n < k; ++n) {
                    a[m][n] += zm * z_of(r, n);
                }
            }
        }
        double l[3][3] = {};
        int bad = -1;
        for (size_t m = 0; m < k && bad < 0; ++m) {
            for (size_t n = 0; n <= m; ++n) {
                double s = a[m][n];
                for (size_t q = 0; q < n; ++q) {
                    s -= l[m][q] * l[n][q];
                }
                if (n == m) {
                    if (!(s > k_min_pivot)) {
                        bad = static_cast<int>(m);
                        break;
                    }
                    l[m][m] = std::sqrt(s);
                } else {
                    l[m][n] = s / l[n][n];
                }
            }
        }
        if (bad >= 0) {
            cols.erase(cols.begin() + bad);
            continue;
        }
        // A⁻¹ = L⁻ᵀ L⁻¹
        double li[3][3] = {};
        for (size_t m = 0; m < k; ++m) {
            li[m][m] = 1.0 / l[m][m];
            for (size_t n = 0; n < m; ++n) {
                double s = 0;
                for (size_t q = n; q < m; ++q) {
                    s -= l[m][q] * li[q][n];
                }
                li[m][n] = s / l[m][m];
            }
        }
        double ainv[3][3] = {};
        for (size_t m = 0; m < k; ++m) {
            for (size_t n = 0; n < k; ++n) {
                double s = 0;
                for (size_t q = std::max(m, n); q < k; ++q) {
                    s += li[q][m] * li[q][n];
                }
                ainv[m][n] = s;
            }
        }
        const auto solve = [&](const vec3 & v) {
            vec3 out{};
            for (size_t m = 0; m < k; ++m) {
                for (size_t n = 0; n < k; ++n) {
                    out[m] += ainv[m][n] * v[n];
                }
            }
            return out;
        };
        vec3 bs = solve(rhs);
        vec3 refine_rhs{};
        for (const auto & r : rows) {
            double resid = 1.0;
            for (size_t n = 0; n < k; ++n) {
                resid -= z_of(r, n) * bs[n];
            }
            for (size_t m = 0; m < k; ++m) {
                refine_rhs[m] += z_of(r, m) * resid;
            }
        }
        const vec3 delta = solve(refine_rhs);
        for (size_t m = 0; m < k; ++m) {
            bs[m] += delta[m];
        }

        ls_result out;
        for (size_t m = 0; m < k; ++m) {
            out.beta[cols[m]] = bs[m] / scale[m];
        }
        double rss_rel = 0, rss_s = 0;
        for (const auto & r : rows) {
            const double fit = r.x[0] * out.beta[0] + r.x[1] * out.beta[1] + r.x[2] * out.beta[2];
            const double rel = (r.y - fit) / r.y;
            rss_rel += rel * rel;
            rss_s += (r.y - fit) * (r.y - fit);
            out.max_rel = std::max(out.max_rel, std::fabs(rel));
        }
        out.n_params = static_cast<int>(k);
        out.dof = static_cast<int>(rows.size()) - out.n_params;
        if (out.dof > 0) {
            out.sd_rel = std::sqrt(rss_rel / out.dof);
            out.sd_s = std::sqrt(rss_s / out.dof);
        }
        const double s2 = out.sd_rel * out.sd_rel;
        for (size_t m = 0; m < k; ++m) {
            for (size_t n = 0; n < k; ++n) {
                out.cov[cols[m]][cols[n]] = s2 * ainv[m][n] / (scale[m] * scale[n]);
            }
        }
        return out;
    }
}

double quad_form(const cov3 & c, const vec3 & x) {
    double s = 0;
    for (size_t m = 0; m < 3; ++m) {
        for (size_t n = 0; n < 3; ++n) {
            s += x[m] * c[m][n] * x[n];
        }
    }
    return std::max(s, 0.0);
}

double dot(const vec3 & x, const vec3 & b) { return x[0] * b[0] + x[1] * b[1] + x[2] * b[2]; }

// A prediction before it becomes an interval: sd is the prediction's standard deviation.
struct estimate {
    double value = 0;
    double sd = 0;       // of the fit and the probes' noise: Student t with dof
    double bias_sd = 0;  // of the probes against the measured sweep (probe_bias_rel · value): normal
    int dof = 0;
    bool extrapolated = false;
};

double half_width(const estimate & e) {
    const double fit = stats::t_critical_95(static_cast<size_t>(std::max(e.dof, 0))) * e.sd;
    const double bias = 1.959964 * e.bias_sd;
    return std::sqrt(fit * fit + bias * bias);
}

interval time_interval(const estimate & e) {
    const double h = half_width(e);
    return {e.value, std::max(0.0, e.value - h), e.value + h, e.dof, e.extrapolated};
}

// tokens / time, bounds from the time's bounds.
interval rate_interval(double tokens, const interval & t) {
    if (tokens == 0) {
        return {0, 0, 0, t.dof, t.extrapolated};
    }
    const double inf = std::numeric_limits<double>::infinity();
    return {t.value > 0 ? tokens / t.value : inf, t.hi > 0 ? tokens / t.hi : 0, t.lo > 0 ? tokens / t.lo : inf,
            t.dof, t.extrapolated};
}

vec3 coef(const regime & r) { return {r.a, r.b, r.c}; }

double step_value(const regime & r, double w, double d) { return r.a + r.b * w + r.c * w * d; }

// The regime holding W, else the nearest in log W (the lower on a tie), flagged.
std::pair<const regime *, bool> locate(const step_fit & f, int workers) {
    IM_CHECK(!f.regimes.empty(), "a step_fit without regimes (fit_steps never returns one)");
    IM_CHECK(workers >= 1, fmt::format("workers = {}", workers));
    const regime * best = nullptr;
    double best_dist = std::numeric_limits<double>::infinity();
    for (const auto & r : f.regimes) {
        double dist = 0;
        if (workers < r.w_min) {
            dist = std::log(static_cast<double>(r.w_min) / workers);
        } else if (workers > r.w_max) {
            dist = std::log(static_cast<double>(workers) / r.w_max);
        }
        if (dist < best_dist) {
            best = &r;
            best_dist = dist;
        }
    }
    return {best, best_dist > 0};
}

// Depths within the probed range, with room for rounding and for half a cell: a probe's depth is the centre
// of its timed window, a whole or half cell (an even window centred on depth p records p + 0.5, and the
// sweep's first step at p is no extrapolation).
bool depth_outside(const regime & r, double lo, double hi) {
    const double slack = 0.5 + 1e-9 * std::max(1.0, r.depth_max);
    return lo < r.depth_min - slack || hi > r.depth_max + slack;
}

void check_step_sample(const step_sample & s, size_t i) {
    if (s.workers < 1 || !std::isfinite(s.depth) || s.depth < 0 || !std::isfinite(s.seconds) || !(s.seconds > 0)) {
        throw_runtime("step probe {} (W = {}, depth = {}, {} s) is not a usable timing: W must be >= 1, the depth "
                      ">= 0 and the time finite and > 0",
                      i, s.workers, s.depth, s.seconds);
    }
}

// One regime's fit over the samples whose W is in [w_lo, w_hi].
regime fit_regime(std::span<const step_sample> samples, int w_lo, int w_hi) {
    std::vector<design_row> rows;
    std::vector<const step_sample *> in;
    for (const auto & s : samples) {
        if (s.workers >= w_lo && s.workers <= w_hi) {
            in.push_back(&s);
            const double w = s.workers;
            rows.push_back({{1.0, w, w * s.depth}, s.seconds});
        }
    }
    // c is identified by depth varying within one W; across W it would be confounded with b.
    bool two_depths = false;
    for (const auto * s : in) {
        for (const auto * o : in) {
            if (o->workers == s->workers && o->depth != s->depth) {
                two_depths = true;
            }
        }
    }
    const ls_result ls = fit_relative(rows, {true, w_hi > w_lo, two_depths});
    regime r;
    r.w_min = w_lo;
    r.w_max = w_hi;
    r.depth_min = std::numeric_limits<double>::infinity();
    r.depth_max = 0;
    for (const auto * s : in) {
        r.depth_min = std::min(r.depth_min, s->depth);
        r.depth_max = std::max(r.depth_max, s->depth);
    }
    r.a = ls.beta[0];
    r.b = ls.beta[1];
    r.c = ls.beta[2];
    r.resid_sd_s = ls.sd_s;
    r.resid_sd_rel = ls.sd_rel;
    r.max_rel_residual = ls.max_rel;
    r.n_samples = static_cast<int>(rows.size());
    r.n_params = ls.n_params;
    r.dof = ls.dof;
    r.cov = ls.cov;
    return r;
}

estimate step_estimate(const step_fit & f, int workers, double depth) {
    const auto [r, outside] = locate(f, workers);
    const double w = workers;
    const vec3 x{1.0, w, w * depth};
    estimate e;
    e.value = dot(x, coef(*r));
    const double noise = r->resid_sd_rel * e.value;
    e.sd = std::sqrt(quad_form(r->cov, x) + noise * noise);
    e.bias_sd = f.probe_bias_rel * e.value;
    e.dof = r->dof;
    e.extrapolated = outside || depth_outside(*r, depth, depth);
    return e;
}

estimate tg_estimate(const step_fit & f, int workers, int n_prompt, int n_predict) {
    IM_CHECK(n_prompt >= 0 && n_predict >= 0, fmt::format("n_prompt = {}, n_predict = {}", n_prompt, n_predict));
    const auto [r, outside] = locate(f, workers);
    estimate e;
    e.dof = r->dof;
    if (n_predict == 0) {
        return e;
    }
    const double w = workers, n = n_predict, p = n_prompt;
    const double tri = n * (n - 1) / 2;  // Σᵢ i, i = 0..n-1
    const vec3 x{n, n * w, w * (n * p + tri)};
    e.value = dot(x, coef(*r));
    // Σᵢ tᵢ² for tᵢ = u + k·i: n·u² + 2·u·k·Σi + k²·Σi²
    const double u = step_value(*r, w, p), k = r->c * w;
    const double sum_sq = n * u * u + 2 * u * k * tri + k * k * (n - 1) * n * (2 * n - 1) / 6;
    e.sd = std::sqrt(quad_form(r->cov, x) + r->resid_sd_rel * r->resid_sd_rel * std::max(sum_sq, 0.0));
    e.bias_sd = f.probe_bias_rel * e.value;  // the same for every step: it adds up, it does not average out
    e.extrapolated = outside || depth_outside(*r, p, p + n - 1);
    return e;
}

// `repeats` (>= 0) independent calls of `tokens` each: the coefficients' error is shared by every call (it
// scales with repeats), the noise is not (it grows with sqrt(repeats)), the probe bias is (it scales).
estimate pp_estimate(const prefill_fit & f, int64_t tokens, double repeats = 1) {
    IM_CHECK(tokens >= 0 && repeats >= 0, fmt::format("tokens = {}, repeats = {}", tokens, repeats));
    IM_CHECK(f.n_samples > 0, "a prefill_fit without samples (fit_prefill never returns one)");
    estimate e;
    e.dof = f.dof;
    if (tokens == 0 || repeats == 0) {
        return e;
    }
    const double n = static_cast<double>(tokens);
    const vec3 x{1.0, n, n * n};
    const double one = dot(x, {f.e, f.f, f.g});
    const double noise = f.resid_sd_rel * one;
    e.value = repeats * one;
    e.sd = std::sqrt(repeats * repeats * quad_form(f.cov, x) + repeats * noise * noise);
    e.bias_sd = f.probe_bias_rel * e.value;
    e.extrapolated = tokens < f.tokens_min || tokens > f.tokens_max;
    return e;
}

// The sum of independent predictions: half-widths in quadrature, the smallest dof, extrapolated if any is.
interval sum_interval(std::initializer_list<estimate> parts) {
    double value = 0, h2 = 0;
    int dof = std::numeric_limits<int>::max();
    bool extrapolated = false;
    for (const auto & e : parts) {
        const double h = half_width(e);
        value += e.value;
        h2 += h * h;
        dof = std::min(dof, e.dof);
        extrapolated = extrapolated || e.extrapolated;
    }
    const double h = std::sqrt(h2);
    return {value, std::max(0.0, value - h), value + h, dof, extrapolated};
}

// The samples checked one by one, and their distinct W ascending; none is a runtime error.
std::vector<int> distinct_workers(std::span<const step_sample> samples) {
    if (samples.empty()) {
        throw_runtime("no decode-step probes to fit: the --fast step probes produced no timings (run without --fast "
                      "to measure every row)");
    }
    std::vector<int> ws;
    for (size_t i = 0; i < samples.size(); ++i) {
        check_step_sample(samples[i], i);
        ws.push_back(samples[i].workers);
    }
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    return ws;
}

}  // namespace

step_fit fit_steps(std::span<const step_sample> samples, double tolerance) {
    IM_CHECK(tolerance > 0, fmt::format("tolerance = {}", tolerance));
    const std::vector<int> ws = distinct_workers(samples);

    step_fit out;
    size_t start = 0;
    regime current = fit_regime(samples, ws[0], ws[0]);
    for (size_t k = 1; k < ws.size(); ++k) {
        regime grown = fit_regime(samples, ws[start], ws[k]);
        // Noise the two sides already show on their own (probe-to-probe drift that a window's spread does not
        // see) is not a kernel switch: joining W_k must cost more than the tolerance beyond it.
        const double own = std::max(current.max_rel_residual, fit_regime(samples, ws[k], ws[k]).max_rel_residual);
        if (grown.max_rel_residual <= tolerance + own) {
            current = grown;
            continue;
        }
        out.regimes.push_back(current);
        out.regime_starts.push_back(ws[k]);
        start = k;
        current = fit_regime(samples, ws[k], ws[k]);
    }
    out.regimes.push_back(current);
    for (const auto & r : out.regimes) {
        out.max_rel_residual = std::max(out.max_rel_residual, r.max_rel_residual);
    }
    return out;
}

interval predict_step_s(const step_fit & f, int workers, double depth) {
    return time_interval(step_estimate(f, workers, depth));
}

interval predict_tg_s(const step_fit & f, int workers, int n_prompt, int n_predict) {
    return time_interval(tg_estimate(f, workers, n_prompt, n_predict));
}

double attention_s(const step_fit & f, int workers, double depth) {
    return locate(f, workers).first->c * workers * depth;
}

namespace {

// A prefill or sampling probe's timing: its count (tokens, sequences) >= 1, its time finite and > 0.
void check_counted(const prefill_sample & s, size_t i, const char * what, const char * unit) {
    if (s.tokens < 1 || !std::isfinite(s.seconds) || !(s.seconds > 0)) {
        throw_runtime("{} {} ({} {}, {} s) is not a usable timing: {} must be >= 1 and the time finite and > 0", what, i,
                      s.tokens, unit, s.seconds, unit);
    }
}

}  // namespace

prefill_fit fit_prefill(std::span<const prefill_sample> samples) {
    if (samples.empty()) {
        throw_runtime("no prefill probes to fit: the --fast prefill probes produced no timings (run without --fast "
                      "to measure every row)");
    }
    std::vector<design_row> rows;
    std::vector<int64_t> ns;
    for (size_t i = 0; i < samples.size(); ++i) {
        const auto & s = samples[i];
        check_counted(s, i, "prefill probe", "tokens");
        const double n = static_cast<double>(s.tokens);
        rows.push_back({{1.0, n, n * n}, s.seconds});
        ns.push_back(s.tokens);
    }
    std::sort(ns.begin(), ns.end());
    const int64_t n_min = ns.front(), n_max = ns.back();
    ns.erase(std::unique(ns.begin(), ns.end()), ns.end());

    // One N cannot separate e from f: keep the prompt rate, T = f·N.
    ls_result ls = fit_relative(rows, {ns.size() > 1, true, false});
    bool quadratic = false;
    if (ns.size() >= 3 && rows.size() >= 4) {
        const ls_result q = fit_relative(rows, {true, true, true});
        const double g = q.beta[2];
        const double nm = static_cast<double>(n_max);
        const double t_max = q.beta[0] + q.beta[1] * nm + g * nm * nm;
        const double se_g = std::sqrt(std::max(q.cov[2][2], 0.0));
        if (q.n_params == 3 && q.dof > 0 && g > 0 && g > stats::t_critical_95(static_cast<size_t>(q.dof)) * se_g &&
            g * nm * nm > 1e-6 * t_max) {
            ls = q;
            quadratic = true;
        }
    }
    prefill_fit f;
    f.e = ls.beta[0];
    f.f = ls.beta[1];
    f.g = ls.beta[2];
    f.quadratic = quadratic;
    f.tokens_min = n_min;
    f.tokens_max = n_max;
    f.resid_sd_s = ls.sd_s;
    f.resid_sd_rel = ls.sd_rel;
    f.max_rel_residual = ls.max_rel;
    f.n_samples = static_cast<int>(rows.size());
    f.n_params = ls.n_params;
    f.dof = ls.dof;
    f.cov = ls.cov;
    return f;
}

interval predict_pp_s(const prefill_fit & f, int64_t tokens) { return time_interval(pp_estimate(f, tokens)); }

sampling_curve fit_sampling(std::span<const prefill_sample> samples) {
    if (samples.empty()) {
        throw_runtime("no sampling probes: the --fast sampling probes produced no timings (run without --fast to "
                      "measure every level)");
    }
    std::map<int64_t, std::vector<double>> by_n;
    for (size_t i = 0; i < samples.size(); ++i) {
        const auto & s = samples[i];
        check_counted(s, i, "sampling probe", "sequences");
        by_n[s.tokens].push_back(s.seconds);
    }
    sampling_curve c;
    double ss = 0;
    for (auto & [n, times] : by_n) {
        const double med = stats::percentile(times, 50);
        c.n.push_back(n);
        c.seconds.push_back(med);
        c.probes.push_back(static_cast<int>(times.size()));
        for (const double t : times) {
            const double r = t / med - 1;
            ss += r * r;
            c.max_rel_residual = std::max(c.max_rel_residual, std::abs(r));
        }
    }
    c.n_samples = static_cast<int>(samples.size());
    c.dof = c.n_samples - static_cast<int>(c.n.size());
    c.resid_sd_rel = c.dof > 0 ? std::sqrt(ss / c.dof) : 0.0;
    return c;
}

namespace {

estimate sampling_estimate(const sampling_curve & c, int64_t sequences, double repeats) {
    IM_CHECK(!c.n.empty() && c.n.size() == c.seconds.size() && c.n.size() == c.probes.size(),
             "a sampling_curve without probes (fit_sampling never returns one)");
    estimate e;
    e.dof = c.dof;
    if (sequences <= 0 || repeats == 0) return e;
    const double n = static_cast<double>(sequences);
    const auto var_at = [&](size_t i) {
        const double sd = c.resid_sd_rel * c.seconds[i];
        return sd * sd / c.probes[i];
    };
    double one = 0, var = 0;
    if (c.n.size() == 1 || sequences < c.n.front()) {
        const double k = n / static_cast<double>(c.n.front());  // proportional to N
        one = k * c.seconds.front();
        var = k * k * var_at(0);
    } else {
        // The segment holding n, or the last one beyond the largest N.
        size_t i = 0;
        while (i + 2 < c.n.size() && sequences > c.n[i + 1]) ++i;
        const double t = (n - static_cast<double>(c.n[i])) / static_cast<double>(c.n[i + 1] - c.n[i]);
        one = (1 - t) * c.seconds[i] + t * c.seconds[i + 1];
        var = (1 - t) * (1 - t) * var_at(i) + t * t * var_at(i + 1);
        if (sequences > c.n.back() && one < c.seconds.back()) {  // a falling last segment: noise, not a trend
            const double k = n / static_cast<double>(c.n.back());
            one = k * c.seconds.back();
            var = k * k * var_at(c.n.size() - 1);
        }
    }
    const double noise = c.resid_sd_rel * one;
    e.value = repeats * one;
    e.sd = std::sqrt(repeats * repeats * var + repeats * noise * noise);
    e.bias_sd = c.probe_bias_rel * e.value;
    e.extrapolated = sequences < c.n.front() || sequences > c.n.back();
    return e;
}

}  // namespace

interval predict_sampling_s(const sampling_curve & c, int64_t n) { return time_interval(sampling_estimate(c, n, 1)); }

row_prediction predict_row(const step_fit & s, const prefill_fit & p, int workers, int n_prompt, int n_predict) {
    IM_CHECK(workers >= 1 && n_prompt >= 0 && n_predict >= 0,
             fmt::format("workers = {}, n_prompt = {}, n_predict = {}", workers, n_prompt, n_predict));
    const double w = workers;
    const estimate pp = pp_estimate(p, static_cast<int64_t>(workers) * n_prompt);
    const estimate tg = tg_estimate(s, workers, n_prompt, n_predict);
    const interval total = sum_interval({pp, tg});

    row_prediction r;
    r.workers = workers;
    r.n_prompt = n_prompt;
    r.n_predict = n_predict;
    r.t_pp_s = time_interval(pp);
    r.t_tg_s = time_interval(tg);
    r.prompt_tps = rate_interval(w * n_prompt, r.t_pp_s);
    r.gen_tps = rate_interval(w * n_predict, r.t_tg_s);
    r.overall_tps = rate_interval(w * (n_prompt + n_predict), total);
    r.extrapolated = total.extrapolated;
    return r;
}

continuous_prediction predict_continuous(const step_fit & s, const prefill_fit & p, const sampling_curve * sampling,
                                         int concurrency, int n_prompt, int n_output) {
    IM_CHECK(concurrency >= 1 && n_prompt >= 1 && n_output >= 1,
             fmt::format("concurrency = {}, n_prompt = {}, n_output = {}", concurrency, n_prompt, n_output));
    const double c = concurrency, n = n_output;
    const estimate pp = pp_estimate(p, static_cast<int64_t>(concurrency) * n_prompt);
    const estimate tg = tg_estimate(s, concurrency, n_prompt, n_output - 1);
    // Sampling per step of C sequences: once in the prefill step, n - 1 times in the decode steps.
    // No sampling: nothing to add, and no dof to limit the others'.
    const auto sampled = [&](double steps) {
        estimate none;
        none.dof = std::numeric_limits<int>::max();
        return sampling ? sampling_estimate(*sampling, concurrency, steps) : none;
    };
    const estimate s_one = sampled(1);

    continuous_prediction r;
    r.concurrency = concurrency;
    r.n_prompt = n_prompt;
    r.n_output = n_output;
    if (sampling) r.sampling_step_s = time_interval(s_one);
    r.ttft_s = sum_interval({pp, s_one});
    // One sampling estimate over all n steps: its coefficient error is the same in every step.
    r.e2e_s = sum_interval({pp, tg, sampled(n)});
    if (n_output > 1) {
        const interval decode = sum_interval({tg, sampled(n - 1)});
        r.tpot_s = {decode.value / (n - 1), decode.lo / (n - 1), decode.hi / (n - 1), decode.dof, decode.extrapolated};
    }
    r.output_tps = rate_interval(c * n, r.e2e_s);
    r.request_tps = rate_interval(c, r.e2e_s);
    r.extrapolated = r.e2e_s.extrapolated;
    return r;
}

step_parts decompose(double step_s, double weight_flops, double matmul_rate_flops_per_s, double attention_s,
                     double sampling_s) {
    IM_CHECK(step_s >= 0 && weight_flops >= 0 && matmul_rate_flops_per_s > 0 && attention_s >= 0 && sampling_s >= 0,
             fmt::format("step_s = {}, weight_flops = {}, rate = {}, attention_s = {}, sampling_s = {}", step_s,
                         weight_flops, matmul_rate_flops_per_s, attention_s, sampling_s));
    step_parts p;
    p.step_s = step_s;
    p.matmul_s = weight_flops / matmul_rate_flops_per_s;
    p.attention_s = attention_s;
    p.sampling_s = sampling_s;
    const double rest = step_s - (p.matmul_s + attention_s + sampling_s);
    p.overcommitted = rest < 0;
    p.remainder_s = std::max(rest, 0.0);
    return p;
}

std::vector<regime_change> regime_changes(const step_fit & f, double depth) {
    std::vector<regime_change> out;
    for (size_t k = 1; k < f.regimes.size(); ++k) {
        const int w = f.regimes[k].w_min;
        regime_change c;
        c.workers = w;
        c.workers_before = f.regimes[k - 1].w_max;
        const regime & before = f.regimes[k - 1];
        // A regime of one W has no trend in W (b = 0): the per-sequence cost at its W stands for it.
        c.trend_is_one_w = before.w_min == before.w_max;
        c.per_seq_trend_s = !c.trend_is_one_w ? step_value(before, w, depth) / w
                                                        : step_value(before, before.w_max, depth) / before.w_max;
        c.per_seq_s = step_value(f.regimes[k], w, depth) / w;
        c.jump_rel = c.per_seq_trend_s > 0 ? c.per_seq_s / c.per_seq_trend_s - 1 : 0;
        out.push_back(c);
    }
    return out;
}

step_fit fit_steps_at(std::span<const step_sample> samples, std::span<const int> starts) {
    const std::vector<int> ws = distinct_workers(samples);
    for (size_t k = 0; k < starts.size(); ++k) {
        IM_CHECK(starts[k] > ws.front() && std::binary_search(ws.begin(), ws.end(), starts[k]) &&
                     (k == 0 || starts[k] > starts[k - 1]),
                 fmt::format("regime start {} is not a sampled W above {} in ascending order", starts[k], ws.front()));
    }
    step_fit out;
    int lo = ws.front();
    for (size_t k = 0; k <= starts.size(); ++k) {
        const auto end = k < starts.size() ? std::lower_bound(ws.begin(), ws.end(), starts[k]) : ws.end();
        out.regimes.push_back(fit_regime(samples, lo, *(end - 1)));
        if (k < starts.size()) {
            out.regime_starts.push_back(starts[k]);
            lo = starts[k];
        }
    }
    for (const auto & r : out.regimes) {
        out.max_rel_residual = std::max(out.max_rel_residual, r.max_rel_residual);
    }
    return out;
}

const char * switch_side_name(switch_side s) {
    switch (s) {
        case switch_side::before: return "before";
        case switch_side::after: return "after";
        case switch_side::neither: return "neither";
    }
    return "?";
}

side_test classify_step(const regime & before, const regime & after, const step_sample & s, double tolerance) {
    IM_CHECK(tolerance > 0, fmt::format("tolerance = {}", tolerance));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto resid = [&](const regime & r) {
        return r.w_max > r.w_min ? (s.seconds - step_value(r, s.workers, s.depth)) / s.seconds : nan;
    };
    side_test t;
    t.resid_before_rel = resid(before);
    t.resid_after_rel = resid(after);
    const double rb = std::fabs(t.resid_before_rel), ra = std::fabs(t.resid_after_rel);
    const bool kb = !std::isnan(rb), ka = !std::isnan(ra);
    if (kb && rb <= tolerance && (!ka || ra > tolerance || rb <= ra)) {
        t.side = switch_side::before;
    } else if (ka && ra <= tolerance) {
        t.side = switch_side::after;
    } else if (kb && !ka) {
        t.side = switch_side::after;  // off the old trend; the new regime's trend in W is unknown
    } else if (ka && !kb) {
        t.side = switch_side::before;  // off the new fit; the old regime's trend in W is unknown
    } else {
        t.side = switch_side::neither;
    }
    return t;
}

int switch_probe_bound(int w_before, int w_after) {
    IM_CHECK(w_after > w_before, fmt::format("w_before = {}, w_after = {}", w_before, w_after));
    int n = 0;
    for (int gap = w_after - w_before; gap > 1; gap = (gap + 1) / 2) {
        ++n;
    }
    return n;
}

namespace {

// max |t - fit| / t over the samples of W = `workers` in the regime that holds it.
double worst_residual_at(const step_fit & f, std::span<const step_sample> samples, int workers) {
    const regime * r = locate(f, workers).first;
    double worst = 0;
    for (const auto & s : samples) {
        if (s.workers == workers) {
            worst = std::max(worst, std::fabs(s.seconds - step_value(*r, s.workers, s.depth)) / s.seconds);
        }
    }
    return worst;
}

std::string fmt_depth(double d) { return fmt::format("{:.0f}", d); }

}  // namespace

switch_search locate_switches(std::span<const step_sample> samples, std::span<const double> spread_rel,
                              double tolerance, double depth, const step_prober & probe) {
    IM_CHECK(spread_rel.empty() || spread_rel.size() == samples.size(),
             fmt::format("{} spreads for {} samples", spread_rel.size(), samples.size()));
    const step_fit first = fit_steps(samples, tolerance);
    const auto spread_of = [&](size_t i) { return spread_rel.empty() ? 0.0 : spread_rel[i]; };
    switch_search out;
    std::vector<step_sample> all(samples.begin(), samples.end());
    std::vector<int> starts;
    bool can_probe = true;
    for (size_t k = 0; k < first.regime_starts.size(); ++k) {
        const regime & before = first.regimes[k];
        const regime & after = first.regimes[k + 1];
        kernel_switch sw;
        sw.sweep_before = sw.w_before = before.w_max;
        sw.sweep_after = sw.w_after = after.w_min;
        sw.probe_bound = switch_probe_bound(sw.sweep_before, sw.sweep_after);
        if (sw.probe_bound > 0) {
            // Bisection needs W = sweep_after on the new side at this depth; otherwise the change shows only at
            // other depths and nothing in between can be told apart here.
            size_t at = samples.size();
            for (size_t i = 0; i < samples.size(); ++i) {
                if (samples[i].workers == sw.sweep_after &&
                    (at == samples.size() || std::fabs(samples[i].depth - depth) < std::fabs(samples[at].depth - depth))) {
                    at = i;
                }
            }
            // Only the previous trend is asked: the new regime's fit contains this very sample.
            const auto t = classify_step(before, after, samples[at], std::max(tolerance, 2 * spread_of(at)));
            if (t.side == switch_side::before ||
                (!std::isnan(t.resid_before_rel) && std::fabs(t.resid_before_rel) <= std::max(tolerance, 2 * spread_of(at)))) {
                sw.stopped = fmt::format("at depth {} W = {} still follows the W <= {} trend", fmt_depth(samples[at].depth),
                                         sw.sweep_after, sw.sweep_before);
            } else if (std::isnan(t.resid_before_rel) && std::isnan(t.resid_after_rel)) {
                sw.stopped = "neither side's fit spans two W";
            }
        }
        while (!sw.located() && sw.stopped.empty()) {
            if (static_cast<int>(sw.probes.size()) >= sw.probe_bound) {
                sw.stopped = "probe bound reached";
                break;
            }
            if (!can_probe) {
                sw.stopped = "probe budget spent";
                break;
            }
            const int m = sw.w_before + (sw.w_after - sw.w_before) / 2;
            const auto got = probe(m);
            if (!got) {
                can_probe = false;
                continue;
            }
            IM_CHECK(got->sample.workers == m, fmt::format("probed W = {} for W = {}", got->sample.workers, m));
            check_step_sample(got->sample, all.size());
            switch_probe p{*got, {}, std::max(tolerance, 2 * got->spread_rel)};
            p.test = classify_step(before, after, got->sample, p.tolerance);
            (p.test.side == switch_side::before ? sw.w_before : sw.w_after) = m;
            all.push_back(got->sample);
            sw.probes.push_back(p);
            ++out.n_probes;
        }
        starts.push_back(sw.w_after);
        out.switches.push_back(std::move(sw));
    }

    // The fit across W must hold at every sampled W of the input (a row of the sweep): one that misses its
    // regime's fit gets a regime of its own, so its row rests on its own probes.
    std::vector<int> ws, all_ws;
    for (const auto & s : samples) ws.push_back(s.workers);
    for (const auto & s : all) all_ws.push_back(s.workers);
    for (auto * v : {&ws, &all_ws}) {
        std::sort(v->begin(), v->end());
        v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    out.fit = fit_steps_at(all, starts);
    for (size_t round = 0; round < ws.size(); ++round) {
        int misfit = 0;
        for (const int w : ws) {
            const regime * r = locate(out.fit, w).first;
            if (r->w_min < r->w_max &&
                worst_residual_at(out.fit, all, w) > tolerance + fit_regime(all, w, w).max_rel_residual) {
                misfit = w;
                break;
            }
        }
        if (misfit == 0) {
            break;
        }
        out.isolated.push_back(misfit);
        if (misfit > all_ws.front()) {
            starts.push_back(misfit);
        }
        if (const auto next = std::upper_bound(all_ws.begin(), all_ws.end(), misfit); next != all_ws.end()) {
            starts.push_back(*next);
        }
        std::sort(starts.begin(), starts.end());
        starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
        out.fit = fit_steps_at(all, starts);
    }
    return out;
}

}  // namespace im::predict
