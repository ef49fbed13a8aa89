// Image-quality metrics of image sets: image-set specs, the Inception-v3 and classifier feature extractors, FID and
// MS-SSIM diversity. Rules and formulas: apps/eval/image_metrics.h.
#include "apps/eval/image_metrics.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include "apps/progress.h"
#include "apps/train/classifier_trainer.h"
#include "apps/train/data_source.h"
#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "metrics/ssim.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"
#include "vision/inception.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;
using tensor::Tensor;

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool is_image_file(const fs::path& p) {
    const std::string e = lower(p.extension().string());
    return e == ".png" || e == ".jpg" || e == ".jpeg";
}

std::string kinds_list() {
    std::string list;
    for (const auto& k : data::dataset_kinds()) list += (list.empty() ? "" : ", ") + k;
    return list;
}

std::vector<std::string> paths_of(const ImageSet& set) {
    std::vector<std::string> paths;
    paths.reserve(set.records.size());
    for (const auto& r : set.records) paths.push_back(r.image_path);
    return paths;
}

// Loader options that read the images in order, resized to S×S with `channels` channels (no labels needed).
data::LoaderOptions ordered_loader(int64_t batch_size, int size, int channels, int workers) {
    data::LoaderOptions o;
    o.batch_size = batch_size;
    o.image_size = size;
    o.channels = channels;
    o.shuffle = false;
    o.drop_last = false;
    o.workers = workers;
    return o;
}

std::vector<data::Record> records_of(const std::vector<std::string>& paths) {
    std::vector<data::Record> records(paths.size());
    for (size_t i = 0; i < paths.size(); ++i) records[i].image_path = paths[i];
    return records;
}

// ---- inception:WEIGHTS ----
class InceptionExtractor : public FeatureExtractor {
public:
    InceptionExtractor(std::string spec, const std::string& weights, const ExtractorOptions& options)
        : spec_(std::move(spec)), device_(tensor::parse_device(options.device)) {
        CXR_CHECK(!weights.empty(), "feature extractor '", spec_,
                  "': give the weights file, inception:PATH.safetensors");
        CXR_CHECK(fs::is_regular_file(weights), "feature extractor '", spec_, "': Inception weights file '", weights,
                  "' not found (pytorch-fid's FID Inception weights converted to safetensors, keys as its "
                  "state dict)");
        net_ = vision::inception_v3_fid();
        const tensor::TensorFile file = tensor::load_tensor_file(weights);
        nn::StateDict state(file.tensors.begin(), file.tensors.end());
        try {
            net_->load_state_dict(state);  // strict: lists missing/unexpected keys and shape mismatches
        } catch (const Error& e) {
            CXR_FAIL("Inception weights '", weights, "' do not fit pytorch-fid's FID Inception-v3: ", e.what());
        }
        net_->to(device_);
        net_->eval();
    }
    std::string name() const override { return spec_; }
    int64_t feature_dim() const override { return 2048; }

    void extract(const std::vector<std::string>& paths, int64_t batch_size,
                 const std::function<void(const Tensor&, int64_t)>& consume) override {
        CXR_CHECK(batch_size >= 1, "feature extraction: batch size must be positive, got ", batch_size);
        tensor::NoGradGuard no_grad;
        const int64_t n = static_cast<int64_t>(paths.size());
        for (int64_t start = 0; start < n; start += batch_size) {
            const int64_t end = std::min(n, start + batch_size);
            std::vector<Tensor> images;  // each [3, H, W] in [0, 1], at the file's own size
            for (int64_t i = start; i < end; ++i) images.push_back(data::read_image(paths[i], data::ColorMode::rgb));
            std::vector<Tensor> parts;  // [b, 2048] per run of equally sized images
            size_t a = 0;
            while (a < images.size()) {
                size_t b = a + 1;
                while (b < images.size() && images[b].sizes() == images[a].sizes()) ++b;
                std::vector<Tensor> run(images.begin() + static_cast<long>(a), images.begin() + static_cast<long>(b));
                const Tensor x = tensor::stack(run, 0).to(device_);  // [b, 3, H, W]
                parts.push_back(net_->fid_features(x).to(tensor::Device::cpu()).to(tensor::DType::f32));
                a = b;
            }
            consume(parts.size() == 1 ? parts[0] : tensor::cat(parts, 0), end);
        }
    }

private:
    std::string spec_;
    tensor::Device device_;
    std::shared_ptr<vision::InceptionV3FID> net_;
};

