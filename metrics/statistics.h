// Statistics for the reported metrics, on the CPU in double precision: bootstrap percentile confidence intervals
// (seedable with cxr's Philox generator), the DeLong test for two correlated ROC curves (the fast algorithm of
// Sun & Xu 2014), and a paired permutation test for the difference of two models' AUPRC.
//
// Bootstrap (Efron & Tibshirani 1993, ch. 13, percentile method)
//   Resample r (r = 0 .. R-1) draws n case indices uniformly with replacement: the Philox randint stream
//   (tensor/philox.h STREAM SPEC) with the given seed at word offset r * ceil4(n) (n < 2^32, one word per index),
//   so every resample is reproducible on its own, in any order, on the CPU or on a GPU following the same spec.
//   The statistic is evaluated with weights[i] = how often case i was drawn (a multiset weight, equivalent to
//   evaluating on the resampled cases; see RankedBinary). Resamples where a statistic is undefined (e.g. a
//   resample without a positive case) are left out of that statistic's interval and counted.
//   The interval is [q(alpha/2), q(1 - alpha/2)] of the valid resampled values, alpha = 1 - level, with the
//   quantile q(p) interpolated linearly between order statistics at position p (m - 1) (numpy's default
//   'linear' method, Hyndman & Fan 1996 definition 7).
//   Differences between two models and fairness gaps are statistics like any other: evaluate both models (or all
//   subgroups) with the same weights inside one statistic function, so the resampling is paired.
//
// DeLong test (DeLong, DeLong & Clarke-Pearson 1988; fast midrank algorithm of Sun & Xu 2014, IEEE SPL 21(11))
//   For m positives X and n negatives Y scored by models r = 1, 2, with midranks (average ranks of ties):
//   Tz over all m + n cases, Tx over the positives, Ty over the negatives,
//     AUC_r = (sum_i Tz(X_i) - m (m + 1) / 2) / (m n)
//     V10_r(i) = (Tz(X_i) - Tx(X_i)) / n          (structural components of the positives)
//     V01_r(j) = 1 - (Tz(Y_j) - Ty(Y_j)) / m      (of the negatives)
//     S = S10 / m + S01 / n, S10 and S01 the 2x2 sample covariances (divisor m - 1, n - 1) of V10 and V01
//     z = (AUC_1 - AUC_2) / sqrt(S_11 + S_22 - 2 S_12),  p = 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2).
//   Only cases whose label is known are used (both models score the same cases). A zero variance of the
//   difference (identical models) gives z = 0 and p = 1 when the AUCs are equal.
//
// Paired permutation test for AUPRC (e.g. Good 2005, Permutation, Parametric and Bootstrap Tests, ch. 3)
//   Null: the two models' scores are exchangeable case by case. Each permutation swaps the two scores of each case
//   with probability 1/2 (Philox uniform stream, seed, offset p * ceil4(n) for permutation p), recomputes
//   d = AP(A') - AP(B'), and p = (1 + #{|d| >= |d_obs| - 1e-12}) / (1 + P) (Phipson & Smyth 2010: never 0).
//   When 2^n <= P (tiny n), all 2^n swap patterns are enumerated instead and p = #{|d| >= |d_obs| - 1e-12} / 2^n
//   exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cxr::metrics {

struct BootstrapOptions {
    int64_t resamples = 1000;
    uint64_t seed = 0;
    double level = 0.95;
};

struct ConfidenceInterval {
    std::optional<double> lo, hi;  // undefined when no resample gave a value
    int64_t valid_resamples = 0;
};

// The case weights of resample r (how often each of the n cases was drawn), following the spec above.
std::vector<double> bootstrap_weights(int64_t n, uint64_t seed, int64_t resample);

// Percentile interval of `values` (unsorted is fine) at `level`.
ConfidenceInterval percentile_interval(std::vector<double> values, double level);

// The k percentile intervals of statistic values already computed per resample: values[r][j] is statistic j on
// resample r (nullopt: undefined there, left out). bootstrap() below ends with this; batched (GPU) evaluations use
// it directly.
std::vector<ConfidenceInterval> percentile_intervals(const std::vector<std::vector<std::optional<double>>>& values,
                                                     int64_t k, double level);

// Evaluates `statistic(weights)` -> k values on every resample (in parallel with OpenMP; the function must be
// thread-safe) and returns the k percentile intervals. The point estimates are the caller's: call the statistic
// with all-one weights.
using WeightedStatistic = std::function<std::vector<std::optional<double>>(const std::vector<double>& weights)>;
std::vector<ConfidenceInterval> bootstrap(int64_t n, int64_t k, const WeightedStatistic& statistic,
                                          const BootstrapOptions& options);

// Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2.
double normal_cdf(double x);

// Midranks (1-based average ranks, ties share their mean rank) of values, in the input order.
std::vector<double> midranks(const std::vector<double>& values);

struct DelongResult {
    double auroc_a = 0, auroc_b = 0;
    double difference = 0;             // auroc_a - auroc_b
    double variance_a = 0, variance_b = 0, covariance = 0;
    double z = 0, p_value = 1;
    int64_t positives = 0, negatives = 0;
};
// Needs at least two positives and two negatives (the covariances have divisor m - 1, n - 1); else cxr::Error.
DelongResult delong_test(const std::vector<double>& scores_a, const std::vector<double>& scores_b,
                         const std::vector<int>& labels);

struct PermutationOptions {
    int64_t permutations = 1000;
    uint64_t seed = 0;
};
struct PermutationResult {
    double auprc_a = 0, auprc_b = 0, difference = 0;  // difference = auprc_a - auprc_b
    double p_value = 1;
    int64_t permutations = 0;  // evaluated (2^n when exact)
    bool exact = false;
};
// Needs at least one positive known case; else cxr::Error.
PermutationResult permutation_test_auprc(const std::vector<double>& scores_a, const std::vector<double>& scores_b,
                                         const std::vector<int>& labels, const PermutationOptions& options = {});

}  // namespace cxr::metrics
