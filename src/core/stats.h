#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace im::stats {

// Welford's online mean and sample variance, in double (DESIGN §2). Not thread-safe.
class welford {
  public:
    void add(double x);
    size_t n() const { return n_; }
    double mean() const { return mean_; }
    // Sample standard deviation (n-1); empty when n < 2: never print a stddev of one sample.
    std::optional<double> stddev() const;

  private:
    size_t n_ = 0;
    double mean_ = 0.0;
    double m2_ = 0.0;
};

// Percentile p in [0,100] by linear interpolation between closest ranks (type 7, numpy's default).
// `sorted` must be ascending and non-empty.
double percentile_sorted(std::span<const double> sorted, double p);
double percentile(std::vector<double> values, double p);

// Everything the writers print about one set of raw samples.
struct summary {
    size_t n = 0;
    double mean = 0.0;
    std::optional<double> stddev;  // empty when n < 2
    double min = 0.0;
    double max = 0.0;
    double median = 0.0;
    std::optional<double> ci95_low;   // Student-t interval of the mean; empty when n < 2
    std::optional<double> ci95_high;
    size_t n_outliers = 0;            // modified z-score > 3.5 (Iglewicz & Hoaglin, 1993)
};

summary summarize(std::span<const double> samples);

// Two-sided Student-t critical value for a 95% interval with `dof` degrees of freedom.
double t_critical_95(size_t dof);

// Indices of outliers by modified z-score |0.6745 (x - median) / MAD| > 3.5
// (Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993; as hyperfine does).
std::vector<size_t> outliers_mad(std::span<const double> samples);

}  // namespace im::stats