// ---- classifier:STEM ----
class ClassifierExtractor : public FeatureExtractor {
public:
    ClassifierExtractor(std::string spec, const std::string& stem, const ExtractorOptions& options)
        : spec_(std::move(spec)), workers_(options.workers) {
        CXR_CHECK(!stem.empty(), "feature extractor '", spec_, "': give the checkpoint stem, classifier:DIR/best");
        CXR_CHECK(fs::exists(stem + ".json"), "feature extractor '", spec_, "': checkpoint '", stem,
                  "' not found (expected ", stem, ".json and ", stem, ".safetensors, as cxr train-classifier writes)");
        config_ = checkpoint_config(stem);
        config_.device = options.device;
        model_ = load_classifier(stem, config_);
        device_ = tensor::parse_device(config_.device);
    }
    std::string name() const override { return spec_; }
    int64_t feature_dim() const override { return model_->num_features(); }

    void extract(const std::vector<std::string>& paths, int64_t batch_size,
                 const std::function<void(const Tensor&, int64_t)>& consume) override {
        CXR_CHECK(batch_size >= 1, "feature extraction: batch size must be positive, got ", batch_size);
        if (paths.empty()) return;
        tensor::NoGradGuard no_grad;
        model_->eval();
        data::Loader loader(records_of(paths),
                            ordered_loader(batch_size, config_.image_size, config_.channels, workers_));
        loader.start_epoch(0);
        data::Batch batch;
        int64_t done = 0;
        while (loader.next(batch)) {
            const Tensor x = normalise(batch.images.to(device_));  // [B, 3, S, S]
            consume(model_->forward_features(x).to(tensor::Device::cpu()).to(tensor::DType::f32), done += batch.size());
        }
    }

private:
    // As the trainer: x ← (x − mean)/std per channel, then a gray image repeated to the model's 3 channels.
    Tensor normalise(const Tensor& images) const {  // [B, C, S, S] -> [B, 3, S, S]
        const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
        CXR_CHECK(static_cast<int64_t>(config_.mean.size()) == C && static_cast<int64_t>(config_.std.size()) == C,
                  "classifier features: the checkpoint's mean/std have ", config_.mean.size(), "/", config_.std.size(),
                  " values for ", C, "-channel images");
        std::vector<float> m(config_.mean.begin(), config_.mean.end()), s(config_.std.begin(), config_.std.end());
        const Tensor mean = tensor::from_vector(m, {1, C, 1, 1}).to(images.device());
        const Tensor std = tensor::from_vector(s, {1, C, 1, 1}).to(images.device());
        const Tensor x = (images - mean) / std;
        return C == 3 ? x : x.expand({B, 3, H, W});
    }

    std::string spec_;
    int workers_;
    ClassifierConfig config_;
    std::shared_ptr<vision::ImageClassifier> model_;
    tensor::Device device_ = tensor::Device::cpu();
};

}  // namespace

// ---------------------------------------------------------------- image sets

std::vector<std::string> list_image_files(const std::string& folder) {
    CXR_CHECK(fs::is_directory(folder), "image folder '", folder, "' does not exist or is not a folder");
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(folder))
        if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    CXR_CHECK(!files.empty(), "image folder '", folder,
              "' holds no PNG/JPEG files (.png, .jpg, .jpeg; subfolders are not searched — for a dataset folder "
              "give manifest:DIR or KIND:ROOT)");
    return files;
}

