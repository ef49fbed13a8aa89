// The classifier trainer: trains a vision model (vision/models.h) on multi-label chest X-ray records with masked
// BCE (or focal loss), validates every epoch, keeps the best checkpoint by validation macro AUROC, stops early on
// the validation loss, and resumes a killed run exactly where its last complete epoch ended.
//
// One epoch (epoch e = 0, 1, ...):
//   the loader (data/loader.h) delivers the training records in the order f(seed, e), resized to S×S, augmented
//   per image from a Philox stream of (seed, e, index); images are normalised x ← (x − mean)/std per channel
//   (one channel is then repeated to the model's three);
//   loss = masked_bce_with_logits(logits, targets) (unknown labels masked; nn/losses.h) or sigmoid_focal_loss;
//   gradients are accumulated over `accumulation` batches (each batch's loss divided by `accumulation`), then
//   optionally clipped to a global norm and applied by the optimizer with lr = lr0 · schedule(step)
//   (nn/lr_schedule.h; `warmup_epochs` of linear warmup then cosine to 0 over all steps, or constant).
//   Validation: eval mode, no gradients; validation loss (same loss) and per-label AUROC over the labels that have
//   both classes in the validation set; macro AUROC = their mean (metrics/classification.h).
//   Best checkpoint: the epoch with the highest validation macro AUROC (ties: the earlier). Early stopping: when
//   the validation loss has not improved on its minimum for `patience` epochs (0: never).
// Outputs in out_dir: config.json (the resolved config), run.json (git commit, build, backends), log.jsonl (one
//   line per optimizer step: {"type":"step", epoch, step, loss, lr}; one per epoch: {"type":"epoch", epoch,
//   train_loss, valid_loss, valid_macro_auroc, valid_auroc{label: v}, seconds, best}), best.* and last.*
//   checkpoints (nn/checkpoint.h), and summary.json when training ends.
// Resume: when out_dir/last.json exists, its config must equal this one (else an error says which keys differ);
//   weights, optimizer state, epoch, step, early-stopping state, best metric and the default generator's
//   (seed, offset) are restored, log.jsonl is cut back to the last completed epoch, and training continues with
//   epoch + 1. On the CPU the continued run is bit-identical to an uninterrupted one (tests/apps).
// Initialisation (pretrain -> fine-tune): `init` names a checkpoint stem; its weights are loaded; when its label
//   set differs from this run's, the head is replaced (a fresh head with this run's labels) and the checkpoint's
//   head weights are dropped.
// Demographic targets (for the demographic classifiers that check synthetic images, apps/synth/synthesize.h):
//   `labels` may also name targets derived from each record's demographics instead of its findings:
//     "sex:female"                                         1 for F, 0 for M, unknown when the sex is unknown;
//     "race:asian", "race:black", "race:hispanic", "race:white"   one-vs-rest: 1 for that race, 0 for another of
//                                                          the four, unknown when the race is other/unknown;
//     "age:18-40", "age:40-60", "age:60-80", "age:80+"     the age bins of metrics/fairness.h (age_bin: [18, 40),
//                                                          [40, 60), [60, 80), [80, inf)), one-vs-rest: 1 in the
//                                                          bin, 0 in another bin, unknown without an age or < 18.
//   They mix freely with CheXpert names (at most 14 labels in all when any is demographic). Unknown targets are
//   masked like unknown findings, so the loss, per-label AUROC, best checkpoint, predict() truth columns and the
//   predictions CSV work unchanged. Implementation: each record is copied with its label slot l holding the value of
//   label l (demographic_targets below), and the loader reads slots 0..L-1.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/record.h"
#include "metrics/predictions.h"
#include "vision/heads.h"

namespace cxr::apps {

struct ClassifierConfig {
    // model
    std::string arch = "densenet121";  // vision/models.h
    std::string head = "linear";       // "linear" or "mlp" (1024→512→ReLU→Dropout(0.5)→classes)
    std::vector<std::string> labels;   // CheXpert names ("Effusion" accepted) and/or demographic targets
                                       // ("sex:female", "race:*", "age:*", above); empty = the 14 CheXpert labels
    int image_size = 224;
    int channels = 3;                  // loaded channels; a gray (1-channel) image is repeated to the model's 3
    std::vector<double> mean = {0.485, 0.456, 0.406};  // per-channel normalisation (ImageNet's by default)
    std::vector<double> std = {0.229, 0.224, 0.225};
    // optimisation
    std::string optimizer = "adamw";   // "adamw", "adam", "sgd"
    double lr = 1e-4;
    double weight_decay = 0.05;
    double momentum = 0.9;             // sgd only
    std::string schedule = "cosine";   // "cosine" (with warmup_epochs of linear warmup) or "constant"
    double warmup_epochs = 0.0;
    int64_t epochs = 10;
    int64_t batch_size = 32;
    int64_t accumulation = 1;          // batches per optimizer step
    double clip_grad_norm = 0.0;       // 0: no clipping
    std::string loss = "bce";          // "bce" or "focal"
    double focal_alpha = -1.0, focal_gamma = 2.0;
    std::string uncertainty = "ignore";  // training labels: CheXpert uncertainty policy (ignore, zeros, ones)
    int64_t patience = 0;              // early stopping on validation loss; 0: off
    std::string augment = "none";      // "none", "flip" (horizontal flip), "standard" (flip, ±10° rotation,
                                       // brightness/contrast 0.8–1.2), "randaugment" (2 ops, magnitude 9)
    std::string init;                  // checkpoint stem to start from ("" : random initialisation)
    bool autocast = false;             // bf16 autocast (tensor/autocast.h): matmul/conv in bf16, f32 master
                                       // weights; meant for CUDA (the CPU emulates bf16 in f32: slower, same math)
    std::string device = "cpu";        // "cpu" or "cuda"
    uint64_t seed = 0;
    int workers = 2;
    std::string cache;                 // loader cache file ("" : none)

