// GPU implementations of the metrics of metrics/: AUROC and AUPRC (sort-based), the bootstrap with all resamples
// in parallel, the subgroup (fairness) metrics, MS-SSIM and the Fréchet distance. The CPU versions
// (classification.h, statistics.h, fairness.h, ssim.h, frechet.h) are the reference: every function here returns
// what its CPU counterpart returns for the same input — AUROC, subgroup rates and gaps bit for bit, AUPRC to a few
// ulps (its sum is taken in another order) — with the same undefined-value rules (std::nullopt, never NaN).
//
// Availability. metrics_gpu_available() is true when the build has CUDA and a device is present. Otherwise every
// other function throws cxr::Error: "built without CUDA" (metrics/gpu_unavailable.cpp, compiled only in CPU builds)
// or "no CUDA device" (CUDA builds on a machine without a GPU). Callers keep the CPU path as the default and switch
// with a device option, e.g. `cxr evaluate --device cuda` would build one GpuBinaryBatch for all of its problems.
//
// AUROC / AUPRC (formulas in classification.h). Per binary problem the known cases are sorted once on the device by
// descending score (CUB DeviceRadixSort on f64 keys; ties are contiguous) and each case records the start of its
// block of tied scores. A weighted pass then walks the sorted order with prefix sums of the positive and negative
// weight, P(k) and N(k) (weight strictly before position k). For tie block b with start s_b and end e_b:
//   PS_b = P(s_b), NS_b = N(s_b), PE_b = P(e_b), NE_b = N(e_b), w+_b = PE_b − PS_b, W+ = P(m), W− = N(m)
//   2U   = Σ_b w+_b (2 W− − NS_b − NE_b)       (= 2 Σ_b w+_b (negatives below b + ½ negatives tied in b))
//   AUROC = (2U / 2) / (W+ W−)                  AP = (Σ_{b: w+_b > 0} w+_b · PE_b / (PE_b + NE_b)) / W+
// Weights are integers (1, or how often a bootstrap resample drew the case), so every sum except AP's is exact in
// 64-bit integers and AUROC is the CPU's value exactly (the CPU's double sums of integer weights are exact too,
// below 2^53; that holds while 2·W+·W− < 2^53, i.e. up to about 1.3e8 weighted cases in the worst split — beyond it
// the GPU rounds the exact integer 2U once while the CPU's running sum rounds at each step, and the two may differ
// in the last bits). Deterministic: integer sums do not depend on order; AP's double sum uses a fixed order (per thread,
// then a fixed tree, then the segments of a problem in order).
//
// Bootstrap (statistics.h). Resample r draws the same n indices as the CPU's bootstrap_weights(n, seed, r): the
// Philox randint stream at word offset r · ceil4(n), index k = word(seed, r · ceil4(n) + k) mod n (tensor/philox.h,
// host+device code). The device counts the draws per case (integer atomics: exact) and evaluates every
// (resample, problem) in parallel, one thread block per (resample, segment of a problem's sorted order), all
// resamples at once (in passes bounded by memory). Percentile intervals are then taken on the host by
// percentile_interval(), exactly as bootstrap() does, so the intervals equal the CPU's.
//
// Subgroup metrics (fairness.h): a subgroup's per-label AUROCs are problems with a subset; the underdiagnosis rate is
// a RateProblem (weighted FP / (FP + TN) of binarised No Finding); macro means and gaps are combined on the host with
// the CPU's rules (mean of the defined labels; max − min over eligible subgroups, ties to the first in name order).
//
// MS-SSIM (ssim.h) is composed of tensor ops that have CUDA kernels (grouped conv2d, avg_pool2d, elementwise,
// reductions), so the GPU path is ssim.cpp's own code on CUDA tensors; ms_ssim_gpu moves the images there.
//
// Fréchet distance (frechet.h): the feature statistics (mean and the covariance Σ (x − μ)(x − μ)ᵀ / (N − 1), a
// D×D f64 matmul) are computed on the GPU with the same FeatureAccumulator code; the symmetric eigendecompositions
// behind Tr((Σ1 Σ2)^½) stay on the CPU in f64 (frechet_terms). At D = 2048 the GPU takes the O(N D²) part, the
// CPU the O(D³) part; a GPU eigensolver is not provided.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/classification.h"
#include "metrics/fairness.h"
#include "metrics/frechet.h"
#include "metrics/predictions.h"
#include "metrics/ssim.h"
#include "metrics/statistics.h"
#include "tensor/tensor.h"

