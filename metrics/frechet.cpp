// Fréchet distance between feature Gaussians (metrics/frechet.h): batch-merged feature statistics, the symmetric
// eigensolver (Householder tridiagonalisation + implicit QR with Wilkinson shifts, Golub & Van Loan 4th ed.
// §8.3), and Tr((Σ1 Σ2)^{1/2}) as Σ √eig(Bᵀ Σ2 B) with Σ1 = B Bᵀ, B = V Λ^{1/2}. All arithmetic in f64.
#include "metrics/frechet.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <optional>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::metrics {

using namespace cxr::tensor;

// ---------------------------------------------------------------- feature statistics

void FeatureAccumulator::add(const Tensor& batch) {
    NoGradGuard no_grad;
    CXR_CHECK(batch.dim() == 2 && batch.size(0) >= 1, "feature statistics: expected features [N, D] with N >= 1, got ",
              shape_str(batch.sizes()));
    CXR_CHECK(is_floating(batch.dtype()), "feature statistics: features must be floating point, got ",
              dtype_name(batch.dtype()));
    CXR_CHECK(count_ == 0 || batch.size(1) == mean_.size(0), "feature statistics: batch has D = ", batch.size(1),
              " features per row, earlier batches had ", mean_.size(0));
    const int64_t nb = batch.size(0);
    Tensor x = batch.detach().to(DType::f64);        // [B, D]
    Tensor mean_b = mean(x, {0});                    // [D]
    Tensor centred = x - mean_b;                     // [B, D]
    Tensor m2_b = matmul(centred.transpose(0, 1), centred);  // [D, D]
    if (count_ == 0) {
        mean_ = mean_b;
        m2_ = m2_b;
        count_ = nb;
        return;
    }
    const double na = (double)count_, nbd = (double)nb, n = na + nbd;
    Tensor delta = mean_b - mean_;  // [D]
    Tensor outer = matmul(delta.unsqueeze(1), delta.unsqueeze(0));  // [D, D]
    m2_ = m2_ + m2_b + outer * (na * nbd / n);
    mean_ = mean_ + delta * (nbd / n);
    count_ += nb;
}

FeatureStats FeatureAccumulator::stats() const {
    NoGradGuard no_grad;
    CXR_CHECK(count_ >= 2, "feature statistics: the unbiased covariance needs at least 2 samples, got ", count_);
    FeatureStats s;
    s.mean = mean_;
    s.cov = m2_ / (double)(count_ - 1);
    s.count = count_;
    return s;
}

FeatureStats feature_statistics(const Tensor& features) {
    FeatureAccumulator acc;
    acc.add(features);
    return acc.stats();
}

// ---------------------------------------------------------------- symmetric eigensolver

