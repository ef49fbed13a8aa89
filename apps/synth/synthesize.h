// The demographically balanced synthetic dataset with quality control by demographic classifiers, after
// RoentGen-v2 (Moroianu et al. 2025, "Improving Performance, Robustness, and Fairness of Radiographic AI Models
// with Finely-Controllable Synthetic Data"): every source impression is expanded into prompts that fix sex, race
// and age (data/prompts.h), the diffusion model draws an image per prompt, and demographic classifiers check that
// each image shows the demographics its prompt asked for; a disagreeing image is drawn again with a new seed, up to
// a retry limit.
//
// PROMPTS. The source records (a DataSource, apps/train/data_source.h; optionally only the first `max_sources`)
//   go through data::balanced_expansion (design "balanced": all 8 sex × race combinations per impression, age
//   jittered ±5 years) or data::uniform_attribute_resampling (design "uniform": one prompt per impression, sex and
//   race uniform), with the Philox stream `seed` and the pipeline's CLIP tokenizer as token counter (so every
//   prompt fits CLIP's 77 positions). Item i is the i-th prompt; each item gets `images_per_prompt` copies j.
//   Sources without an age or an impression are skipped (data/prompts.h); none left is an error.
//
// SEEDS. Attempt a (0..max_retries) of item i, copy j starts from the noise of
//     seed(i, j, a) = seed + (i · images_per_prompt + j) · (max_retries + 1) + a.
//   Each (i, j, a) has its own seed (no two attempts of the run share one, and the image does not depend on the
//   batch it was drawn in), and the seed depends only on the config, so a resumed run draws exactly the images an
//   uninterrupted one would have drawn.
//
// QUALITY CONTROL. With qc.attributes non-empty, every attempt is scored by the QC callback — for the real run a
//   demographic classifier (apps/train/classifier_trainer.h "Demographic targets") on the 8-bit image as written,
//   resized to its image_size and normalised as its config says — giving p(female), p(race:r) for the four races
//   and p(age:b) for the four age bins (sigmoids, one-vs-rest). An attempt is accepted when, for every checked
//   attribute, the prompt's class has the highest probability within its group:
//     sex:  p(female) >= 0.5 exactly when the prompt says female;
//     race: p(prompt's race) >= p(every other race);   age: p(bin of the prompt's age) >= p(every other bin)
//   (bins [18, 40), [40, 60), [60, 80), [80, inf) of metrics/fairness.h; ties accept). The first accepted attempt
//   is kept; when all max_retries + 1 attempts fail, the last one is kept and marked qc_failed
//   (on_failure "keep") or no image is written (on_failure "drop"). Without QC the first attempt is kept.
//   The classifier's config must have the labels the checked attributes need ("sex:female"; the four "race:*";
//   the four "age:*"): a missing one is an error naming it.
//
// OUTPUTS in out_dir (every file written under a temporary name and renamed):
//   images/<item, 6 digits>_<copy, 2 digits>.png   8-bit grayscale (the mean of the generator's RGB channels)
//   manifest.csv   the generic manifest (data/README.md) of the kept images in (item, copy) order: path, sex, age,
//                  race of the prompt, the 14 labels copied from the source record, report = the prompt, dataset
//                  "synthetic", site "synthetic", split and view copied from the source record (split "train" when
//                  the source has none), patient_id "synthetic_<source patient id>" (all images of one source
//                  impression share it, so a patient-disjoint resplit keeps them together), study_id "<item>_<copy>"
//   qc.jsonl       one JSON line per finished image, appended as each finishes: item, copy, prompt, sex, race, age,
//                  age_bin, source, seed (of the image kept), accepted, kept, path (null when dropped) and attempts
//                  [{attempt, seed, accepted, failed: [attributes], p_female, p_race{}, p_age{}}]
//   qc.json        the summary: images, kept, dropped, accepted, accepted_first_attempt, qc_failed, attempts,
//                  acceptance_rate (accepted / images), first_attempt_acceptance_rate, attempt_acceptance_rate
//                  (accepted / attempts), failed_checks {sex, race, age: failed attempts}, the same counts per
//                  sex×race subgroup ("F+Asian", ... as metrics/fairness.h names them) and failures [{item, copy,
//                  prompt, attempts, kept}]
//   config.json    the resolved config;   run.json   the run record (apps/progress.h) and the expansion counts.
// RESUME. An image with a line in qc.jsonl (and, when kept, its PNG) is finished and is not drawn again; a half-
//   written last line (a killed run) is dropped; an image without its line is drawn again (same seeds, so the same
//   image). The saved config.json must equal the new config except for "batch", "out" and "name", else an error
//   lists the keys that differ. The manifest and qc.json are rewritten from qc.jsonl at the end of every run.
//
// CONFIG (JSON; unknown keys are errors naming the key; relative paths are resolved against the config's folder):
//   "model":             the Stable Diffusion pipeline folder (diffusers layout; diffusion/pipeline.h), required
//                        by `cxr synthesize`
//   "source":            a DataSource {"dataset", "root", "split", ...} whose records give impression (report),
//                        age, labels and split, required
//   "design":            "balanced" (default) or "uniform"
//   "images_per_prompt": images per prompt (default 1)
//   "steps":             denoising steps (50);   "guidance": classifier-free guidance scale (7.5)
//   "scheduler":         "default" (the folder's), "ddpm", "ddim", "pndm" or "dpm"
//   "negative":          the negative prompt of every image ("" : none)
//   "seed":              base seed of the prompt design and of the image seeds above (0)
//   "max_retries":       further attempts after a rejected one (3; 0: a single attempt)
//   "qc":                {"classifier": checkpoint stem of a demographic classifier, "attributes": any of "sex",
//                        "race", "age", "on_failure": "keep" (default) or "drop"}; absent or no attributes: no QC
//   "max_sources":       use the first N source records only (0: all)
//   "batch":             images denoised together (1); it does not change any image
//   "device":            "cpu" or "cuda[:n]" for the generator and the classifier ("cpu")
//   "variant":           weight variant of the pipeline folder, e.g. "fp16" ("")
//   "out":               the output folder (`--out` overrides it)
//   "name":              free text describing the run (not used)
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/train/data_source.h"
#include "data/prompts.h"
#include "data/record.h"
#include "tensor/tensor.h"

