// Image-quality metrics of image sets, the library behind `cxr image-metrics`: FID between a real and a generated
// set with a chosen feature extractor, and MS-SSIM diversity (mean pairwise MS-SSIM within a set, and intra-prompt
// diversity when a manifest groups images by prompt). The math lives in metrics/frechet.h and metrics/ssim.h; this
// file reads the images, runs the feature extractors and puts the pieces together.
//
// Image sets (parse_image_set): a SPEC is
//   - a folder: its PNG/JPEG files (.png, .jpg, .jpeg, any case; not recursive) sorted by file name (byte order);
//   - a .csv file: a generic manifest (data/README.md);
//   - KIND:ROOT[:SPLIT]: a dataset through its adapter (apps/train/data_source.h load_source), KIND one of
//     data::dataset_kinds() (nih, chexpert, ..., manifest), SPLIT train/valid/test (absent: all images),
//     e.g. manifest:/data/gen/manifest.csv or nih:/data/nih1000:test.
//   `max_images` > 0 keeps the first N images in that order.
//
// Feature extractors (make_feature_extractor), each mapping images to one feature row per image in eval mode
// without gradients, batched:
//   inception:WEIGHTS.safetensors  pytorch-fid's Inception-v3 (vision/inception.h) with the FID weights supplied by
//       the user under pytorch-fid's state-dict names, loaded strictly (an error lists missing/unexpected keys).
//       Preprocessing as pytorch-fid's ImagePathDataset + InceptionV3(resize_input, normalize_input): each image
//       is read at its own size as RGB in [0, 1] (PIL convert("RGB"): gray repeated), resized bilinearly to
//       299×299 (align_corners = False, no antialiasing) and mapped to [−1, 1]; features = the 2048-d pool output.
//       A batch whose images differ in size runs image by image (the per-image result is the same).
//   classifier:CHECKPOINT_STEM     a cxr classifier checkpoint (apps/train/classifier_trainer.h checkpoint_config
//       + load_classifier): images loaded as the trainer loads them (data/loader.h: antialiased resize to the
//       config's image_size × image_size, config.channels), normalised x ← (x − mean)/std per channel, a gray
//       image repeated to 3 channels; features = forward_features (the penultimate layer, e.g. 1024-d for
//       DenseNet-121). A chest-X-ray FID that needs no external weights — its values are comparable only between
//       runs with the same checkpoint.
//
// FID = d²((μ_r, Σ_r), (μ_g, Σ_g)) of the Gaussians fitted to the two sets' features (mean, unbiased covariance;
// metrics/frechet.h). Needs >= 2 images per set. Features are accumulated batch by batch in f64
// (FeatureAccumulator), so memory does not grow with the set.
//
// MS-SSIM: images are read as gray (1 channel, data/image_io.h luma rule for RGB files) and resized with the
// loader's antialiased bilinear rule to a common S×S (MsSsimOptions::size, default 256; MS-SSIM compares images of
// one size). With the standard 11×11 window, M-scale MS-SSIM needs S > 10·2^(M−1): M = 5 needs S >= 161. For a
// smaller S the number of scales is reduced to the largest M that fits (S 81..160: 4, 41..80: 3, 21..40: 2,
// 11..20: 1 = plain SSIM) and the first M standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) are
// renormalised to sum 1, so identical images still score 1 — such a value is NOT comparable with published 5-scale
// MS-SSIM, and the result says which scales and weights were used (ms_ssim_scale_weights). S < 11 is an error.
// Pairwise MS-SSIM is computed in f32 (metrics/ssim.h; about 1e-5 from the f64 value).
// Diversity of a set = mean MS-SSIM over its K(K−1)/2 unordered pairs (lower = more diverse). Intra-prompt
// diversity groups the set's images by their record's report/prompt text (data::Record::report, the manifest's
// "report" column), keeps the groups with >= 2 images (those with one are counted as skipped) and reports the mean
// over groups of the per-group mean pairwise MS-SSIM (metrics/ssim.h intra_prompt_diversity).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/record.h"
#include "metrics/frechet.h"
#include "tensor/tensor.h"