namespace {

// Householder tridiagonalisation of the symmetric n×n matrix a (row-major, overwritten): Qᵀ A Q = T with
// T = tridiag(e, d, e). When qt is non-null it receives Qᵀ (row-major n×n), so that A = Q T Qᵀ.
// Step k reflects x = A[k+1:, k] onto ∓|x| e_1 with P = I − β v vᵀ, v = x ± |x| e_1, β = 2 / vᵀv, and updates
// the trailing block B = A[k+1:, k+1:] as P B P = B − v wᵀ − w vᵀ, p = β B v, w = p − (β pᵀv / 2) v.
void tridiagonalise(std::vector<double>& a, int64_t n, std::vector<double>& d, std::vector<double>& e,
                    std::vector<double>* qt) {
    d.assign(n, 0.0);
    e.assign(n > 1 ? n - 1 : 0, 0.0);
    if (qt) {
        qt->assign(n * n, 0.0);
        for (int64_t i = 0; i < n; ++i) (*qt)[i * n + i] = 1.0;
    }
    std::vector<double> v, p, w, t;
    for (int64_t k = 0; k + 2 < n; ++k) {
        const int64_t m = n - k - 1;  // length of x
        v.assign(m, 0.0);
        double norm2 = 0;
        for (int64_t j = 0; j < m; ++j) {
            v[j] = a[(k + 1 + j) * n + k];
            norm2 += v[j] * v[j];
        }
        const double alpha = std::sqrt(norm2);
        if (alpha == 0.0) {  // the column is already reduced: P = I
            e[k] = 0.0;
            continue;
        }
        const double sgn = v[0] >= 0 ? 1.0 : -1.0;
        v[0] += sgn * alpha;
        double vtv = 0;
        for (int64_t j = 0; j < m; ++j) vtv += v[j] * v[j];
        const double beta = 2.0 / vtv;
        e[k] = -sgn * alpha;
        // p = β B v
        p.assign(m, 0.0);
#pragma omp parallel for if (m > 768) schedule(static)
        for (int64_t i = 0; i < m; ++i) {
            const double* row = &a[(k + 1 + i) * n + k + 1];
            double s = 0;
            for (int64_t j = 0; j < m; ++j) s += row[j] * v[j];
            p[i] = beta * s;
        }
        double ptv = 0;
        for (int64_t j = 0; j < m; ++j) ptv += p[j] * v[j];
        const double kk = beta * ptv / 2.0;
        w.assign(m, 0.0);
        for (int64_t j = 0; j < m; ++j) w[j] = p[j] - kk * v[j];
#pragma omp parallel for if (m > 768) schedule(static)
        for (int64_t i = 0; i < m; ++i) {
            double* row = &a[(k + 1 + i) * n + k + 1];
            for (int64_t j = 0; j < m; ++j) row[j] -= v[i] * w[j] + w[i] * v[j];
        }
        if (qt) {
            // Qᵀ ← P Qᵀ: rows k+1.. of Qᵀ change by −β v (vᵀ Qᵀ[k+1:, :]).
            std::vector<double>& q = *qt;
            t.assign(n, 0.0);
            for (int64_t j = 0; j < m; ++j) {
                const double* row = &q[(k + 1 + j) * n];
                for (int64_t c = 0; c < n; ++c) t[c] += v[j] * row[c];
            }
#pragma omp parallel for if (m > 768) schedule(static)
            for (int64_t j = 0; j < m; ++j) {
                double* row = &q[(k + 1 + j) * n];
                const double f = beta * v[j];
                for (int64_t c = 0; c < n; ++c) row[c] -= f * t[c];
            }
        }
    }
    for (int64_t i = 0; i < n; ++i) d[i] = a[i * n + i];
    if (n >= 2) e[n - 2] = a[(n - 1) * n + (n - 2)];
}

// Implicit symmetric QR on the tridiagonal (d, e) with Wilkinson shifts and deflation (GvL Algorithm 8.3.3).
// Each step chases the bulge of a shifted Givens rotation down the unreduced block [lo, hi]; the rotations are
// applied to the rows of zt (eigenvectors as rows) when given. Returns false after max_steps without convergence.
bool tridiagonal_qr(std::vector<double>& d, std::vector<double>& e, std::vector<double>* zt, int64_t n,
                    int64_t max_steps) {
    int64_t steps = 0;
    int64_t hi = n - 1;
    while (hi > 0) {
        for (int64_t i = 0; i < hi; ++i)
            if (std::fabs(e[i]) <= DBL_EPSILON * (std::fabs(d[i]) + std::fabs(d[i + 1])) || std::fabs(e[i]) < DBL_MIN)
                e[i] = 0.0;
        if (e[hi - 1] == 0.0) {
            --hi;
            continue;
        }
        int64_t lo = hi - 1;
        while (lo > 0 && e[lo - 1] != 0.0) --lo;
        if (++steps > max_steps) return false;
        // Wilkinson shift: the eigenvalue of the trailing 2×2 block closer to d[hi].
        const double delta = (d[hi - 1] - d[hi]) / 2.0;
        const double eh = e[hi - 1];
        const double mu = d[hi] - eh * eh / (delta + std::copysign(std::hypot(delta, eh), delta));
        double x = d[lo] - mu, z = e[lo];
        for (int64_t k = lo; k < hi; ++k) {
            // rotation R = [[c, s], [−s, c]] on rows/columns k, k+1 with R (x, z)ᵀ = (r, 0)ᵀ; T ← R T Rᵀ
            const double r = std::hypot(x, z);
            const double c = r == 0.0 ? 1.0 : x / r;
            const double s = r == 0.0 ? 0.0 : z / r;
            if (k > lo) e[k - 1] = r;
            const double a = d[k], b = e[k], dd = d[k + 1];
            d[k] = c * c * a + 2.0 * c * s * b + s * s * dd;
            d[k + 1] = s * s * a - 2.0 * c * s * b + c * c * dd;
            e[k] = c * s * (dd - a) + (c * c - s * s) * b;
            if (k + 1 < hi) {  // the bulge at (k, k+2)
                z = s * e[k + 1];
                e[k + 1] = c * e[k + 1];
                x = e[k];
            }
            if (zt) {
                double* rk = &(*zt)[k * n];
                double* rk1 = &(*zt)[(k + 1) * n];
                for (int64_t i = 0; i < n; ++i) {
                    const double u = rk[i], v = rk1[i];
                    rk[i] = c * u + s * v;
                    rk1[i] = -s * u + c * v;
                }
            }
        }
    }
    return true;
}

bool all_finite(const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

}  // namespace

SymmetricEigen symmetric_eigen(const std::vector<double>& a_in, int64_t n, bool want_vectors) {
    CXR_CHECK(n >= 0 && (int64_t)a_in.size() == n * n, "symmetric_eigen: ", a_in.size(), " values for a ", n, "x", n,
              " matrix");
    SymmetricEigen out;
    if (n == 0) return out;
    std::vector<double> a = a_in, d, e, zt;
    tridiagonalise(a, n, d, e, want_vectors ? &zt : nullptr);
    out.converged = tridiagonal_qr(d, e, want_vectors ? &zt : nullptr, n, 30 * n);
    // ascending order; eigenvector i (row i of zt) becomes column of `vectors`
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return d[i] < d[j]; });
    out.values.resize(n);
    for (int64_t i = 0; i < n; ++i) out.values[i] = d[order[i]];
    if (want_vectors) {
        out.vectors.assign(n * n, 0.0);
        for (int64_t col = 0; col < n; ++col) {
            const double* src = &zt[order[col] * n];
            for (int64_t row = 0; row < n; ++row) out.vectors[row * n + col] = src[row];
        }
    }
    return out;
}

