#pragma once

#include <cstdint>
#include <optional>
#include <span>

// The Mann–Whitney U test (Wilcoxon rank-sum test) of two independent samples: does one tend to give
// larger values than the other? Distribution-free, so it suits benchmark samples, which are skewed
// and have outliers (a t-test would assume normality that repetitions of a run do not have).
namespace im::stats {

enum class mwu_method {
    exact,   // the exact null distribution of U (no ties, small samples)
    normal,  // the normal approximation with tie and continuity correction
};

struct mann_whitney_result {
    double u_x = 0.0;        // U of x: pairs (x_i, y_j) with x_i > y_j, plus half the tied pairs
    double u_y = 0.0;        // n_x·n_y − u_x
    double p_two_sided = 1.0;
    mwu_method method = mwu_method::exact;
};

// Two-sided test of x against y. Empty when either sample is empty. Exact when there are no ties
// and n_x + n_y <= exact_max_total (Mann & Whitney 1947's recursion; the counts are exact up to
// there); otherwise the normal approximation with tie correction and continuity correction (the
// choices scipy.stats.mannwhitneyu makes with method="exact" / method="asymptotic").
// Pure function; thread-safe.
std::optional<mann_whitney_result> mann_whitney_u(std::span<const double> x, std::span<const double> y);

inline constexpr int mwu_exact_max_total = 40;

// The smallest two-sided p the exact test can give with these sample sizes: 2 / C(n_x + n_y, n_x)
// (all of one sample above all of the other), capped at 1. With 3 and 3 repetitions it is 0.1, so
// no difference can be significant at alpha = 0.05; with 4 and 4 it is 0.029.
double mwu_min_p_two_sided(size_t n_x, size_t n_y);

}  // namespace im::stats