ImageSet parse_image_set(const std::string& spec, int64_t max_images) {
    CXR_CHECK(!spec.empty(), "image set: empty spec (give a folder, a manifest .csv or KIND:ROOT[:SPLIT])");
    CXR_CHECK(max_images >= 0, "image set '", spec, "': max images must be >= 0, got ", max_images);
    ImageSet set;
    set.spec = spec;
    if (fs::is_directory(spec)) {
        set.records = records_of(list_image_files(spec));
    } else if (fs::is_regular_file(spec) && lower(fs::path(spec).extension().string()) == ".csv") {
        set.records = data::load_manifest(spec);
    } else {
        const size_t colon = spec.find(':');
        const std::string kind = colon == std::string::npos ? "" : spec.substr(0, colon);
        const auto& kinds = data::dataset_kinds();
        if (kind.empty() || std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
            CXR_CHECK(!fs::exists(spec), "image set '", spec, "' is neither a folder nor a manifest .csv file");
            CXR_CHECK(colon != std::string::npos, "image set '", spec, "' does not exist (give a folder of PNG/JPEG ",
                      "images, a manifest .csv or KIND:ROOT[:SPLIT] with KIND one of: ", kinds_list(), ")");
            CXR_FAIL("image set '", spec, "': not an existing folder or .csv, and '", kind, "' is not a dataset kind ",
                     "(expected KIND:ROOT[:SPLIT] with KIND one of: ", kinds_list(), ")");
        }
        DataSource source;
        source.dataset = kind;
        source.root = spec.substr(colon + 1);
        const size_t last = source.root.rfind(':');
        if (last != std::string::npos) {
            const std::string split = source.root.substr(last + 1);
            CXR_CHECK(split == "train" || split == "valid" || split == "test" || split.empty(), "image set '", spec,
                      "': unknown split '", split, "' (expected train, valid or test)");
            source.split = split;
            source.root = source.root.substr(0, last);
        }
        CXR_CHECK(!source.root.empty(), "image set '", spec, "': no ROOT after '", kind, ":'");
        set.records = load_source(source);
    }
    if (max_images > 0 && set.size() > max_images) set.records.resize(static_cast<size_t>(max_images));
    CXR_CHECK(!set.records.empty(), "image set '", spec, "' has no images");
    return set;
}

// ---------------------------------------------------------------- features

Tensor FeatureExtractor::features_of(const std::vector<std::string>& paths, int64_t batch_size) {
    std::vector<Tensor> parts;
    extract(paths, batch_size, [&](const Tensor& f, int64_t) { parts.push_back(f); });
    CXR_CHECK(!parts.empty(), "feature extraction: no images given");
    return parts.size() == 1 ? parts[0] : tensor::cat(parts, 0);
}

std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& spec, const ExtractorOptions& options) {
    const size_t colon = spec.find(':');
    const std::string kind = colon == std::string::npos ? spec : spec.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (kind == "inception") return std::make_unique<InceptionExtractor>(spec, arg, options);
    if (kind == "classifier") return std::make_unique<ClassifierExtractor>(spec, arg, options);
    CXR_FAIL("unknown feature extractor '", spec,
             "' (expected inception:WEIGHTS.safetensors or classifier:CHECKPOINT_STEM)");
}

void for_each_feature_batch(const ImageSet& set, FeatureExtractor& extractor, int64_t batch_size, bool quiet,
                            const std::function<void(const Tensor&)>& consume) {
    std::unique_ptr<Progress> bar;
    if (!quiet) bar = std::make_unique<Progress>("features " + set.spec, set.size());
    extractor.extract(paths_of(set), batch_size, [&](const Tensor& f, int64_t done) {
        consume(f);
        if (bar) bar->update(done);
    });
    if (bar) bar->finish();
}

Tensor set_features(const ImageSet& set, FeatureExtractor& extractor, int64_t batch_size, bool quiet) {
    std::vector<Tensor> parts;
    for_each_feature_batch(set, extractor, batch_size, quiet, [&](const Tensor& f) { parts.push_back(f); });
    CXR_CHECK(!parts.empty(), "image set '", set.spec, "' has no images");
    return parts.size() == 1 ? parts[0] : tensor::cat(parts, 0);
}

metrics::FeatureStats set_feature_statistics(const ImageSet& set, FeatureExtractor& extractor, int64_t batch_size,
                                             bool quiet) {
    CXR_CHECK(set.size() >= 2, "FID needs at least 2 images in each set (the covariance of one image is undefined); '",
              set.spec, "' has ", set.size());
    metrics::FeatureAccumulator acc;
    for_each_feature_batch(set, extractor, batch_size, quiet, [&](const Tensor& f) { acc.add(f); });
    return acc.stats();
}