// ---------------------------------------------------------------- the Fréchet distance

namespace {

// Host copy of a square matrix [D, D] in f64.
std::vector<double> host_matrix(const Tensor& m, const char* what) {
    CXR_CHECK(m.dim() == 2 && m.size(0) == m.size(1), "Fréchet distance: ", what, " must be a square matrix [D, D], got ",
              shape_str(m.sizes()));
    std::vector<double> v = m.to_vector<double>();
    CXR_CHECK(all_finite(v), "Fréchet distance: ", what, " has non-finite values (NaN or infinity)");
    return v;
}

// Σ √μ_i over the eigenvalues μ_i of Bᵀ Σ2 B, Σ1 = B Bᵀ; nullopt when an eigensolve fails or is not finite.
std::optional<double> try_trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t n) {
    NoGradGuard no_grad;
    SymmetricEigen e1 = symmetric_eigen(s1, n, true);
    if (!e1.converged || !all_finite(e1.values) || !all_finite(e1.vectors)) return std::nullopt;
    // Eigenvalues at rounding level (|λ| <= D·ε·max λ) are zeros of the exact PSD matrix: their columns are dropped,
    // so B = V_r Λ_r^{1/2} is [D, r] with r = the numerical rank of Σ1, and Bᵀ Σ2 B is [r, r].
    const double lmax = std::max(0.0, e1.values.empty() ? 0.0 : e1.values.back());
    const double cut1 = (double)n * DBL_EPSILON * lmax;
    std::vector<int64_t> kept;
    for (int64_t j = 0; j < n; ++j)
        if (e1.values[j] > cut1) kept.push_back(j);
    const int64_t r = (int64_t)kept.size();
    if (r == 0) return 0.0;  // Σ1 = 0
    std::vector<double> b(n * r);  // B [D, r]: eigenvector columns scaled by √λ
    for (int64_t c = 0; c < r; ++c) {
        const double root = std::sqrt(e1.values[kept[c]]);
        for (int64_t i = 0; i < n; ++i) b[i * r + c] = e1.vectors[i * n + kept[c]] * root;
    }
    Tensor bmat = from_vector(b, {n, r}, DType::f64);               // B [D, r]
    Tensor sigma2 = from_vector(s2, {n, n}, DType::f64);            // [D, D]
    Tensor m = matmul(matmul(bmat.transpose(0, 1), sigma2), bmat);  // Bᵀ Σ2 B [r, r]
    std::vector<double> mv = m.to_vector<double>();
    for (int64_t i = 0; i < r; ++i)  // symmetrise away the rounding of the products
        for (int64_t j = i + 1; j < r; ++j) {
            const double s = 0.5 * (mv[i * r + j] + mv[j * r + i]);
            mv[i * r + j] = mv[j * r + i] = s;
        }
    SymmetricEigen e2 = symmetric_eigen(mv, r, false);
    if (!e2.converged || !all_finite(e2.values)) return std::nullopt;
    // Rounding-level eigenvalues of Bᵀ Σ2 B (null directions of Σ2) would add √(rounding) each: treated as 0 too.
    const double cut2 = (double)r * DBL_EPSILON * std::max(0.0, e2.values.back());
    double tr = 0;
    for (double mu : e2.values)
        if (mu > cut2) tr += std::sqrt(mu);
    return tr;
}

