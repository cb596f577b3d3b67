#include "core/mann_whitney.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace im::stats {

namespace {

// counts[u] = how many of the C(m+n, m) orderings of m x's and n y's give U_x = u, by Mann & Whitney
// (1947), "On a test of whether one of two random variables is stochastically larger than the
// other", Ann. Math. Statist. 18(1), eq. (2): c(m, n, u) = c(m−1, n, u−n) + c(m, n−1, u)
// (the largest value is either an x, above all n y's, or a y). Exact in uint64 up to m + n = 40,
// where the largest count, C(40, 20) ≈ 1.4e11, is far below 2^64.
std::vector<uint64_t> u_counts(size_t m, size_t n) {
    // prev[j] is the distribution for (i−1, j); cur[j] for (i, j).
    std::vector<std::vector<uint64_t>> prev(n + 1), cur(n + 1);
    for (size_t j = 0; j <= n; ++j) prev[j] = {1};  // i = 0: U = 0 in exactly one way
    for (size_t i = 1; i <= m; ++i) {
        cur[0] = {1};  // j = 0: U = 0 in exactly one way
        for (size_t j = 1; j <= n; ++j) {
            std::vector<uint64_t> c(i * j + 1, 0);
            for (size_t u = 0; u < prev[j].size(); ++u) c[u + j] += prev[j][u];
            for (size_t u = 0; u < cur[j - 1].size(); ++u) c[u] += cur[j - 1][u];
            cur[j] = std::move(c);
        }
        std::swap(prev, cur);
    }
    return prev[n];
}

}  // namespace

double mwu_min_p_two_sided(size_t n_x, size_t n_y) {
    if (n_x == 0 || n_y == 0) return 1.0;
    // 1 / C(n_x + n_y, n_x), in logs to stay finite for large samples.
    const double log_c = std::lgamma(static_cast<double>(n_x + n_y) + 1) - std::lgamma(static_cast<double>(n_x) + 1) -
                         std::lgamma(static_cast<double>(n_y) + 1);
    return std::min(1.0, 2.0 * std::exp(-log_c));
}

std::optional<mann_whitney_result> mann_whitney_u(std::span<const double> x, std::span<const double> y) {
    if (x.empty() || y.empty()) return std::nullopt;
    const size_t m = x.size(), n = y.size(), total = m + n;

    // Midranks over the pooled sample; tie groups feed the variance correction.
    std::vector<std::pair<double, bool>> pooled;  // value, from x
    pooled.reserve(total);
    for (double v : x) pooled.emplace_back(v, true);
    for (double v : y) pooled.emplace_back(v, false);
    std::sort(pooled.begin(), pooled.end(), [](const auto & a, const auto & b) { return a.first < b.first; });
    double rank_sum_x = 0.0, tie_term = 0.0;
    bool ties = false;
    for (size_t i = 0; i < total;) {
        size_t j = i;
        while (j < total && pooled[j].first == pooled[i].first) ++j;
        const double t = static_cast<double>(j - i);
        const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
        for (size_t k = i; k < j; ++k) {
            if (pooled[k].second) rank_sum_x += mid_rank;
        }
        if (j - i > 1) {
            ties = true;
            tie_term += t * t * t - t;
        }
        i = j;
    }

    const double mn = static_cast<double>(m) * static_cast<double>(n);
    mann_whitney_result r;
    r.u_x = rank_sum_x - static_cast<double>(m) * static_cast<double>(m + 1) / 2.0;
    r.u_y = mn - r.u_x;

    if (!ties && total <= static_cast<size_t>(mwu_exact_max_total)) {
        // The null distribution is symmetric, so P(U >= max(U_x, U_y)) = P(U <= min(U_x, U_y)).
        const auto counts = u_counts(m, n);
        const auto u_min = static_cast<size_t>(std::lround(std::min(r.u_x, r.u_y)));
        double tail = 0.0, all = 0.0;
        for (size_t u = 0; u < counts.size(); ++u) {
            all += static_cast<double>(counts[u]);
            if (u <= u_min) tail += static_cast<double>(counts[u]);
        }
        r.method = mwu_method::exact;
        r.p_two_sided = std::min(1.0, 2.0 * tail / all);
        return r;
    }

    // Normal approximation: mean m·n/2, variance m·n/12·((N+1) − Σ(t³−t)/(N(N−1))) (the tie
    // correction of e.g. Lehmann, "Nonparametrics", 1975, §1.4), continuity correction 0.5.
    const double big_n = static_cast<double>(total);
    const double var = mn / 12.0 * ((big_n + 1.0) - tie_term / (big_n * (big_n - 1.0)));
    r.method = mwu_method::normal;
    if (var <= 0.0) {
        r.p_two_sided = 1.0;  // every value tied: no evidence either way
        return r;
    }
    const double z = (std::max(r.u_x, r.u_y) - mn / 2.0 - 0.5) / std::sqrt(var);
    r.p_two_sided = std::clamp(std::erfc(z / std::sqrt(2.0)), 0.0, 1.0);  // 2·(1 − Φ(z))
    return r;
}

}  // namespace im::stats
