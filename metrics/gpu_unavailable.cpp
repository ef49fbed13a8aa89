// The GPU metrics API (metrics/gpu.h) in a build without CUDA: metrics_gpu_available() is false and every other
// function throws cxr::Error saying so. Compiled only when CXR_WITH_CUDA is off (CMakeLists.txt); CUDA builds
// compile metrics/cuda/*.cu instead.
#include "metrics/gpu.h"

#include "tensor/error.h"

namespace cxr::metrics {

namespace {

[[noreturn]] void unavailable(const char* what) {
    CXR_FAIL(what, ": this cxr was built without CUDA, so the GPU metrics are unavailable (use the CPU versions in "
                   "metrics/, or rebuild with -DCXR_CUDA=ON on a machine with the CUDA toolkit)");
}

}  // namespace

bool metrics_gpu_available() { return false; }

std::optional<double> auroc_gpu(const std::vector<double>&, const std::vector<int>&, int) { unavailable("auroc_gpu"); }
std::optional<double> auprc_gpu(const std::vector<double>&, const std::vector<int>&, int) { unavailable("auprc_gpu"); }
BinaryValues auroc_auprc_gpu(const std::vector<double>&, const std::vector<int>&, int) {
    unavailable("auroc_auprc_gpu");
}

struct GpuBinaryBatch::Impl {};

GpuBinaryBatch::GpuBinaryBatch(int64_t, const std::vector<BinaryProblem>&, const std::vector<RateProblem>&, int) {
    unavailable("GpuBinaryBatch");
}
GpuBinaryBatch::~GpuBinaryBatch() = default;
GpuBinaryBatch::GpuBinaryBatch(GpuBinaryBatch&&) noexcept = default;
GpuBinaryBatch& GpuBinaryBatch::operator=(GpuBinaryBatch&&) noexcept = default;
int64_t GpuBinaryBatch::cases() const { unavailable("GpuBinaryBatch::cases"); }
int64_t GpuBinaryBatch::problems() const { unavailable("GpuBinaryBatch::problems"); }
int64_t GpuBinaryBatch::rates() const { unavailable("GpuBinaryBatch::rates"); }
int64_t GpuBinaryBatch::size(int64_t) const { unavailable("GpuBinaryBatch::size"); }
int64_t GpuBinaryBatch::positives(int64_t) const { unavailable("GpuBinaryBatch::positives"); }
BatchValues GpuBinaryBatch::point() const { unavailable("GpuBinaryBatch::point"); }
BatchValues GpuBinaryBatch::resamples(uint64_t, int64_t, int64_t) const { unavailable("GpuBinaryBatch::resamples"); }

LabelIntervals bootstrap_labels_gpu(const Predictions&, const std::vector<int64_t>&, const BootstrapOptions&, int) {
    unavailable("bootstrap_labels_gpu");
}
FairnessResult fairness_gpu(const Predictions&, const Subgroups&, const FairnessOptions&, int) {
    unavailable("fairness_gpu");
}
std::vector<FairnessResult> fairness_resamples_gpu(const Predictions&, const Subgroups&, const FairnessOptions&,
                                                   uint64_t, int64_t, int64_t, int) {
    unavailable("fairness_resamples_gpu");
}
FairnessIntervals bootstrap_fairness_gpu(const Predictions&, const Subgroups&, const FairnessOptions&,
                                         const BootstrapOptions&, int) {
    unavailable("bootstrap_fairness_gpu");
}

tensor::Tensor ms_ssim_gpu(const tensor::Tensor&, const tensor::Tensor&, const SsimOptions&, int) {
    unavailable("ms_ssim_gpu");
}
double mean_pairwise_ms_ssim_gpu(const tensor::Tensor&, const SsimOptions&, int64_t, int) {
    unavailable("mean_pairwise_ms_ssim_gpu");
}
FeatureStats feature_statistics_gpu(const tensor::Tensor&, int) { unavailable("feature_statistics_gpu"); }
FrechetTerms frechet_terms_gpu(const tensor::Tensor&, const tensor::Tensor&, const FrechetOptions&, int) {
    unavailable("frechet_terms_gpu");
}
double frechet_distance_gpu(const tensor::Tensor&, const tensor::Tensor&, const FrechetOptions&, int) {
    unavailable("frechet_distance_gpu");
}

}  // namespace cxr::metrics