json FidResult::to_json() const {
    return {{"fid", fid},
            {"n_a", n_a},
            {"n_b", n_b},
            {"feature_dim", feature_dim},
            {"extractor", extractor},
            {"terms",
             {{"mean_term", terms.mean_term},
              {"trace_a", terms.trace_a},
              {"trace_b", terms.trace_b},
              {"trace_sqrt_product", terms.trace_sqrt_product},
              {"regularised", terms.regularised}}}};
}

FidResult fid(const ImageSet& a, const ImageSet& b, FeatureExtractor& extractor, int64_t batch_size, bool quiet) {
    for (const ImageSet* s : {&a, &b})
        CXR_CHECK(s->size() >= 2,
                  "FID needs at least 2 images in each set (the covariance of one image is undefined); '", s->spec,
                  "' has ", s->size());
    const metrics::FeatureStats sa = set_feature_statistics(a, extractor, batch_size, quiet);
    const metrics::FeatureStats sb = set_feature_statistics(b, extractor, batch_size, quiet);
    FidResult r;
    r.terms = metrics::frechet_terms(sa.mean, sa.cov, sb.mean, sb.cov);
    r.fid = r.terms.distance;
    r.n_a = sa.count;
    r.n_b = sb.count;
    r.feature_dim = sa.dim();
    r.extractor = extractor.name();
    return r;
}

// ---------------------------------------------------------------- MS-SSIM

std::vector<double> ms_ssim_scale_weights(int size) {
    CXR_CHECK(size >= 11, "MS-SSIM: images must be at least 11x11 (the SSIM window), got a common size of ", size);
    const std::vector<double> standard = metrics::SsimOptions{}.scale_weights;
    size_t m = standard.size();
    while (m > 1 && !(size > 10 * (1 << (m - 1)))) --m;  // M scales need S > (11 − 1) · 2^(M−1)
    if (m == standard.size()) return standard;
    std::vector<double> w(standard.begin(), standard.begin() + static_cast<long>(m));
    double sum = 0;
    for (double v : w) sum += v;
    for (double& v : w) v /= sum;
    return w;
}

Tensor load_ms_ssim_images(const ImageSet& set, int size) {
    ms_ssim_scale_weights(size);  // checks the size
    CXR_CHECK(set.size() >= 1, "image set '", set.spec, "' has no images");
    data::Loader loader(set.records, ordered_loader(32, size, 1, 2));
    loader.start_epoch(0);
    std::vector<Tensor> parts;
    data::Batch batch;
    while (loader.next(batch)) parts.push_back(batch.images);  // [B, 1, S, S]
    return parts.size() == 1 ? parts[0] : tensor::cat(parts, 0);
}

json DiversityReport::to_json() const {
    return {{"mean_pairwise_ms_ssim", mean_pairwise_ms_ssim},
            {"n", n},
            {"pairs", pairs},
            {"size", size},
            {"scale_weights", scale_weights}};
}

DiversityReport set_diversity(const ImageSet& set, const MsSsimOptions& options) {
    CXR_CHECK(set.size() >= 2, "MS-SSIM diversity needs at least 2 images; '", set.spec, "' has ", set.size());
    DiversityReport r;
    r.size = options.size;
    r.scale_weights = ms_ssim_scale_weights(options.size);
    metrics::SsimOptions so;
    so.scale_weights = r.scale_weights;
    const Tensor images = load_ms_ssim_images(set, options.size).to(tensor::parse_device(options.device));  // [N, 1, S, S]
    r.n = set.size();
    r.pairs = r.n * (r.n - 1) / 2;
    r.mean_pairwise_ms_ssim = metrics::mean_pairwise_ms_ssim(images, so, options.max_pairs_per_batch);
    return r;
}

json PairedMsSsimReport::to_json() const {
    return {{"n", n}, {"mean", mean}, {"min", min}, {"max", max}, {"size", size}, {"scale_weights", scale_weights},
            {"per_pair", per_pair}};
}