namespace cxr::apps {

struct ImageSet {
    std::string spec;                  // as given
    std::vector<data::Record> records;  // image_path always set; report/demographics when the source has them
    int64_t size() const { return static_cast<int64_t>(records.size()); }
};

// Resolves a SPEC (see above). Errors: a folder with no PNG/JPEG file, a path that does not exist, an unknown KIND,
// an empty selection — each names the spec.
ImageSet parse_image_set(const std::string& spec, int64_t max_images = 0);
// The PNG/JPEG files of a folder, sorted by name (an error when there are none).
std::vector<std::string> list_image_files(const std::string& folder);

class FeatureExtractor {
public:
    virtual ~FeatureExtractor() = default;
    virtual std::string name() const = 0;    // the spec it was made from
    virtual int64_t feature_dim() const = 0;
    // Runs over the images at `paths` in order, in batches of at most batch_size, calling consume(features [B, D]
    // f32 on the CPU, images done so far) after each batch.
    virtual void extract(const std::vector<std::string>& paths, int64_t batch_size,
                         const std::function<void(const tensor::Tensor&, int64_t)>& consume) = 0;
    // All features of the images at `paths`, in order: [N, D] f32 on the CPU.
    tensor::Tensor features_of(const std::vector<std::string>& paths, int64_t batch_size = 16);
};

struct ExtractorOptions {
    std::string device = "cpu";  // "cpu" or "cuda[:n]"
    int workers = 2;             // decoding threads (classifier path, data::Loader)
};

// "inception:PATH" or "classifier:STEM"; an unknown kind, a missing weights file or a strict-load failure throws.
std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& spec, const ExtractorOptions& options = {});

// Runs the extractor over a set in batches of options.batch_size, calling `consume` with each [B, D] batch of
// features in order; a progress bar on stderr unless quiet.
void for_each_feature_batch(const ImageSet& set, FeatureExtractor& extractor, int64_t batch_size, bool quiet,
                            const std::function<void(const tensor::Tensor&)>& consume);
// All features of a set: [N, D] f32 on the CPU.
tensor::Tensor set_features(const ImageSet& set, FeatureExtractor& extractor, int64_t batch_size = 16,
                            bool quiet = true);
// Mean and covariance of a set's features (needs >= 2 images).
metrics::FeatureStats set_feature_statistics(const ImageSet& set, FeatureExtractor& extractor,
                                             int64_t batch_size = 16, bool quiet = true);

struct FidResult {
    double fid = 0;
    int64_t n_a = 0, n_b = 0;
    int64_t feature_dim = 0;
    std::string extractor;
    metrics::FrechetTerms terms;  // mean term, traces, trace of the square root, whether regularised
    nlohmann::json to_json() const;
};
// FID between sets a and b (each >= 2 images; an error names the set otherwise).
FidResult fid(const ImageSet& a, const ImageSet& b, FeatureExtractor& extractor, int64_t batch_size = 16,
              bool quiet = true);

struct MsSsimOptions {
    int size = 256;                   // common side S the images are resized to (>= 11; >= 161 for 5 scales)
    int64_t max_pairs_per_batch = 16;
    std::string device = "cpu";       // where the MS-SSIM convolutions run ("cpu", "cuda", "cuda:N")
};
// The scale weights used at side S (the 5 standard ones for S >= 161, else the renormalised first M; see above).
std::vector<double> ms_ssim_scale_weights(int size);
// The images of a set for MS-SSIM: [N, 1, S, S] f32 in [0, 1].
tensor::Tensor load_ms_ssim_images(const ImageSet& set, int size);

struct DiversityReport {
    int64_t n = 0;                    // images
    int64_t pairs = 0;                // K(K−1)/2
    double mean_pairwise_ms_ssim = 0;
    int size = 0;                     // S
    std::vector<double> scale_weights;
    nlohmann::json to_json() const;
};
// Mean pairwise MS-SSIM within a set (>= 2 images).
DiversityReport set_diversity(const ImageSet& set, const MsSsimOptions& options = {});

struct PairedMsSsimReport {
    int64_t n = 0;                    // pairs (a_i, b_i)
    double mean = 0, min = 0, max = 0;
    int size = 0;                     // S
    std::vector<double> scale_weights;
    std::vector<double> per_pair;     // in set order
    nlohmann::json to_json() const;
};
// MS-SSIM between the i-th images of two sets of equal size (folders in file-name order, manifests in row order),
// e.g. reconstructions against originals.
PairedMsSsimReport paired_ms_ssim(const ImageSet& a, const ImageSet& b, const MsSsimOptions& options = {});

struct PromptDiversityReport {
    int64_t groups = 0;               // prompts with >= 2 images
    int64_t skipped_groups = 0;       // prompts with a single image
    int64_t images = 0;               // images in the kept groups
    double mean = 0;                  // mean over the kept groups of their mean pairwise MS-SSIM
    std::vector<std::string> prompts;  // the kept prompts, in order of first appearance
    std::vector<double> per_group;
    nlohmann::json to_json() const;
};
// Intra-prompt diversity, grouping by Record::report. Throws when no record has a report or no prompt has >= 2
// images.
PromptDiversityReport prompt_diversity(const ImageSet& set, const MsSsimOptions& options = {});

}  // namespace cxr::apps