    // Unknown keys and bad values throw naming the key.
    static ClassifierConfig from_json(const nlohmann::json& j);
    nlohmann::json to_json() const;
    void validate() const;
    // The label names in the order of the model's outputs, and their CheXpert indices (-1 for a demographic
    // target). An unknown name throws naming it.
    std::vector<std::string> label_names() const;
    std::vector<int> label_indices() const;
    bool has_demographic_targets() const;
};

// The demographic target names accepted in ClassifierConfig::labels: sex:female, race:asian, race:black,
// race:hispanic, race:white, age:18-40, age:40-60, age:60-80, age:80+.
const std::vector<std::string>& demographic_target_names();
bool is_demographic_target(const std::string& label);
// The value of a demographic target for a record (positive / negative / unknown, rules above); throws on a name
// that is not a demographic target.
data::LabelValue demographic_target(const std::string& label, const data::Record& record);
// Records as the loader sees them for a config: unchanged when every label is a CheXpert label; otherwise copies
// whose label slot l holds the value of the config's label l (CheXpert or demographic) and slots >= L unknown.
std::vector<data::Record> target_records(const ClassifierConfig& config, const std::vector<data::Record>& records);
// The loader's target columns for the records of target_records(): label_indices() for CheXpert-only configs,
// else 0..L-1.
std::vector<int> target_columns(const ClassifierConfig& config);

// The trainer's resumable bookkeeping (stored in every checkpoint's meta as "state").
struct TrainState {
    int64_t epoch = -1;  // last completed epoch
    int64_t step = 0;    // optimizer steps taken
    int64_t best_epoch = -1;
    double best_auroc = -std::numeric_limits<double>::infinity();
    double best_loss = std::numeric_limits<double>::infinity();
    int64_t epochs_without_improvement = 0;
    bool early_stopped = false;

    // After epoch e: the best epoch is the first with the highest finite validation macro AUROC (epoch 0 when none
    // is finite); the validation loss "improves" when strictly below its minimum so far; early stop once it has
    // not improved for `patience` consecutive epochs (patience 0: never).
    void record_epoch(int64_t e, double valid_loss, double valid_auroc, int64_t patience);
    nlohmann::json to_json() const;
    static TrainState from_json(const nlohmann::json& j);
};

struct TrainResult {
    int64_t epochs_run = 0;       // completed epochs (including resumed ones)
    int64_t best_epoch = -1;
    double best_valid_auroc = 0;  // NaN when no label had both classes in validation
    bool early_stopped = false;
    bool resumed = false;
    std::string best_checkpoint;  // stem, e.g. out_dir/best
    std::vector<double> step_losses;  // the losses of the optimizer steps run in this call
};

struct TrainHooks {
    // Called after each completed epoch (after its checkpoints are written); return false to stop the run there
    // (used by tests to simulate a kill).
    std::function<bool(int64_t epoch)> after_epoch;
    bool quiet = false;  // no progress bar
};

TrainResult train_classifier(const ClassifierConfig& config, const std::vector<data::Record>& train,
                             const std::vector<data::Record>& valid, const std::string& out_dir,
                             const TrainHooks& hooks = {});

// A model with the config's architecture and labels, weights from a checkpoint stem (strict).
std::shared_ptr<vision::ImageClassifier> load_classifier(const std::string& stem, const ClassifierConfig& config);
// The config saved in a checkpoint's meta.
ClassifierConfig checkpoint_config(const std::string& stem);

// Scores (sigmoid of the logits) of every record, as a predictions table with the record's truth for each label
// (1/0; unknown/uncertain empty) and its demographics (sex, age, race, site); image_id = the image path.
metrics::Predictions predict(vision::ImageClassifier& model, const ClassifierConfig& config,
                             const std::vector<data::Record>& records, bool quiet = true);

// Scores (sigmoid of the logits) [B, L] f32 on the CPU of images already at the config's size: images [B, C, S, S]
// in [0, 1] with C = config.channels (as the loader delivers them before augmentation); normalised and run as in
// validation (eval mode, no gradients, the config's device and autocast).
tensor::Tensor score_images(vision::ImageClassifier& model, const ClassifierConfig& config,
                            const tensor::Tensor& images);

}  // namespace cxr::apps