PairedMsSsimReport paired_ms_ssim(const ImageSet& a, const ImageSet& b, const MsSsimOptions& options) {
    CXR_CHECK(a.size() == b.size(), "paired MS-SSIM needs two sets of the same size: '", a.spec, "' has ", a.size(),
              " images, '", b.spec, "' has ", b.size());
    CXR_CHECK(a.size() >= 1, "paired MS-SSIM: '", a.spec, "' has no images");
    PairedMsSsimReport r;
    r.size = options.size;
    r.scale_weights = ms_ssim_scale_weights(options.size);
    metrics::SsimOptions so;
    so.scale_weights = r.scale_weights;
    const tensor::Device dev = tensor::parse_device(options.device);
    const Tensor x = load_ms_ssim_images(a, options.size).to(dev), y = load_ms_ssim_images(b, options.size).to(dev);
    const int64_t N = a.size(), B = std::max<int64_t>(1, options.max_pairs_per_batch);
    for (int64_t i = 0; i < N; i += B) {  // [b] per batch
        const int64_t n = std::min(B, N - i);
        const Tensor v = metrics::ms_ssim(x.narrow(0, i, n), y.narrow(0, i, n), so).to(tensor::Device::cpu());
        const std::vector<double> d = tensor::cast(v, tensor::DType::f64).contiguous().to_vector<double>();
        r.per_pair.insert(r.per_pair.end(), d.begin(), d.end());
    }
    r.n = N;
    double sum = 0;
    r.min = r.max = r.per_pair[0];
    for (double v : r.per_pair) {
        sum += v;
        r.min = std::min(r.min, v);
        r.max = std::max(r.max, v);
    }
    r.mean = sum / (double)N;
    return r;
}

json PromptDiversityReport::to_json() const {
    json groups_json = json::array();
    for (size_t g = 0; g < prompts.size(); ++g)
        groups_json.push_back({{"prompt", prompts[g]}, {"ms_ssim", per_group[g]}});
    return {{"mean", mean},
            {"groups", groups},
            {"skipped_groups", skipped_groups},
            {"images", images},
            {"per_group", groups_json}};
}

PromptDiversityReport prompt_diversity(const ImageSet& set, const MsSsimOptions& options) {
    std::vector<std::string> order;
    std::map<std::string, std::vector<size_t>> members;
    for (size_t i = 0; i < set.records.size(); ++i) {
        const std::string& p = set.records[i].report;
        if (p.empty()) continue;
        if (!members.count(p)) order.push_back(p);
        members[p].push_back(i);
    }
    CXR_CHECK(!order.empty(), "intra-prompt diversity: no image of '", set.spec,
              "' has a prompt (give a manifest with a report column)");
    PromptDiversityReport r;
    ImageSet kept;
    kept.spec = set.spec;
    std::vector<int64_t> sizes;
    for (const auto& p : order) {
        const auto& idx = members[p];
        if (idx.size() < 2) {
            ++r.skipped_groups;
            continue;
        }
        r.prompts.push_back(p);
        sizes.push_back(static_cast<int64_t>(idx.size()));
        for (size_t i : idx) kept.records.push_back(set.records[i]);
    }
    CXR_CHECK(!r.prompts.empty(), "intra-prompt diversity: no prompt of '", set.spec, "' has 2 or more images (",
              r.skipped_groups, " prompts with one image each)");
    const Tensor images =
            load_ms_ssim_images(kept, options.size).to(tensor::parse_device(options.device));  // [N_kept, 1, S, S]
    std::vector<Tensor> groups;
    int64_t at = 0;
    for (int64_t k : sizes) {
        groups.push_back(images.narrow(0, at, k));
        at += k;
    }
    metrics::SsimOptions so;
    so.scale_weights = ms_ssim_scale_weights(options.size);
    const metrics::DiversityResult d = metrics::intra_prompt_diversity(groups, so, options.max_pairs_per_batch);
    r.groups = static_cast<int64_t>(r.prompts.size());
    r.images = kept.size();
    r.mean = d.mean;
    r.per_group = d.per_group;
    return r;
}

}  // namespace cxr::apps
