// The study runner (`cxr study`): trains classifiers under the four strategies of the synthetic-data studies
// (RoentGen-v2, Moroianu et al. 2025; Ktena et al., Nat. Med. 2024) from a real and a synthetic image set,
// evaluates every model on every test set with `cxr evaluate` semantics, and writes metrics.json and report.html.
//
// CONFIG (JSON; relative paths are resolved against the config file's folder):
// {
//   "name": "my study",
//   "data": {
//     "train": SOURCE, "valid": SOURCE,                    real training and validation sets (apps/train/data_source.h)
//     "tests": [{"name": "in_distribution", "source": SOURCE, "description": "..."}, ...],  first = in-distribution
//     "synthetic": SOURCE,                                  the synthetic image set
//     "synthetic_description": "RoentGen-v2 public set",   shown in the report
//     "synthetic_stand_in": false                           true: the report says the set is a stand-in
//   },
//   "model": {ClassifierConfig: apps/train/classifier_trainer.h},  the settings every strategy starts from
//   "strategies": [
//     {"name": "real", "kind": "real"},                                    (i) real only — the baseline
//     {"name": "synthetic", "kind": "synthetic"},                          (ii) synthetic only
//     {"name": "mix", "kind": "mix", "synthetic_amounts": [500, 1000]},    (iii) real + N synthetic images
//        (or "alpha": [0.5]: the synthetic share of the mixed set, N = round(α·R/(1−α)) for R real images)
//     {"name": "pretrain_finetune", "kind": "pretrain_finetune",           (iv) synthetic pretraining, real
//        "pretrain_lr": 1e-4, "finetune_lr": 5e-5, "real_images": [100, 0]} fine-tuning; a sweep over the real
//                                                                           images used (0 = all)
//     {"name": "oversample_sex", "kind": "real", "oversample": "sex"},    baselines on real data: oversampling to
//     {"name": "focal", "kind": "real", "train": {"loss": "focal"}},      balance an attribute (sex, race, age, or
//     {"name": "augment", "kind": "real", "train": {"augment": "randaugment"}}   an intersection "sex,race"),
//   ],                                                                     focal loss, heuristic augmentation
//   every strategy may add "train": {ClassifierConfig overrides} and "real_images" / "synthetic_images": N (a
//   subset of N images, 0 = all; a list makes a sweep for the kinds that use that set).
//   "baseline": "real",             the strategy the others are compared with (DeLong, AUROC differences)
//   "seeds": [0, 1, 2],             one model per strategy variant and seed
//   "evaluate": {"bootstrap": 1000, "seed": 0, "groups": [["sex"], ["sex", "race"], ["sex", "age"]],
//                "min_subgroup_size": 0},
//   "samples": {"findings": ["No Finding", "Cardiomegaly", ...], "per_cell": 1}    image grids of the report
// }
// RUNS: each (strategy, variant, seed) is one run in DIR/runs/<id>/ (the trainer's files, pred_<test>.csv,
//   metrics_<test>.json, done.json). Subsets are the first N of a Philox permutation of the set by (seed, set), so
//   runs with the same seed use the same images. A pretrain_finetune strategy first trains one pretraining run
//   per seed on the synthetic set (lr = pretrain_lr), then fine-tunes it on the real set for each sweep value
//   (lr = finetune_lr) — the checkpoint is loaded whole when the label sets agree.
//   Oversampling: each subgroup of the attribute (images with an unknown value form their own group) is repeated
//   (whole copies, then the first images of a Philox permutation) up to the size of the largest subgroup.
// RESUME: a run with done.json is not retrained or re-evaluated; an interrupted run resumes from its last epoch
//   (the trainer's resume); the summary and report are always rebuilt from all runs.
// OUTPUT: DIR/config.json (resolved), DIR/metrics.json (schema in apps/study/report.h), DIR/report.html,
//   DIR/runs/<id>/*, DIR/run.json.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/train/classifier_trainer.h"
#include "apps/train/data_source.h"

namespace cxr::apps {

struct StudyTest {
    std::string name, description;
    DataSource source;
};

struct StudyStrategy {
    std::string name;
    std::string kind;                  // real, synthetic, mix, pretrain_finetune
    nlohmann::json train = nlohmann::json::object();  // ClassifierConfig overrides
    std::vector<int64_t> real_images = {0};           // sweep values (0 = all)
    std::vector<int64_t> synthetic_images = {0};
    std::vector<int64_t> synthetic_amounts;           // mix
    std::vector<double> alpha;                        // mix, alternative to synthetic_amounts
    double pretrain_lr = 1e-4, finetune_lr = 5e-5;    // pretrain_finetune
    std::string oversample;                           // attribute(s) to balance, "" = none
};

struct StudyConfig {
    std::string name = "study";
    DataSource train, valid, synthetic;
    bool has_synthetic = false;
    std::string synthetic_description;
    bool synthetic_stand_in = false;
    std::vector<StudyTest> tests;
    nlohmann::json model = nlohmann::json::object();
    std::vector<StudyStrategy> strategies;
    std::string baseline = "real";
    std::vector<uint64_t> seeds = {0};
    int64_t bootstrap = 1000;
    uint64_t eval_seed = 0;
    std::vector<std::vector<std::string>> groups = {{"sex"}, {"sex", "race"}, {"sex", "age"}};
    int64_t min_subgroup_size = 0;
    std::vector<std::string> sample_findings;
    int64_t samples_per_cell = 1;

    // Errors name the key ("strategies[2].kind: ...").
    static StudyConfig from_json(const nlohmann::json& j, const std::string& base_dir = "");
    nlohmann::json to_json() const;
};

struct StudyHooks {
    bool quiet = false;
    // Called after each run is complete (done.json written) with its id; return false to stop the study there
    // (tests use it to simulate a kill).
    std::function<bool(const std::string& run_id)> after_run;
};

struct StudyResult {
    std::vector<std::string> trained;  // runs trained (or resumed) by this call
    std::vector<std::string> reused;   // runs found complete
    bool complete = false;             // every run done and the report written
    std::string report;                // DIR/report.html when complete
};

StudyResult run_study(const StudyConfig& config, const std::string& out_dir, const StudyHooks& hooks = {});

// The pieces, exposed for tests.
// The first n of a Philox permutation of 0..size-1 by (seed, stream) (n = 0 or n >= size: all, in permuted order).
std::vector<size_t> subset_indices(size_t size, int64_t n, uint64_t seed, uint64_t stream);
// Oversampling to balance `attributes` (see above); deterministic by seed.
std::vector<data::Record> oversample(const std::vector<data::Record>& records, const std::vector<std::string>& attributes,
                                     uint64_t seed);
// The group key of a record for attributes like {"sex", "race"} ("F+Black"; "?" for an unknown value).
std::string attribute_key(const data::Record& r, const std::vector<std::string>& attributes);

}  // namespace cxr::apps
