// The GPU metrics API of metrics/gpu.h above the batch primitive (metrics/cuda/ranked.cu): single-label AUROC/AUPRC,
// per-label and macro bootstrap intervals, the subgroup (fairness) metrics and their intervals, and the GPU paths
// of MS-SSIM and the Fréchet distance. Host code only: the device work is GpuBinaryBatch's kernels and the tensor
// ops' CUDA kernels. Every combination step repeats the CPU's rule (cited at each place) on values that equal the
// CPU's, so results agree with metrics/{classification,statistics,fairness,ssim,frechet}.cpp.
#include <algorithm>
#include <string>
#include <vector>

#include "metrics/cuda/gpu_device.cuh"
#include "metrics/gpu.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"

namespace cxr::metrics {

using tensor::Device;
using tensor::Tensor;

bool metrics_gpu_available() { return tensor::device_available(tensor::DeviceType::CUDA); }

// ---------------------------------------------------------------------------------------------- one label

BinaryValues auroc_auprc_gpu(const std::vector<double>& scores, const std::vector<int>& labels, int device) {
    gpu_detail::require_device("auroc_auprc_gpu", device);
    if (scores.empty()) {  // no known case: both undefined, as RankedBinary (the batch needs n >= 1)
        check_binary_inputs(scores, labels, "auroc_auprc_gpu");
        return {};
    }
    GpuBinaryBatch batch((int64_t)scores.size(), {BinaryProblem{&scores, &labels, nullptr, "auroc_auprc_gpu"}}, {},
                         device);
    const BatchValues v = batch.point();
    return BinaryValues{v.auroc_at(0, 0), v.auprc_at(0, 0)};
}

std::optional<double> auroc_gpu(const std::vector<double>& scores, const std::vector<int>& labels, int device) {
    return auroc_auprc_gpu(scores, labels, device).auroc;
}

std::optional<double> auprc_gpu(const std::vector<double>& scores, const std::vector<int>& labels, int device) {
    return auroc_auprc_gpu(scores, labels, device).auprc;
}

// ---------------------------------------------------------------------------------------------- labels + macro

LabelIntervals bootstrap_labels_gpu(const Predictions& p, const std::vector<int64_t>& labels_in,
                                    const BootstrapOptions& options, int device) {
    CXR_CHECK(p.size() > 0, "bootstrap_labels_gpu: the predictions have no rows");
    CXR_CHECK(options.resamples >= 1, "bootstrap: resamples must be >= 1, got ", options.resamples);
    std::vector<int64_t> labels = labels_in;
    if (labels.empty())
        for (size_t l = 0; l < p.label_names.size(); ++l) labels.push_back((int64_t)l);
    const int64_t L = (int64_t)labels.size();
    std::vector<BinaryProblem> problems;
    for (int64_t l : labels) {
        CXR_CHECK(l >= 0 && l < (int64_t)p.label_names.size(), "bootstrap_labels_gpu: label index ", l,
                  " out of range");
        problems.push_back(BinaryProblem{&p.scores[l], &p.truth[l], nullptr, "label " + p.label_names[l]});
    }
    GpuBinaryBatch batch(p.size(), problems, {}, device);
    LabelIntervals out;
    const BatchValues est = batch.point();
    std::vector<std::optional<double>> a(L), b(L);
    for (int64_t k = 0; k < L; ++k) {
        a[k] = est.auroc_at(0, k);
        b[k] = est.auprc_at(0, k);
        out.estimates.push_back(BinaryValues{a[k], b[k]});
    }
    out.macro_auroc = mean_defined(a);
    out.macro_auprc = mean_defined(b);
    // evaluate()'s slots [auroc L][auprc L][macro auroc, macro auprc]; undefined values are left out (bootstrap()).
    const BatchValues v = batch.resamples(options.seed, 0, options.resamples);
    std::vector<std::vector<double>> values(2 * L + 2);
    for (int64_t r = 0; r < options.resamples; ++r) {
        for (int64_t k = 0; k < L; ++k) {
            a[k] = v.auroc_at(r, k);
            b[k] = v.auprc_at(r, k);
            if (a[k]) values[k].push_back(*a[k]);
            if (b[k]) values[L + k].push_back(*b[k]);
        }
        if (const auto m = mean_defined(a)) values[2 * L].push_back(*m);
        if (const auto m = mean_defined(b)) values[2 * L + 1].push_back(*m);
    }
    for (int64_t k = 0; k < L; ++k) {
        out.auroc_ci.push_back(percentile_interval(values[k], options.level));
        out.auprc_ci.push_back(percentile_interval(values[L + k], options.level));
    }
    out.macro_auroc_ci = percentile_interval(values[2 * L], options.level);
    out.macro_auprc_ci = percentile_interval(values[2 * L + 1], options.level);
    return out;
}

// ---------------------------------------------------------------------------------------------- fairness

namespace {

// The problems of FairnessEvaluator: (subgroup g, label li) at k = g · |labels| + li; one rate per subgroup (the
// underdiagnosis rate) when there is a No Finding label.
struct FairnessBatch {
    const Predictions* p = nullptr;
    const Subgroups* groups = nullptr;
    FairnessOptions options;
    GpuBinaryBatch batch;