double trace_of(const std::vector<double>& m, int64_t n) {
    double t = 0;
    for (int64_t i = 0; i < n; ++i) t += m[i * n + i];
    return t;
}

}  // namespace

double trace_sqrt_product(const Tensor& sigma1, const Tensor& sigma2) {
    std::vector<double> s1 = host_matrix(sigma1, "sigma1"), s2 = host_matrix(sigma2, "sigma2");
    CXR_CHECK(sigma1.size(0) == sigma2.size(0), "trace_sqrt_product: sigma1 is ", shape_str(sigma1.sizes()),
              " but sigma2 is ", shape_str(sigma2.sizes()));
    auto t = try_trace_sqrt_product(s1, s2, sigma1.size(0));
    CXR_CHECK(t.has_value(), "trace_sqrt_product: the symmetric eigensolver did not converge");
    return *t;
}

FrechetTerms frechet_terms(const Tensor& mu1, const Tensor& sigma1, const Tensor& mu2, const Tensor& sigma2,
                           const FrechetOptions& options) {
    CXR_CHECK(mu1.dim() == 1 && mu2.dim() == 1 && mu1.size(0) == mu2.size(0), "Fréchet distance: means must be [D] of the same D, got ",
              shape_str(mu1.sizes()), " and ", shape_str(mu2.sizes()));
    const int64_t n = mu1.size(0);
    CXR_CHECK(sigma1.dim() == 2 && sigma1.size(0) == n && sigma2.dim() == 2 && sigma2.size(0) == n,
              "Fréchet distance: covariances must be [D, D] with D = ", n, ", got ", shape_str(sigma1.sizes()), " and ",
              shape_str(sigma2.sizes()));
    std::vector<double> m1 = mu1.to_vector<double>(), m2 = mu2.to_vector<double>();
    CXR_CHECK(all_finite(m1) && all_finite(m2), "Fréchet distance: a mean has non-finite values (NaN or infinity)");
    std::vector<double> s1 = host_matrix(sigma1, "sigma1"), s2 = host_matrix(sigma2, "sigma2");
    FrechetTerms t;
    for (int64_t i = 0; i < n; ++i) t.mean_term += (m1[i] - m2[i]) * (m1[i] - m2[i]);
    auto tr = try_trace_sqrt_product(s1, s2, n);
    if (!tr) {  // pytorch-fid's fallback: add eps·I to both covariances and try once more
        for (int64_t i = 0; i < n; ++i) {
            s1[i * n + i] += options.eps;
            s2[i * n + i] += options.eps;
        }
        t.regularised = true;
        tr = try_trace_sqrt_product(s1, s2, n);
        CXR_CHECK(tr.has_value(), "Fréchet distance: the symmetric eigensolver did not converge, even with ",
                  options.eps, "·I added to both covariances");
    }
    t.trace_a = trace_of(s1, n);
    t.trace_b = trace_of(s2, n);
    t.trace_sqrt_product = *tr;
    t.distance = t.mean_term + t.trace_a + t.trace_b - 2.0 * t.trace_sqrt_product;
    return t;
}

double frechet_distance(const Tensor& mu1, const Tensor& sigma1, const Tensor& mu2, const Tensor& sigma2,
                        const FrechetOptions& options) {
    return frechet_terms(mu1, sigma1, mu2, sigma2, options).distance;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b, const FrechetOptions& options) {
    return frechet_distance(a.mean, a.cov, b.mean, b.cov, options);
}

double frechet_distance(const Tensor& features_a, const Tensor& features_b, const FrechetOptions& options) {
    CXR_CHECK(features_a.dim() == 2 && features_b.dim() == 2 && features_a.size(1) == features_b.size(1),
              "Fréchet distance: feature sets must be [N, D] with the same D, got ", shape_str(features_a.sizes()),
              " and ", shape_str(features_b.sizes()));
    return frechet_distance(feature_statistics(features_a), feature_statistics(features_b), options);
}

}  // namespace cxr::metrics
