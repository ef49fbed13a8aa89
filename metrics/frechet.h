// Fréchet distance between two Gaussians fitted to feature sets — the statistic behind FID (Heusel et al. 2017,
// "GANs trained by a two time-scale update rule converge to a local Nash equilibrium"; Dowson & Landau 1982 for
// the closed form) — computed in f64 on the CPU:
//
//   d²((μ1, Σ1), (μ2, Σ2)) = |μ1 − μ2|² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^{1/2})
//
// The trace term is, in its symmetric form (Dowson & Landau), Tr((√Σ1 Σ2 √Σ1)^{1/2}); pytorch-fid writes it
// Tr(sqrtm(Σ1 Σ2)), which is the same number whenever Σ1 Σ2 has a square root, because both are Σ_i √μ_i over
// the eigenvalues μ_i of Σ1 Σ2 (XY and YX share their spectrum: √Σ1 (√Σ1 Σ2) and (√Σ1 Σ2) √Σ1).
// Computed without any non-symmetric square root: Σ1 is symmetric positive semi-definite, so Σ1 = V Λ Vᵀ
// (symmetric eigendecomposition) and Σ1 = B Bᵀ with B = V Λ^{1/2}; then Bᵀ Σ2 B is symmetric PSD with the
// eigenvalues μ_i of Σ1 Σ2 = B (Bᵀ Σ2), and √Σ1 Σ2 √Σ1 = V (Bᵀ Σ2 B) Vᵀ is similar to it — using Bᵀ Σ2 B saves
// one matrix product. So Tr((Σ1 Σ2)^{1/2}) = Σ_i √μ_i with μ_i the eigenvalues of Bᵀ Σ2 B. No inverse is taken:
// singular Σ1 or Σ2 (fewer samples than dimensions) need no regularisation.
// Rounding: eigenvalues at rounding level, λ <= D·ε·λ_max (ε = 2^-52), of Σ1 or of Bᵀ Σ2 B are zeros of the
// exact PSD matrices and are treated as 0 (this includes the slightly negative ones — for Bᵀ Σ2 B like
// pytorch-fid's "take the real part" of scipy.linalg.sqrtm, since Re √λ = 0 for λ < 0). Without this each such
// eigenvalue would add √(rounding) ≈ 1e-8·√λ_max to the trace term: FD(x, x) would be ~1e-7 instead of ~1e-14
// for a rank-deficient Σ. B keeps only the r columns of Σ1's numerical rank (B is [D, r], Bᵀ Σ2 B is [r, r]).
//
// The symmetric eigensolver is written here: Householder tridiagonalisation followed by the implicit symmetric
// QR algorithm with Wilkinson shifts (Golub & Van Loan, "Matrix Computations", 4th ed., Algorithms 8.3.1 and
// 8.3.3), eigenvectors accumulated from the reflections and Givens rotations.
// Near-singular fallback, as pytorch-fid: if the eigensolver does not converge or yields non-finite values,
// the computation is repeated once with eps·I added to both covariances (eps = 1e-6 by default) and the result
// says so (FrechetTerms::regularised).
//
// Feature statistics: mean and unbiased covariance (divides by N − 1, as numpy.cov and pytorch-fid) of an [N, D]
// feature tensor, accumulated batch by batch in f64 with the pairwise update of Chan, Golub & LeVeque (1979):
//   M2 = M2_a + M2_b + δ δᵀ · n_a n_b / n,   δ = mean_b − mean_a,   Σ = M2 / (n − 1).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::metrics {

using tensor::Tensor;

// Mean and unbiased covariance of a feature set (f64 tensors on the features' device).
struct FeatureStats {
    Tensor mean;        // [D] f64
    Tensor cov;         // [D, D] f64, Σ = Σ_n (x_n − μ)(x_n − μ)ᵀ / (N − 1)
    int64_t count = 0;  // N
    int64_t dim() const { return mean.defined() ? mean.size(0) : 0; }
};

// Accumulates feature statistics over batches [B, D] (any floating dtype; computed in f64), e.g. while a
// feature extractor runs over a large image set. Merging order does not change the result beyond rounding.
class FeatureAccumulator {
public:
    void add(const Tensor& batch);  // [B, D], B >= 1; D must match earlier batches
    int64_t count() const { return count_; }
    // The statistics so far; needs count() >= 2 (the unbiased covariance of one sample is undefined).
    FeatureStats stats() const;

private:
    int64_t count_ = 0;
    Tensor mean_;  // [D] f64
    Tensor m2_;    // [D, D] f64, Σ (x − mean)(x − mean)ᵀ
};

// Statistics of one feature tensor [N, D], N >= 2.
FeatureStats feature_statistics(const Tensor& features);

struct FrechetOptions {
    double eps = 1e-6;  // diagonal offset of the (one) regularised retry, as pytorch-fid
};

// The terms of d²; distance = mean_term + trace_a + trace_b − 2 · trace_sqrt_product.
struct FrechetTerms {
    double distance = 0;
    double mean_term = 0;           // |μ1 − μ2|²
    double trace_a = 0;             // Tr(Σ1)   (of the regularised matrices when regularised)
    double trace_b = 0;             // Tr(Σ2)
    double trace_sqrt_product = 0;  // Tr((Σ1 Σ2)^{1/2})
    bool regularised = false;       // true when eps·I was added to both covariances
};

// d² between N(mu1, sigma1) and N(mu2, sigma2): mu [D], sigma [D, D] symmetric PSD (any floating dtype; read
// in f64 on the CPU). Throws cxr::Error on mismatched shapes or non-finite input.
FrechetTerms frechet_terms(const Tensor& mu1, const Tensor& sigma1, const Tensor& mu2, const Tensor& sigma2,
                           const FrechetOptions& options = {});
double frechet_distance(const Tensor& mu1, const Tensor& sigma1, const Tensor& mu2, const Tensor& sigma2,
                        const FrechetOptions& options = {});
double frechet_distance(const FeatureStats& a, const FeatureStats& b, const FrechetOptions& options = {});
// d² between the Gaussians fitted to two feature sets [N_a, D] and [N_b, D] (N >= 2 each).
double frechet_distance(const Tensor& features_a, const Tensor& features_b, const FrechetOptions& options = {});

// Tr((Σ1 Σ2)^{1/2}) for symmetric PSD Σ1, Σ2 [D, D] by the method above (throws if the eigensolver fails).
double trace_sqrt_product(const Tensor& sigma1, const Tensor& sigma2);

// ---- the symmetric eigensolver (host f64, row-major n×n) ----
struct SymmetricEigen {
    std::vector<double> values;   // [n], ascending
    std::vector<double> vectors;  // [n, n] row-major, column i is the unit eigenvector of values[i]; empty
                                  // when not requested
    bool converged = true;
};
// Eigen-decomposition of the symmetric matrix a (only symmetric input is meaningful; the lower triangle and the
// upper triangle are both read). Stops after 30·n implicit QR steps without convergence (converged = false).
SymmetricEigen symmetric_eigen(const std::vector<double>& a, int64_t n, bool want_vectors);

}  // namespace cxr::metrics