    FairnessBatch(const Predictions& pr, const Subgroups& g, const FairnessOptions& o, int device)
        : p(&pr), groups(&g), options(o), batch(make(pr, g, o, device)) {}

    static GpuBinaryBatch make(const Predictions& p, const Subgroups& g, const FairnessOptions& o, int device) {
        // FairnessEvaluator's checks
        const int64_t L = (int64_t)p.label_names.size();
        for (int64_t l : o.labels) CXR_CHECK(l >= 0 && l < L, "fairness: label index ", l, " out of range");
        CXR_CHECK(o.no_finding >= -1 && o.no_finding < L, "fairness: No Finding label index out of range");
        CXR_CHECK(o.min_size >= 0, "fairness: min_size must be >= 0");
        CXR_CHECK(g.names.size() == g.members.size(), "fairness: ", g.names.size(), " subgroup names but ",
                  g.members.size(), " member lists");
        CXR_CHECK(p.size() > 0, "fairness: the predictions have no rows");
        std::vector<BinaryProblem> problems;
        for (size_t s = 0; s < g.names.size(); ++s)
            for (int64_t l : o.labels)
                problems.push_back(BinaryProblem{&p.scores[l], &p.truth[l], &g.members[s],
                                                 "fairness, label " + p.label_names[l] + ", subgroup " + g.names[s]});
        std::vector<RateProblem> rates;
        if (o.no_finding >= 0) {
            // underdiagnosis rate: among members with No Finding truth 0, the weight with score >= threshold
            const auto& truth = p.truth[o.no_finding];
            const auto& score = p.scores[o.no_finding];
            for (size_t s = 0; s < g.names.size(); ++s) {
                RateProblem rp;
                for (int64_t i : g.members[s]) {
                    CXR_CHECK(i >= 0 && i < p.size(), "fairness: subgroup ", g.names[s], " has case index ", i,
                              " out of range");
                    if (truth[i] != 0) continue;
                    rp.cases.push_back(i);
                    rp.numerator.push_back(score[i] >= o.no_finding_threshold ? 1 : 0);
                }
                rates.push_back(std::move(rp));
            }
        }
        return GpuBinaryBatch(p.size(), problems, rates, device);
    }