namespace cxr::metrics {

// True when this build has CUDA and at least one CUDA device is present.
bool metrics_gpu_available();

struct BinaryValues {
    std::optional<double> auroc;  // needs a known positive and a known negative
    std::optional<double> auprc;  // needs a known positive
};

// One binary label (conventions of classification.h: labels 1, 0, -1 = unknown; finite scores on known cases),
// on CUDA device `device`. Inputs are checked as the CPU checks them (check_binary_inputs).
std::optional<double> auroc_gpu(const std::vector<double>& scores, const std::vector<int>& labels, int device = 0);
std::optional<double> auprc_gpu(const std::vector<double>& scores, const std::vector<int>& labels, int device = 0);
BinaryValues auroc_auprc_gpu(const std::vector<double>& scores, const std::vector<int>& labels, int device = 0);

// A binary problem of a batch, as RankedBinary(*scores, *labels, subset, what): the cases of `subset` (all n when
// null) whose label is known. The pointers must stay valid while the batch is constructed (the batch copies).
struct BinaryProblem {
    const std::vector<double>* scores = nullptr;   // [n]
    const std::vector<int>* labels = nullptr;      // [n]
    const std::vector<int64_t>* subset = nullptr;  // case indices in [0, n), or null
    std::string what = "binary metrics";           // names the problem in errors
};

// A weighted rate over cases: Σ_i w_i [numerator_i] / Σ_i w_i over i in `cases`; undefined (nullopt) when the
// denominator weight is 0. The underdiagnosis rate of a subgroup: cases = its members with No Finding truth 0,
// numerator = No Finding score >= threshold.
struct RateProblem {
    std::vector<int64_t> cases;      // case indices in [0, n)
    std::vector<uint8_t> numerator;  // one flag per entry of `cases`
};

// Values of K problems and Q rates on R resamples (or R = 1 for the point estimates), row-major [R, K] / [R, Q].
struct BatchValues {
    int64_t resamples = 0, problems = 0, rates = 0;
    std::vector<std::optional<double>> auroc, auprc;  // [R, K]
    std::vector<std::optional<double>> rate;          // [R, Q]
    const std::optional<double>& auroc_at(int64_t r, int64_t k) const { return auroc[r * problems + k]; }
    const std::optional<double>& auprc_at(int64_t r, int64_t k) const { return auprc[r * problems + k]; }
    const std::optional<double>& rate_at(int64_t r, int64_t q) const { return rate[r * rates + q]; }
};

// Problems over one set of n cases, sorted once on the device, then evaluated under any number of bootstrap
// resamples. The batch primitive behind every function below; `cxr evaluate` can put all of its problems
// (labels, the second model's labels, subgroup × label) and rates into one batch and combine the [R, K] values on
// the host exactly as its statistic function does.
class GpuBinaryBatch {
public:
    // n in [1, 2^31); the problems' total number of known cases below 2^31.
    GpuBinaryBatch(int64_t n, const std::vector<BinaryProblem>& problems, const std::vector<RateProblem>& rates = {},
                   int device = 0);
    ~GpuBinaryBatch();
    GpuBinaryBatch(GpuBinaryBatch&&) noexcept;
    GpuBinaryBatch& operator=(GpuBinaryBatch&&) noexcept;
    GpuBinaryBatch(const GpuBinaryBatch&) = delete;
    GpuBinaryBatch& operator=(const GpuBinaryBatch&) = delete;

    int64_t cases() const;                  // n
    int64_t problems() const;               // K
    int64_t rates() const;                  // Q
    int64_t size(int64_t k) const;          // known cases of problem k (RankedBinary::size)
    int64_t positives(int64_t k) const;     // RankedBinary::positives

    // All weights 1: R = 1.
    BatchValues point() const;
    // Resamples first .. first + count - 1 (count >= 1); resample r has the weights bootstrap_weights(n, seed, r).
    BatchValues resamples(uint64_t seed, int64_t first, int64_t count) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Per-label and macro AUROC/AUPRC of predictions with bootstrap percentile intervals: the quantities (and slot
// semantics) of `cxr evaluate`'s labels and macro keys. `labels`: label indices of p (empty = all).
struct LabelIntervals {
    std::vector<BinaryValues> estimates;                 // [L]
    std::optional<double> macro_auroc, macro_auprc;      // mean of the defined labels
    std::vector<ConfidenceInterval> auroc_ci, auprc_ci;  // [L]
    ConfidenceInterval macro_auroc_ci, macro_auprc_ci;
};
LabelIntervals bootstrap_labels_gpu(const Predictions& p, const std::vector<int64_t>& labels,
                                    const BootstrapOptions& options, int device = 0);

// FairnessEvaluator(p, groups, options).evaluate() on the GPU: the same FairnessResult.
FairnessResult fairness_gpu(const Predictions& p, const Subgroups& groups, const FairnessOptions& options,
                            int device = 0);
// FairnessEvaluator::evaluate(&bootstrap_weights(n, seed, r)) for r = first .. first + count - 1.
std::vector<FairnessResult> fairness_resamples_gpu(const Predictions& p, const Subgroups& groups,
                                                   const FairnessOptions& options, uint64_t seed, int64_t first,
                                                   int64_t count, int device = 0);
// Point estimate and percentile intervals of the gaps and the subgroup AUROCs (evaluate's fairness slots).
struct FairnessIntervals {
    FairnessResult estimate;
    ConfidenceInterval auroc_gap_ci, underdiagnosis_gap_ci;
    std::vector<ConfidenceInterval> subgroup_auroc_ci;  // one per subgroup, in groups.names order
};
FairnessIntervals bootstrap_fairness_gpu(const Predictions& p, const Subgroups& groups, const FairnessOptions& options,
                                         const BootstrapOptions& bootstrap, int device = 0);

// MS-SSIM per image (ssim.h) computed on CUDA device `device`: x, y are moved there (no copy when already there);
// the result [N] stays on the device.
tensor::Tensor ms_ssim_gpu(const tensor::Tensor& x, const tensor::Tensor& y, const SsimOptions& options = {},
                           int device = 0);
// mean_pairwise_ms_ssim with the images on the device.
double mean_pairwise_ms_ssim_gpu(const tensor::Tensor& images, const SsimOptions& options = {},
                                 int64_t max_pairs_per_batch = 16, int device = 0);

// Feature statistics of [N, D] features on the device (f64 tensors on the device).
FeatureStats feature_statistics_gpu(const tensor::Tensor& features, int device = 0);
// The Fréchet distance between the Gaussians of two feature sets: statistics on the GPU, Tr((Σ1 Σ2)^½) on the CPU.
FrechetTerms frechet_terms_gpu(const tensor::Tensor& features_a, const tensor::Tensor& features_b,
                               const FrechetOptions& options = {}, int device = 0);
double frechet_distance_gpu(const tensor::Tensor& features_a, const tensor::Tensor& features_b,
                            const FrechetOptions& options = {}, int device = 0);

}  // namespace cxr::metrics
