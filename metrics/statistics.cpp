// Bootstrap percentile intervals, the DeLong test (Sun & Xu 2014 midrank algorithm) and the paired permutation
// test for AUPRC differences. The definitions, stream offsets and p-value conventions are in statistics.h.
#include "metrics/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "metrics/classification.h"
#include "tensor/error.h"
#include "tensor/generator.h"

namespace cxr::metrics {

namespace {

uint64_t ceil4(uint64_t n) { return (n + 3) / 4 * 4; }

}  // namespace

std::vector<double> bootstrap_weights(int64_t n, uint64_t seed, int64_t resample) {
    CXR_CHECK(n > 0 && n < (int64_t(1) << 32), "bootstrap: the number of cases must be in [1, 2^32), got ", n);
    CXR_CHECK(resample >= 0, "bootstrap: negative resample index ", resample);
    std::vector<int64_t> idx(n);
    tensor::fill_randint_i64(idx.data(), n, seed, (uint64_t)resample * ceil4((uint64_t)n), 0, n);
    std::vector<double> w(n, 0.0);
    for (int64_t i : idx) w[i] += 1.0;
    return w;
}

ConfidenceInterval percentile_interval(std::vector<double> values, double level) {
    CXR_CHECK(level > 0.0 && level < 1.0, "percentile_interval: level must be in (0, 1), got ", level);
    ConfidenceInterval ci;
    ci.valid_resamples = (int64_t)values.size();
    if (values.empty()) return ci;
    std::sort(values.begin(), values.end());
    auto quantile = [&](double p) {
        const double pos = p * (double)(values.size() - 1);
        const size_t lo = (size_t)std::floor(pos);
        const size_t hi = std::min(lo + 1, values.size() - 1);
        const double frac = pos - (double)lo;
        return values[lo] + frac * (values[hi] - values[lo]);
    };
    const double alpha = 1.0 - level;
    ci.lo = quantile(alpha / 2.0);
    ci.hi = quantile(1.0 - alpha / 2.0);
    return ci;
}

std::vector<ConfidenceInterval> bootstrap(int64_t n, int64_t k, const WeightedStatistic& statistic,
                                          const BootstrapOptions& options) {
    CXR_CHECK(options.resamples >= 1, "bootstrap: resamples must be >= 1, got ", options.resamples);
    CXR_CHECK(k >= 0, "bootstrap: negative statistic count");
    const int64_t R = options.resamples;
    std::vector<std::vector<std::optional<double>>> values((size_t)R);  // [R][k]
    std::string first_error;
#pragma omp parallel for schedule(dynamic)
    for (int64_t r = 0; r < R; ++r) {
        try {
            const std::vector<double> w = bootstrap_weights(n, options.seed, r);
            std::vector<std::optional<double>> s = statistic(w);
            CXR_CHECK((int64_t)s.size() == k, "bootstrap: the statistic returned ", s.size(), " values, expected ",
                      k);
            values[(size_t)r] = std::move(s);
        } catch (const std::exception& e) {
#pragma omp critical(cxr_bootstrap_error)
            if (first_error.empty()) first_error = e.what();
        }
    }
    CXR_CHECK(first_error.empty(), "bootstrap: ", first_error);
    return percentile_intervals(values, k, options.level);
}

std::vector<ConfidenceInterval> percentile_intervals(const std::vector<std::vector<std::optional<double>>>& values,
                                                     int64_t k, double level) {
    std::vector<ConfidenceInterval> out;
    out.reserve((size_t)k);
    for (int64_t j = 0; j < k; ++j) {
        std::vector<double> valid;
        valid.reserve(values.size());
        for (const auto& row : values) {
            CXR_CHECK((int64_t)row.size() == k, "percentile_intervals: a resample has ", row.size(),
                      " values, expected ", k);
            if (row[(size_t)j]) valid.push_back(*row[(size_t)j]);
        }
        out.push_back(percentile_interval(std::move(valid), level));
    }
    return out;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

std::vector<double> midranks(const std::vector<double>& values) {
    const size_t n = values.size();
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
    std::vector<double> rank(n);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && values[order[j + 1]] == values[order[i]]) ++j;
        const double mid = 0.5 * (double)(i + j) + 1.0;  // mean of ranks i+1 .. j+1
        for (size_t t = i; t <= j; ++t) rank[order[t]] = mid;
        i = j + 1;
    }
    return rank;
}

namespace {

// Sample covariance (divisor count - 1) of two equally long vectors.
double covariance(const std::vector<double>& a, const std::vector<double>& b) {
    const size_t n = a.size();
    const double ma = std::accumulate(a.begin(), a.end(), 0.0) / (double)n;
    const double mb = std::accumulate(b.begin(), b.end(), 0.0) / (double)n;
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += (a[i] - ma) * (b[i] - mb);
    return s / (double)(n - 1);
}

}  // namespace

