#include "core/stats.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>

namespace im::stats {

void welford::add(double x) {
    ++n_;
    const double delta = x - mean_;
    mean_ += delta / static_cast<double>(n_);
    m2_ += delta * (x - mean_);
}

std::optional<double> welford::stddev() const {
    if (n_ < 2) {
        return std::nullopt;
    }
    return std::sqrt(m2_ / static_cast<double>(n_ - 1));
}

double percentile_sorted(std::span<const double> sorted, double p) {
    IM_CHECK(!sorted.empty());
    IM_CHECK(p >= 0.0 && p <= 100.0, fmt::format("p = {}", p));
    const double h = (static_cast<double>(sorted.size()) - 1.0) * p / 100.0;
    const auto lo = static_cast<size_t>(std::floor(h));
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    return percentile_sorted(values, p);
}

double t_critical_95(size_t dof) {
    // Two-sided 97.5% quantiles of Student's t; beyond 30 the normal value is within 2%.
    static const double table[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                   2.201, 2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                   2.080, 2.074,  2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (dof == 0) {
        return 0.0;
    }
    if (dof <= 30) {
        return table[dof];
    }
    return dof <= 60 ? 2.000 : (dof <= 120 ? 1.980 : 1.960);
}

std::vector<size_t> outliers_mad(std::span<const double> samples) {
    std::vector<size_t> out;
    if (samples.size() < 3) {
        return out;
    }
    std::vector<double> sorted(samples.begin(), samples.end());
    std::sort(sorted.begin(), sorted.end());
    const double med = percentile_sorted(sorted, 50.0);
    std::vector<double> dev;
    dev.reserve(samples.size());
    for (double x : samples) {
        dev.push_back(std::fabs(x - med));
    }
    std::sort(dev.begin(), dev.end());
    const double mad = percentile_sorted(dev, 50.0);
    if (mad == 0.0) {
        return out;
    }
    for (size_t i = 0; i < samples.size(); ++i) {
        if (std::fabs(0.6745 * (samples[i] - med) / mad) > 3.5) {
            out.push_back(i);
        }
    }
    return out;
}

summary summarize(std::span<const double> samples) {
    summary s;
    s.n = samples.size();
    if (samples.empty()) {
        return s;
    }
    welford w;
    for (double x : samples) {
        w.add(x);
    }
    std::vector<double> sorted(samples.begin(), samples.end());
    std::sort(sorted.begin(), sorted.end());
    s.mean = w.mean();
    s.stddev = w.stddev();
    s.min = sorted.front();
    s.max = sorted.back();
    s.median = percentile_sorted(sorted, 50.0);
    if (s.stddev) {
        const double half = t_critical_95(s.n - 1) * *s.stddev / std::sqrt(static_cast<double>(s.n));
        s.ci95_low = s.mean - half;
        s.ci95_high = s.mean + half;
    }
    s.n_outliers = outliers_mad(samples).size();
    return s;
}

}  // namespace im::stats