namespace cxr::diffusion {
class StableDiffusionPipeline;
}

namespace cxr::apps {

struct ClassifierConfig;

struct QcConfig {
    std::string classifier;               // checkpoint stem of the demographic classifier
    std::vector<std::string> attributes;  // any of "sex", "race", "age"; empty: no QC
    std::string on_failure = "keep";      // "keep" (the last attempt, marked qc_failed) or "drop"
    bool enabled() const { return !attributes.empty(); }
};

struct SynthesisConfig {
    std::string model;
    DataSource source;
    std::string design = "balanced";
    int64_t images_per_prompt = 1;
    int64_t steps = 50;
    double guidance = 7.5;
    std::string scheduler = "default";
    std::string negative;
    uint64_t seed = 0;
    int64_t max_retries = 3;
    QcConfig qc;
    int64_t max_sources = 0;
    int64_t batch = 1;
    std::string device = "cpu";
    std::string variant;
    std::string out;
    std::string name;

    // Unknown keys and bad values throw naming the key; relative paths are resolved against base_dir.
    static SynthesisConfig from_json(const nlohmann::json& j, const std::string& base_dir = "");
    nlohmann::json to_json() const;
    void validate() const;
};

// The seed of attempt `attempt` of item `item`, copy `copy` (rule above).
uint64_t attempt_seed(const SynthesisConfig& config, int64_t item, int64_t copy, int64_t attempt);

// One image to draw.
struct ImageRequest {
    int64_t item = 0, copy = 0, attempt = 0;
    uint64_t seed = 0;
    std::string prompt;
};
// Draws one image per request: [C, H, W] f32 on the CPU in [0, 1], C = 1 or 3 (3 is averaged to gray).
using ImageGenerator = std::function<std::vector<tensor::Tensor>(const std::vector<ImageRequest>& requests)>;

// A demographic classifier's probabilities for one image; an attribute the QC does not check may stay empty.
struct DemographicProbabilities {
    std::optional<double> female;               // p(female)
    std::optional<std::array<double, 4>> race;  // Asian, Black, Hispanic, White
    std::optional<std::array<double, 4>> age;   // 18-40, 40-60, 60-80, 80+
};
// Scores the images of one round (the images as returned by the generator, with their requests).
using QcCallback = std::function<std::vector<DemographicProbabilities>(const std::vector<tensor::Tensor>& images,
                                                                       const std::vector<ImageRequest>& requests)>;

struct QcDecision {
    bool accepted = true;
    std::vector<std::string> failed;  // the checked attributes whose top class is not the prompt's
};
// The acceptance rule above. Throws when a checked attribute has no probabilities.
QcDecision qc_decide(const DemographicProbabilities& p, const data::PromptItem& item,
                     const std::vector<std::string>& attributes);

struct SynthesisProgress {
    int64_t done = 0, total = 0;  // finished images (including resumed ones) / planned images
    int64_t accepted = 0;         // finished images that passed QC (all, without QC)
    int64_t attempts = 0;         // attempts drawn in this call
};
using SynthesisProgressCallback = std::function<void(const SynthesisProgress&)>;

struct SynthesisResult {
    int64_t images = 0;     // planned: prompts × images_per_prompt
    int64_t kept = 0, dropped = 0, accepted = 0, qc_failed = 0;
    int64_t attempts = 0;   // over all finished images (including resumed ones)
    int64_t resumed = 0;    // images found finished by an earlier run
    int64_t drawn = 0;      // attempts drawn in this call
    data::ExpansionStats expansion;
    std::string manifest;   // out/manifest.csv
    nlohmann::json qc;      // the content of qc.json
};

// The prompts of a config for its source records (design, seed, max_sources, token counter).
std::vector<data::PromptItem> synthesis_prompts(const SynthesisConfig& config, const std::vector<data::Record>& sources,
                                                const data::TokenCounter& count = {},
                                                data::ExpansionStats* stats = nullptr);

// Runs (or resumes) the synthesis into config.out. `qc` may be empty when config.qc checks nothing.
SynthesisResult synthesize(const SynthesisConfig& config, const std::vector<data::Record>& sources,
                           const ImageGenerator& generate, const QcCallback& qc,
                           const SynthesisProgressCallback& progress = {}, const data::TokenCounter& count = {});
// The same with the records of config.source (load_source).
SynthesisResult synthesize(const SynthesisConfig& config, const ImageGenerator& generate, const QcCallback& qc,
                           const SynthesisProgressCallback& progress = {}, const data::TokenCounter& count = {});

// ---- the real components

// Throws unless the classifier config has the labels the attributes need, naming the missing ones and `stem`.
void check_qc_classifier(const ClassifierConfig& classifier, const std::vector<std::string>& attributes,
                         const std::string& stem);
// The demographic classifier of a checkpoint stem (apps/train/classifier_trainer.h load_classifier) as a QC
// callback, run on `device`: each image is averaged to gray, quantised to 8 bits as its PNG will be, resized to
// the classifier's image_size (data/loader.h resize_image, the loader's rule), repeated to 3 channels when the
// classifier reads 3, then scored by score_images.
QcCallback make_classifier_qc(const std::string& stem, const std::vector<std::string>& attributes,
                              const std::string& device);
// StableDiffusionPipeline::generate with each request's prompt and seed and the config's steps, guidance and
// negative prompt; images returned as [1, H, W] (the mean of the RGB channels). The pipeline must outlive it.
ImageGenerator make_pipeline_generator(diffusion::StableDiffusionPipeline& pipe, const SynthesisConfig& config);

}  // namespace cxr::apps