DelongResult delong_test(const std::vector<double>& scores_a, const std::vector<double>& scores_b,
                         const std::vector<int>& labels) {
    check_binary_inputs(scores_a, labels, "delong_test (model A)");
    check_binary_inputs(scores_b, labels, "delong_test (model B)");
    std::vector<size_t> pos, neg;
    for (size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] == 1) pos.push_back(i);
        if (labels[i] == 0) neg.push_back(i);
    }
    const size_t m = pos.size(), n = neg.size();
    CXR_CHECK(m >= 2 && n >= 2, "delong_test: needs at least two positive and two negative known cases, got ", m,
              " and ", n);
    DelongResult res;
    res.positives = (int64_t)m;
    res.negatives = (int64_t)n;
    std::vector<double> auc(2), v10[2], v01[2];
    const std::vector<double>* models[2] = {&scores_a, &scores_b};
    for (int r = 0; r < 2; ++r) {
        const std::vector<double>& s = *models[r];
        std::vector<double> x(m), y(n), z(m + n);
        for (size_t i = 0; i < m; ++i) z[i] = x[i] = s[pos[i]];
        for (size_t j = 0; j < n; ++j) z[m + j] = y[j] = s[neg[j]];
        const std::vector<double> tx = midranks(x), ty = midranks(y), tz = midranks(z);
        double sum_pos = 0.0;
        for (size_t i = 0; i < m; ++i) sum_pos += tz[i];
        auc[r] = (sum_pos - (double)m * ((double)m + 1.0) / 2.0) / ((double)m * (double)n);
        v10[r].resize(m);
        v01[r].resize(n);
        for (size_t i = 0; i < m; ++i) v10[r][i] = (tz[i] - tx[i]) / (double)n;
        for (size_t j = 0; j < n; ++j) v01[r][j] = 1.0 - (tz[m + j] - ty[j]) / (double)m;
    }
    auto s_entry = [&](int a, int b) {
        return covariance(v10[a], v10[b]) / (double)m + covariance(v01[a], v01[b]) / (double)n;
    };
    res.auroc_a = auc[0];
    res.auroc_b = auc[1];
    res.difference = auc[0] - auc[1];
    res.variance_a = s_entry(0, 0);
    res.variance_b = s_entry(1, 1);
    res.covariance = s_entry(0, 1);
    const double var = res.variance_a + res.variance_b - 2.0 * res.covariance;
    if (var > 0.0) {
        res.z = res.difference / std::sqrt(var);
        res.p_value = std::erfc(std::fabs(res.z) / std::sqrt(2.0));
    } else {
        // No variability of the difference: the curves coincide case by case.
        res.z = 0.0;
        res.p_value = res.difference == 0.0 ? 1.0 : 0.0;
    }
    return res;
}

PermutationResult permutation_test_auprc(const std::vector<double>& scores_a, const std::vector<double>& scores_b,
                                         const std::vector<int>& labels, const PermutationOptions& options) {
    check_binary_inputs(scores_a, labels, "permutation_test_auprc (model A)");
    check_binary_inputs(scores_b, labels, "permutation_test_auprc (model B)");
    CXR_CHECK(options.permutations >= 1, "permutation_test_auprc: permutations must be >= 1");
    // Work on the known cases only.
    std::vector<double> a, b;
    std::vector<int> y;
    for (size_t i = 0; i < labels.size(); ++i)
        if (labels[i] != -1) {
            a.push_back(scores_a[i]);
            b.push_back(scores_b[i]);
            y.push_back(labels[i]);
        }
    const int64_t n = (int64_t)y.size();
    const auto ap_a = auprc(a, y), ap_b = auprc(b, y);
    CXR_CHECK(ap_a && ap_b, "permutation_test_auprc: needs at least one positive known case");
    PermutationResult res;
    res.auprc_a = *ap_a;
    res.auprc_b = *ap_b;
    res.difference = *ap_a - *ap_b;
    const double observed = std::fabs(res.difference) - 1e-12;

    const bool exact = n < 62 && (int64_t(1) << n) <= options.permutations;
    const int64_t P = exact ? (int64_t(1) << n) : options.permutations;
    int64_t extreme = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : extreme)
    for (int64_t p = 0; p < P; ++p) {
        std::vector<double> pa(a), pb(b);
        std::vector<float> u;
        if (!exact) {
            u.resize(n);
            tensor::fill_uniform_f32(u.data(), n, options.seed, (uint64_t)p * ceil4((uint64_t)n), 0.0f, 1.0f);
        }
        for (int64_t i = 0; i < n; ++i) {
            const bool swap = exact ? ((p >> i) & 1) != 0 : u[i] < 0.5f;
            if (swap) std::swap(pa[i], pb[i]);
        }
        const double d = *auprc(pa, y) - *auprc(pb, y);
        if (std::fabs(d) >= observed) ++extreme;
    }
    res.exact = exact;
    res.permutations = P;
    res.p_value = exact ? (double)extreme / (double)P : (1.0 + (double)extreme) / (1.0 + (double)P);
    return res;
}

}  // namespace cxr::metrics
