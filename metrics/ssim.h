// Image similarity metrics: SSIM and MS-SSIM, intra-prompt diversity (mean pairwise MS-SSIM), and the mean cosine
// similarity of paired embeddings. SSIM/MS-SSIM are built from cxr tensor ops (grouped conv2d with a separable
// Gaussian window, avg_pool2d, elementwise ops, means), so they run unchanged on any device with those kernels
// and are differentiable through autograd.
//
// SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility to structural
// similarity"), per channel, with G the 11×11 Gaussian window (σ = 1.5, normalised, applied separably: along H,
// then along W) and 'valid' filtering (no padding; the map is (H − 10) × (W − 10)):
//   μx = G∗x, μy = G∗y, σx² = G∗x² − μx², σy² = G∗y² − μy², σxy = G∗(xy) − μx μy
//   cs  = (2 σxy + C2) / (σx² + σy² + C2),   ssim = (2 μx μy + C1) / (μx² + μy² + C1) · cs
//   C1 = (K1 L)², C2 = (K2 L)², K1 = 0.01, K2 = 0.03, L = data_range
// and SSIM = mean of the map over the pixels, then over the channels.
//
// MS-SSIM (Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality assessment"),
// with M = 5 scales and weights β = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), per channel:
//   MS-SSIM = Π_{j<M} relu(cs_j)^{β_j} · relu(ssim_M)^{β_M}
// cs_j the mean contrast-structure term at scale j (scales 1..M−1), ssim_M the full SSIM at the coarsest scale
// (luminance only enters there); between scales both images are 2×2 average-pooled with stride 2 and a zero
// padding of (size mod 2) on each side of an odd dimension, counted in the average (count_include_pad). The
// result is averaged over the channels. The relu (negative terms to 0, so the fractional powers are defined) and
// the padding rule follow the pytorch_msssim package (v1.0.0), which the tests use as the reference.
// Requirements (checked): x and y [N, C, H, W] of one shape, values in [0, data_range]; SSIM needs H, W >= the
// window size (pytorch_msssim instead skips the blur along a too-short dimension with a warning); MS-SSIM needs
// min(H, W) > (window − 1) · 2^(M−1) = 160 for the defaults, as pytorch_msssim.
// Precision: computed in f64 when x is f64, else in f32 (u8 and integer images are cast), unless
// SsimOptions::compute_dtype says otherwise. In f32 the variance terms G∗x² − μx² cancel; use f64 on the CPU when
// digits beyond ~1e-5 matter.
//
// Intra-prompt diversity (as in the RoentGen studies): for each prompt's K >= 2 generated images, the mean
// MS-SSIM over its K(K−1)/2 unordered pairs; lower means more diverse. The study reports the mean over prompts.
//
// Embedding cosine similarity of paired rows, as torch.nn.functional.cosine_similarity(a, b, dim=1):
//   cos_i = a_i · b_i / (max(|a_i|, eps) · max(|b_i|, eps)),  eps = 1e-8 (a zero row gives 0).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::metrics {

using tensor::Tensor;

struct SsimOptions {
    double data_range = 1.0;  // L: the value range of the images (1 for [0, 1], 255 for 8-bit)
    int64_t window_size = 11;  // odd
    double window_sigma = 1.5;
    double k1 = 0.01;
    double k2 = 0.03;
    std::vector<double> scale_weights = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};  // MS-SSIM β_j, one per scale
    std::optional<tensor::DType> compute_dtype;  // f32 or f64; default: f64 for f64 input, else f32
};

// The normalised 1-d Gaussian window g_i ∝ exp(−(i − ⌊size/2⌋)² / (2σ²)), i = 0..size−1, as [size] f64 on the CPU.
Tensor gaussian_window(int64_t size, double sigma);

// SSIM per image: x, y [N, C, H, W] -> [N] (mean over channels) in the compute dtype, on x's device.
Tensor ssim(const Tensor& x, const Tensor& y, const SsimOptions& options = {});
// Per image and channel: the mean SSIM map and the mean contrast-structure map, each [N, C].
struct SsimComponents {
    Tensor ssim;  // [N, C]
    Tensor cs;    // [N, C]
};
SsimComponents ssim_components(const Tensor& x, const Tensor& y, const SsimOptions& options = {});

// MS-SSIM per image: x, y [N, C, H, W] -> [N] (mean over channels) in the compute dtype, on x's device.
Tensor ms_ssim(const Tensor& x, const Tensor& y, const SsimOptions& options = {});

// Mean MS-SSIM over the K(K−1)/2 unordered pairs of images [K, C, H, W], K >= 2; pairs are evaluated in batches
// of at most max_pairs_per_batch (memory: about 5 · batch · C · H · W values of the compute dtype).
double mean_pairwise_ms_ssim(const Tensor& images, const SsimOptions& options = {}, int64_t max_pairs_per_batch = 16);

struct DiversityResult {
    std::vector<double> per_group;  // mean pairwise MS-SSIM of each group, in the order given
    double mean = 0;                // mean over the groups
};
// Intra-prompt diversity: one tensor [K_g, C, H, W] per prompt group (each K_g >= 2; sizes may differ between
// groups). Throws naming the group when one has fewer than 2 images.
DiversityResult intra_prompt_diversity(const std::vector<Tensor>& groups, const SsimOptions& options = {},
                                       int64_t max_pairs_per_batch = 16);

// Cosine similarity of paired rows: a, b [N, D] (any floating dtypes) -> [N] f64.
Tensor cosine_similarity_rows(const Tensor& a, const Tensor& b, double eps = 1e-8);
// The mean of cosine_similarity_rows over the N rows (N >= 1).
double mean_cosine_similarity(const Tensor& a, const Tensor& b, double eps = 1e-8);

}  // namespace cxr::metrics