    // FairnessEvaluator::evaluate's result from row r of the batch values.
    FairnessResult result(const BatchValues& v, int64_t r) const {
        const int64_t L = (int64_t)options.labels.size();
        FairnessResult out;
        for (size_t s = 0; s < groups->names.size(); ++s) {
            SubgroupResult sr;
            sr.name = groups->names[s];
            sr.n = (int64_t)groups->members[s].size();
            sr.in_gaps = sr.n >= options.min_size;
            std::vector<std::optional<double>> per_label;
            for (int64_t li = 0; li < L; ++li) per_label.push_back(v.auroc_at(r, (int64_t)s * L + li));
            sr.auroc = mean_defined(per_label);
            if (options.no_finding >= 0) sr.fpr_no_finding = v.rate_at(r, (int64_t)s);
            out.subgroups.push_back(sr);
        }
        fill_gaps(out);  // the CPU evaluator's rule (metrics/fairness.h)
        return out;
    }
};

}  // namespace

FairnessResult fairness_gpu(const Predictions& p, const Subgroups& groups, const FairnessOptions& options,
                            int device) {
    FairnessBatch fb(p, groups, options, device);
    return fb.result(fb.batch.point(), 0);
}

std::vector<FairnessResult> fairness_resamples_gpu(const Predictions& p, const Subgroups& groups,
                                                   const FairnessOptions& options, uint64_t seed, int64_t first,
                                                   int64_t count, int device) {
    FairnessBatch fb(p, groups, options, device);
    const BatchValues v = fb.batch.resamples(seed, first, count);
    std::vector<FairnessResult> out;
    out.reserve((size_t)count);
    for (int64_t r = 0; r < count; ++r) out.push_back(fb.result(v, r));
    return out;
}

FairnessIntervals bootstrap_fairness_gpu(const Predictions& p, const Subgroups& groups, const FairnessOptions& options,
                                         const BootstrapOptions& bootstrap, int device) {
    CXR_CHECK(bootstrap.resamples >= 1, "bootstrap: resamples must be >= 1, got ", bootstrap.resamples);
    FairnessBatch fb(p, groups, options, device);
    FairnessIntervals out;
    out.estimate = fb.result(fb.batch.point(), 0);
    const BatchValues v = fb.batch.resamples(bootstrap.seed, 0, bootstrap.resamples);
    const size_t S = groups.names.size();
    // evaluate()'s slots per grouping: [auroc_gap, underdiagnosis_gap, subgroup aurocs S]
    std::vector<std::vector<double>> values(2 + S);
    for (int64_t r = 0; r < bootstrap.resamples; ++r) {
        const FairnessResult fr = fb.result(v, r);
        if (fr.auroc_gap) values[0].push_back(*fr.auroc_gap);
        if (fr.underdiagnosis_gap) values[1].push_back(*fr.underdiagnosis_gap);
        for (size_t s = 0; s < S; ++s)
            if (fr.subgroups[s].auroc) values[2 + s].push_back(*fr.subgroups[s].auroc);
    }
    out.auroc_gap_ci = percentile_interval(values[0], bootstrap.level);
    out.underdiagnosis_gap_ci = percentile_interval(values[1], bootstrap.level);
    for (size_t s = 0; s < S; ++s) out.subgroup_auroc_ci.push_back(percentile_interval(values[2 + s], bootstrap.level));
    return out;
}

// ---------------------------------------------------------------------------------------------- image metrics

Tensor ms_ssim_gpu(const Tensor& x, const Tensor& y, const SsimOptions& options, int device) {
    gpu_detail::require_device("ms_ssim_gpu", device);
    return ms_ssim(x.to(Device::cuda(device)), y.to(Device::cuda(device)), options);
}

double mean_pairwise_ms_ssim_gpu(const Tensor& images, const SsimOptions& options, int64_t max_pairs_per_batch,
                                 int device) {
    gpu_detail::require_device("mean_pairwise_ms_ssim_gpu", device);
    return mean_pairwise_ms_ssim(images.to(Device::cuda(device)), options, max_pairs_per_batch);
}

FeatureStats feature_statistics_gpu(const Tensor& features, int device) {
    gpu_detail::require_device("feature_statistics_gpu", device);
    tensor::NoGradGuard no_grad;
    return feature_statistics(features.detach().to(Device::cuda(device)));
}

FrechetTerms frechet_terms_gpu(const Tensor& features_a, const Tensor& features_b, const FrechetOptions& options,
                               int device) {
    CXR_CHECK(features_a.dim() == 2 && features_b.dim() == 2 && features_a.size(1) == features_b.size(1),
              "Fréchet distance: feature sets must be [N, D] with the same D, got ", tensor::shape_str(features_a.sizes()),
              " and ", tensor::shape_str(features_b.sizes()));
    const FeatureStats a = feature_statistics_gpu(features_a, device), b = feature_statistics_gpu(features_b, device);
    // Tr((Σ1 Σ2)^½) by the CPU's symmetric eigensolver in f64 (frechet_terms copies the statistics to the host).
    return frechet_terms(a.mean, a.cov, b.mean, b.cov, options);
}

double frechet_distance_gpu(const Tensor& features_a, const Tensor& features_b, const FrechetOptions& options,
                            int device) {
    return frechet_terms_gpu(features_a, features_b, options, device).distance;
}

}  // namespace cxr::metrics
