// The classifier trainer (apps/train/classifier_trainer.h).
#include "apps/train/classifier_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "apps/config_json.h"
#include "apps/progress.h"
#include "data/labels.h"
#include "data/loader.h"
#include "metrics/classification.h"
#include "metrics/fairness.h"
#include "nn/checkpoint.h"
#include "nn/clip.h"
#include "nn/losses.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "vision/models.h"
#include "vision/transforms.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;
using tensor::Tensor;

// ---------------------------------------------------------------- config

namespace {

const std::vector<std::string>& config_keys() {
    static const std::vector<std::string> k = {
        "arch",       "head",           "labels",      "image_size",  "channels",    "mean",         "std",
        "optimizer",  "lr",             "weight_decay", "momentum",   "schedule",    "warmup_epochs", "epochs",
        "batch_size", "accumulation",   "clip_grad_norm", "loss",     "focal_alpha", "focal_gamma",  "uncertainty",
        "patience",   "augment",        "init",        "autocast",    "device",      "seed",         "workers",
        "cache"};
    return k;
}

const char* const kWhere = "classifier config";

}  // namespace

ClassifierConfig ClassifierConfig::from_json(const json& j) {
    check_known_keys(j, kWhere, config_keys());
    ClassifierConfig c;
    read_key(j, "arch", c.arch, kWhere);
    read_key(j, "head", c.head, kWhere);
    read_key(j, "labels", c.labels, kWhere);
    read_key(j, "image_size", c.image_size, kWhere);
    read_key(j, "channels", c.channels, kWhere);
    if (c.channels == 1 && !j.contains("mean")) c.mean = {0.449};  // the mean of ImageNet's three
    if (c.channels == 1 && !j.contains("std")) c.std = {0.226};
    read_key(j, "mean", c.mean, kWhere);
    read_key(j, "std", c.std, kWhere);
    read_key(j, "optimizer", c.optimizer, kWhere);
    read_key(j, "lr", c.lr, kWhere);
    read_key(j, "weight_decay", c.weight_decay, kWhere);
    read_key(j, "momentum", c.momentum, kWhere);
    read_key(j, "schedule", c.schedule, kWhere);
    read_key(j, "warmup_epochs", c.warmup_epochs, kWhere);
    read_key(j, "epochs", c.epochs, kWhere);
    read_key(j, "batch_size", c.batch_size, kWhere);
    read_key(j, "accumulation", c.accumulation, kWhere);
    read_key(j, "clip_grad_norm", c.clip_grad_norm, kWhere);
    read_key(j, "loss", c.loss, kWhere);
    read_key(j, "focal_alpha", c.focal_alpha, kWhere);
    read_key(j, "focal_gamma", c.focal_gamma, kWhere);
    read_key(j, "uncertainty", c.uncertainty, kWhere);
    read_key(j, "patience", c.patience, kWhere);
    read_key(j, "augment", c.augment, kWhere);
    read_key(j, "init", c.init, kWhere);
    read_key(j, "autocast", c.autocast, kWhere);
    read_key(j, "device", c.device, kWhere);
    read_key(j, "seed", c.seed, kWhere);
    read_key(j, "workers", c.workers, kWhere);
    read_key(j, "cache", c.cache, kWhere);
    c.validate();
    return c;
}

json ClassifierConfig::to_json() const {
    return {{"arch", arch},
            {"head", head},
            {"labels", label_names()},
            {"image_size", image_size},
            {"channels", channels},
            {"mean", mean},
            {"std", std},
            {"optimizer", optimizer},
            {"lr", lr},
            {"weight_decay", weight_decay},
            {"momentum", momentum},
            {"schedule", schedule},
            {"warmup_epochs", warmup_epochs},
            {"epochs", epochs},
            {"batch_size", batch_size},
            {"accumulation", accumulation},
            {"clip_grad_norm", clip_grad_norm},
            {"loss", loss},
            {"focal_alpha", focal_alpha},
            {"focal_gamma", focal_gamma},
            {"uncertainty", uncertainty},
            {"patience", patience},
            {"augment", augment},
            {"init", init},
            {"autocast", autocast},
            {"device", device},
            {"seed", seed},
            {"workers", workers},
            {"cache", cache}};
}

void ClassifierConfig::validate() const {
    CXR_CHECK(one_of(head, {"linear", "mlp"}), "classifier config: head must be \"linear\" or \"mlp\", got \"", head,
              "\"");
    CXR_CHECK(image_size >= 16 && image_size <= 2048, "classifier config: image_size must be in 16..2048, got ",
              image_size);
    CXR_CHECK(channels == 1 || channels == 3, "classifier config: channels must be 1 or 3, got ", channels);
    CXR_CHECK(static_cast<int>(mean.size()) == channels && static_cast<int>(std.size()) == channels,
              "classifier config: mean and std need one value per channel (", channels, ")");
    for (double s : std) CXR_CHECK(s > 0, "classifier config: std values must be positive");
    CXR_CHECK(one_of(optimizer, {"adamw", "adam", "sgd"}), "classifier config: optimizer must be adamw, adam or sgd, got \"",
              optimizer, "\"");
    CXR_CHECK(lr > 0 && std::isfinite(lr), "classifier config: lr must be positive, got ", lr);
    CXR_CHECK(weight_decay >= 0, "classifier config: weight_decay must be >= 0");
    CXR_CHECK(one_of(schedule, {"cosine", "constant"}), "classifier config: schedule must be cosine or constant, got \"",
              schedule, "\"");
    CXR_CHECK(warmup_epochs >= 0, "classifier config: warmup_epochs must be >= 0");
    CXR_CHECK(epochs >= 1, "classifier config: epochs must be >= 1, got ", epochs);
    CXR_CHECK(batch_size >= 1, "classifier config: batch_size must be >= 1, got ", batch_size);
    CXR_CHECK(accumulation >= 1, "classifier config: accumulation must be >= 1, got ", accumulation);
    CXR_CHECK(clip_grad_norm >= 0, "classifier config: clip_grad_norm must be >= 0");
    CXR_CHECK(one_of(loss, {"bce", "focal"}), "classifier config: loss must be bce or focal, got \"", loss, "\"");
    CXR_CHECK(focal_gamma >= 0, "classifier config: focal_gamma must be >= 0");
    data::parse_uncertainty_policy(uncertainty);  // throws naming the accepted values
    CXR_CHECK(patience >= 0, "classifier config: patience must be >= 0");
    CXR_CHECK(one_of(augment, {"none", "flip", "standard", "randaugment"}),
              "classifier config: augment must be none, flip, standard or randaugment, got \"", augment, "\"");
    CXR_CHECK(workers >= 0, "classifier config: workers must be >= 0");
    tensor::parse_device(device);
    label_indices();  // throws on an unknown label
}

std::vector<std::string> ClassifierConfig::label_names() const {
    if (!labels.empty()) return labels;
    const auto& all = data::chexpert_labels();
    return {all.begin(), all.end()};
}

std::vector<int> ClassifierConfig::label_indices() const {
    std::vector<int> out;
    for (const auto& name : label_names()) {
        if (is_demographic_target(name)) {
            out.push_back(-1);
            continue;
        }
        const int i = data::label_index(name);
        if (i < 0) {
            std::string demo;
            for (const auto& d : demographic_target_names()) demo += (demo.empty() ? "" : ", ") + d;
            CXR_FAIL("classifier config: label \"", name,
                     "\" is neither a CheXpert label (data/labels.h) nor a demographic target (", demo, ")");
        }
        out.push_back(i);
    }
    CXR_CHECK(!out.empty(), "classifier config: no labels");
    CXR_CHECK(!has_demographic_targets() || out.size() <= static_cast<size_t>(data::kNumChexpertLabels),
              "classifier config: at most ", data::kNumChexpertLabels,
              " labels when demographic targets are used, got ", out.size());
    return out;
}

bool ClassifierConfig::has_demographic_targets() const {
    for (const auto& name : labels)
        if (is_demographic_target(name)) return true;
    return false;
}

// ---------------------------------------------------------------- demographic targets

const std::vector<std::string>& demographic_target_names() {
    static const std::vector<std::string> names = {"sex:female", "race:asian", "race:black", "race:hispanic",
                                                   "race:white", "age:18-40",  "age:40-60",  "age:60-80",
                                                   "age:80+"};
    return names;
}

bool is_demographic_target(const std::string& label) {
    const auto& n = demographic_target_names();
    return std::find(n.begin(), n.end(), label) != n.end();
}

data::LabelValue demographic_target(const std::string& label, const data::Record& r) {
    using data::LabelValue;
    CXR_CHECK(is_demographic_target(label), "\"", label, "\" is not a demographic target");
    auto value = [](bool positive) { return positive ? LabelValue::positive : LabelValue::negative; };
    if (label == "sex:female") {
        if (r.sex == data::Sex::unknown) return LabelValue::unknown;
        return value(r.sex == data::Sex::female);
    }
    if (label.rfind("race:", 0) == 0) {
        if (r.race == data::Race::other_unknown) return LabelValue::unknown;
        std::string name = data::race_name(r.race);  // "Asian", ...
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
        return value(label.substr(5) == name);
    }
    // age:<bin>, the bins of metrics/fairness.h
    if (!r.has_age()) return LabelValue::unknown;
    const std::string bin = metrics::age_bin(r.age);
    if (bin.empty()) return LabelValue::unknown;  // younger than 18
    return value(label.substr(4) == bin);
}

std::vector<data::Record> target_records(const ClassifierConfig& c, const std::vector<data::Record>& records) {
    if (!c.has_demographic_targets()) return records;
    const std::vector<std::string> names = c.label_names();
    const std::vector<int> idx = c.label_indices();
    std::vector<data::Record> out = records;
    for (data::Record& r : out) {
        std::array<data::LabelValue, data::kNumChexpertLabels> slots;
        slots.fill(data::LabelValue::unknown);
        for (size_t l = 0; l < names.size(); ++l)
            slots[l] = idx[l] < 0 ? demographic_target(names[l], r) : r.labels[static_cast<size_t>(idx[l])];
        r.labels = slots;
    }
    return out;
}

std::vector<int> target_columns(const ClassifierConfig& c) {
    if (!c.has_demographic_targets()) return c.label_indices();
    std::vector<int> cols(c.label_names().size());
    for (size_t l = 0; l < cols.size(); ++l) cols[l] = static_cast<int>(l);
    return cols;
}

// ---------------------------------------------------------------- pieces

namespace {

vision::HeadConfig head_config(const ClassifierConfig& c) {
    const auto n = static_cast<int64_t>(c.label_names().size());
    return c.head == "mlp" ? vision::HeadConfig::mlp(n) : vision::HeadConfig::linear(n);
}

std::shared_ptr<vision::ImageClassifier> build_model(const ClassifierConfig& c) {
    tensor::Generator gen(c.seed);
    return vision::make_classifier(c.arch, head_config(c), &gen);
}

std::shared_ptr<const vision::Transform> make_augment(const ClassifierConfig& c) {
    using namespace vision;
    if (c.augment == "none") return nullptr;
    auto pipeline = std::make_shared<Compose>();
    pipeline->add(std::make_shared<RandomHorizontalFlip>(0.5));
    if (c.augment == "standard") {
        pipeline->add(std::make_shared<RandomRotation>(std::array<double, 2>{-10.0, 10.0}));
        pipeline->add(std::make_shared<RandomIntensity>(RandomIntensity::Kind::brightness,
                                                        std::array<double, 2>{0.8, 1.2}));
        pipeline->add(std::make_shared<RandomIntensity>(RandomIntensity::Kind::contrast,
                                                        std::array<double, 2>{0.8, 1.2}));
    } else if (c.augment == "randaugment") {
        pipeline->add(std::make_shared<RandAugment>(2, 9));
    }
    return pipeline;
}

data::LoaderOptions loader_options(const ClassifierConfig& c, bool training) {
    data::LoaderOptions o;
    o.batch_size = c.batch_size;
    o.image_size = c.image_size;
    o.channels = c.channels;
    o.label_indices = target_columns(c);  // records pass through target_records() first
    o.shuffle = training;
    o.drop_last = false;
    o.seed = c.seed;
    o.workers = c.workers;
    o.cache_path = c.cache.empty() ? "" : c.cache + (training ? ".train" : ".eval");
    o.pin_memory = tensor::parse_device(c.device).is_cuda();
    if (training) {
        if (auto aug = make_augment(c))
            o.augment = [aug](const Tensor& image, tensor::Generator& gen) { return (*aug)(image, gen); };
    }
    return o;
}

// x ← (x − mean)/std per channel; images [B, C, S, S] on the target device -> [B, 3, S, S] (the models take three
// channels, as torchvision's: a gray image is repeated after normalisation).
Tensor normalise(const Tensor& images, const ClassifierConfig& c) {
    const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
    std::vector<float> m(c.mean.begin(), c.mean.end()), s(c.std.begin(), c.std.end());
    const Tensor mean = tensor::from_vector(m, {1, C, 1, 1}).to(images.device());
    const Tensor std = tensor::from_vector(s, {1, C, 1, 1}).to(images.device());
    const Tensor x = (images - mean) / std;
    return C == 3 ? x : x.expand({B, 3, H, W});
}

// The model's logits for a batch, under bf16 autocast when the config asks for it (tensor/autocast.h: convolutions
// and the head in bf16, batch norms in f32, the weights stay f32); returned in f32 for the loss and the scores.
Tensor forward_logits(vision::ImageClassifier& model, const data::Batch& batch, const ClassifierConfig& c,
                      tensor::Device dev) {
    const Tensor x = normalise(batch.images.to(dev), c);  // [B, 3, S, S]
    tensor::AutocastGuard amp(c.autocast ? std::optional<tensor::DType>(tensor::DType::bf16) : std::nullopt);
    return tensor::cast(model.forward(x), tensor::DType::f32);  // [B, L]
}

// Loss with unknown labels masked: targets are set to −1 where mask = 0 (nn/losses.h's unknown coding).
Tensor compute_loss(const Tensor& logits, const data::Batch& batch, const ClassifierConfig& c, tensor::Device dev) {
    const Tensor mask = batch.mask.to(dev);
    const Tensor targets = batch.targets.to(dev) * mask + (mask - 1.0);  // known: 0/1; unknown: −1
    if (c.loss == "focal") return nn::sigmoid_focal_loss(logits, targets, c.focal_alpha, c.focal_gamma);
    return nn::masked_bce_with_logits(logits, targets);
}

std::unique_ptr<nn::Optimizer> make_optimizer(const ClassifierConfig& c, const std::vector<Tensor>& params) {
    if (c.optimizer == "sgd") {
        nn::SGDOptions o;
        o.lr = c.lr;
        o.momentum = c.momentum;
        o.weight_decay = c.weight_decay;
        return std::make_unique<nn::SGD>(params, o);
    }
    nn::AdamOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    return std::make_unique<nn::Adam>(params, o, c.optimizer == "adamw");
}

nn::LrSchedule make_schedule(const ClassifierConfig& c, int64_t steps_per_epoch) {
    const int64_t total = std::max<int64_t>(1, c.epochs * steps_per_epoch);
    if (c.schedule == "constant") return nn::LrSchedule::constant();
    const auto warmup = std::min<int64_t>(total - 1, static_cast<int64_t>(std::llround(c.warmup_epochs * steps_per_epoch)));
    if (warmup <= 0) return nn::LrSchedule::cosine(total);
    return nn::LrSchedule::warmup_cosine(warmup, total);
}

struct Evaluation {
    double loss = 0;
    double macro_auroc = std::numeric_limits<double>::quiet_NaN();
    json per_label = json::object();
    std::vector<std::vector<double>> scores;  // [L][N]
};

// Validation loss and AUROCs. The scores of every record, in record order. `records` are target_records().
Evaluation evaluate_model(vision::ImageClassifier& model, const ClassifierConfig& c,
                          const std::vector<data::Record>& records, bool quiet, const std::string& label) {
    const tensor::Device dev = tensor::parse_device(c.device);
    const std::vector<int> idx = target_columns(c);
    const std::vector<std::string> names = c.label_names();
    const size_t L = idx.size(), N = records.size();
    Evaluation ev;
    ev.scores.assign(L, std::vector<double>(N, 0.0));
    const bool was_training = model.is_training();
    model.eval();
    tensor::NoGradGuard no_grad;
    data::Loader loader(records, loader_options(c, false));
    loader.start_epoch(0);
    data::Batch batch;
    double loss_sum = 0;
    int64_t loss_weight = 0, done = 0;
    std::unique_ptr<Progress> bar;
    if (!quiet) bar = std::make_unique<Progress>(label, static_cast<int64_t>(N));
    while (loader.next(batch)) {
        const Tensor logits = forward_logits(model, batch, c, dev);  // [B, L], f32
        const int64_t known = static_cast<int64_t>(tensor::sum(batch.mask).item());
        if (known > 0) {
            loss_sum += compute_loss(logits, batch, c, dev).item() * static_cast<double>(known);
            loss_weight += known;
        }
        const std::vector<float> p = tensor::sigmoid(logits).to(tensor::Device::cpu()).contiguous().to_vector<float>();
        for (size_t b = 0; b < batch.indices.size(); ++b)
            for (size_t l = 0; l < L; ++l) ev.scores[l][static_cast<size_t>(batch.indices[b])] = p[b * L + l];
        done += batch.size();
        if (bar) bar->update(done);
    }
    if (bar) bar->finish();
    ev.loss = loss_weight > 0 ? loss_sum / static_cast<double>(loss_weight) : 0.0;
    std::vector<std::optional<double>> aurocs;
    for (size_t l = 0; l < L; ++l) {
        std::vector<double> s;
        std::vector<int> y;
        for (size_t n = 0; n < N; ++n) {
            const data::LabelValue v = records[n].labels[static_cast<size_t>(idx[l])];
            if (v != data::LabelValue::positive && v != data::LabelValue::negative) continue;
            s.push_back(ev.scores[l][n]);
            y.push_back(v == data::LabelValue::positive ? 1 : 0);
        }
        const std::optional<double> a = s.empty() ? std::nullopt : metrics::auroc(s, y);
        aurocs.push_back(a);
        ev.per_label[names[l]] = a ? json(*a) : json(nullptr);
    }
    if (auto m = metrics::mean_defined(aurocs)) ev.macro_auroc = *m;
    model.train(was_training);
    return ev;
}

json num_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

void initialise_from(vision::ImageClassifier& model, const ClassifierConfig& c) {
    const nn::LoadedCheckpoint ck = nn::read_checkpoint(c.init);
    std::vector<std::string> their_labels;
    if (ck.meta.contains("config") && ck.meta["config"].contains("labels"))
        their_labels = ck.meta["config"]["labels"].get<std::vector<std::string>>();
    nn::StateDict weights = ck.weights;
    nn::LoadOptions opts;
    if (their_labels != c.label_names()) {
        // A new label set: keep the backbone, start a fresh head (already in the model).
        const std::string prefix = model.head_name() + ".";
        for (auto it = weights.begin(); it != weights.end();)
            it = it->first.rfind(prefix, 0) == 0 ? weights.erase(it) : std::next(it);
        for (const auto& [k, v] : model.head().state_dict()) opts.optional_keys.push_back(prefix + k);
    }
    model.load_state_dict(weights, opts);
}

}  // namespace

// ---------------------------------------------------------------- state

void TrainState::record_epoch(int64_t e, double valid_loss, double valid_auroc, int64_t patience) {
    const bool improved_auroc = std::isfinite(valid_auroc) && valid_auroc > best_auroc;
    if (improved_auroc) best_auroc = valid_auroc;
    if (improved_auroc || best_epoch < 0) best_epoch = e;
    if (valid_loss < best_loss) {
        best_loss = valid_loss;
        epochs_without_improvement = 0;
    } else {
        ++epochs_without_improvement;
    }
    epoch = e;
    if (patience > 0 && epochs_without_improvement >= patience) early_stopped = true;
}

nlohmann::json TrainState::to_json() const {
    auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    return {{"epoch", epoch},
            {"step", step},
            {"best_epoch", best_epoch},
            {"best_valid_auroc", num(best_auroc)},
            {"best_valid_loss", num(best_loss)},
            {"epochs_without_improvement", epochs_without_improvement},
            {"early_stopped", early_stopped}};
}

TrainState TrainState::from_json(const nlohmann::json& j) {
    TrainState s;
    s.epoch = j.at("epoch");
    s.step = j.at("step");
    s.best_epoch = j.at("best_epoch");
    s.best_auroc = j.at("best_valid_auroc").is_null() ? -std::numeric_limits<double>::infinity()
                                                      : j.at("best_valid_auroc").get<double>();
    s.best_loss = j.at("best_valid_loss").is_null() ? std::numeric_limits<double>::infinity()
                                                    : j.at("best_valid_loss").get<double>();
    s.epochs_without_improvement = j.at("epochs_without_improvement");
    s.early_stopped = j.at("early_stopped");
    return s;
}

// ---------------------------------------------------------------- training

TrainResult train_classifier(const ClassifierConfig& config, const std::vector<data::Record>& train_in,
                             const std::vector<data::Record>& valid_in, const std::string& out_dir,
                             const TrainHooks& hooks) {
    config.validate();
    CXR_CHECK(!train_in.empty(), "train_classifier: no training images");
    CXR_CHECK(!valid_in.empty(), "train_classifier: no validation images");
    const tensor::Device dev = tensor::parse_device(config.device);
    const fs::path out(out_dir);
    fs::create_directories(out);
    const json config_json = config.to_json();

    std::vector<data::Record> train = train_in;
    const auto policy = data::parse_uncertainty_policy(config.uncertainty);
    for (auto& r : train) data::apply_uncertainty_policy(r, policy);
    if (config.has_demographic_targets()) train = target_records(config, train);
    std::vector<data::Record> valid_targets;
    if (config.has_demographic_targets()) valid_targets = target_records(config, valid_in);
    const std::vector<data::Record>& valid = config.has_demographic_targets() ? valid_targets : valid_in;

    auto model = build_model(config);
    if (!config.init.empty()) initialise_from(*model, config);
    model->to(dev);
    model->train();
    auto optimizer = make_optimizer(config, model->parameters());

    data::Loader loader(train, loader_options(config, true));
    const int64_t batches = loader.batches_per_epoch();
    const int64_t steps_per_epoch = (batches + config.accumulation - 1) / config.accumulation;
    const nn::LrSchedule schedule = make_schedule(config, steps_per_epoch);

    TrainResult result;
    TrainState state;
    const std::string last = (out / "last").string(), best = (out / "best").string();
    if (nn::checkpoint_exists(last)) {
        const nn::LoadedCheckpoint ck = nn::read_checkpoint(last);
        const json saved = ck.meta.value("config", json::object());
        CXR_CHECK(saved == config_json, "cannot resume in '", out_dir,
                  "': its checkpoint was trained with another config: ", config_differences(saved, config_json),
                  ". Use another output folder or the same config.");
        nn::load_checkpoint(ck, last, *model, optimizer.get());
        state = TrainState::from_json(ck.meta.at("state"));
        tensor::default_generator().manual_seed(ck.meta.at("rng").at("seed").get<uint64_t>());
        tensor::default_generator().set_offset(ck.meta.at("rng").at("offset").get<uint64_t>());
        // a killed run may have logged part of the next epoch
        keep_jsonl_lines(out / "log.jsonl",
                         [&](const json& j) { return j.value("epoch", int64_t{-1}) <= state.epoch; });
        result.resumed = true;
        if (!hooks.quiet)
            std::cerr << "resuming " << out_dir << " after epoch " << state.epoch + 1 << " (step " << state.step
                      << ")\n";
    } else {
        tensor::manual_seed(config.seed);
        std::ofstream(out / "log.jsonl", std::ios::trunc);
    }
    write_json_atomically(out / "config.json", config_json);
    write_json_atomically(out / "run.json", run_record());

    std::ofstream log(out / "log.jsonl", std::ios::app);
    const auto params = model->parameters();
    for (int64_t epoch = state.epoch + 1; epoch < config.epochs && !state.early_stopped; ++epoch) {
        const auto t0 = std::chrono::steady_clock::now();
        loader.start_epoch(epoch);
        std::unique_ptr<Progress> bar;
        if (!hooks.quiet)
            bar = std::make_unique<Progress>("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(config.epochs),
                                             batches);
        data::Batch batch;
        int64_t b = 0;
        double step_loss = 0, epoch_loss = 0;
        int64_t epoch_steps = 0;
        optimizer->zero_grad();
        while (loader.next(batch)) {
            // Batches are grouped into optimizer steps of `accumulation`; the epoch's last group may be shorter.
            const int64_t group_start = (b / config.accumulation) * config.accumulation;
            const int64_t in_this_step = std::min(config.accumulation, batches - group_start);
            const bool last_of_step = b == group_start + in_this_step - 1;
            const Tensor logits = forward_logits(*model, batch, config, dev);  // [B, L], f32
            const Tensor loss = compute_loss(logits, batch, config, dev);
            (loss / static_cast<double>(in_this_step)).backward();
            step_loss += loss.item() / static_cast<double>(in_this_step);
            if (last_of_step) {
                if (config.clip_grad_norm > 0) nn::clip_grad_norm_(params, config.clip_grad_norm);
                nn::apply_lr_schedule(*optimizer, schedule, state.step);
                optimizer->step();
                optimizer->zero_grad();
                log << json{{"type", "step"}, {"epoch", epoch}, {"step", state.step}, {"loss", step_loss},
                            {"lr", optimizer->lr(0)}}.dump()
                    << "\n";
                result.step_losses.push_back(step_loss);
                epoch_loss += step_loss;
                ++epoch_steps;
                ++state.step;
                step_loss = 0;
            }
            ++b;
            if (bar) {
                std::ostringstream note;
                note.precision(4);
                note << "loss " << (epoch_steps ? epoch_loss / epoch_steps : 0.0);
                bar->update(b, note.str());
            }
        }
        if (bar) bar->finish();
        log.flush();

        const Evaluation ev = evaluate_model(*model, config, valid, true, "validation");
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.record_epoch(epoch, ev.loss, ev.macro_auroc, config.patience);

        const tensor::Generator& g = tensor::default_generator();
        const json meta = {{"config", config_json},
                           {"state", state.to_json()},
                           {"rng", {{"seed", g.seed()}, {"offset", g.offset()}}},
                           {"valid", {{"loss", ev.loss}, {"macro_auroc", num_or_null(ev.macro_auroc)},
                                      {"auroc", ev.per_label}}},
                           {"run", run_record()}};
        if (state.best_epoch == epoch) nn::save_checkpoint(best, *model, nullptr, meta);
        nn::save_checkpoint(last, *model, optimizer.get(), meta);
        log << json{{"type", "epoch"},
                    {"epoch", epoch},
                    {"train_loss", epoch_steps ? epoch_loss / static_cast<double>(epoch_steps) : 0.0},
                    {"valid_loss", ev.loss},
                    {"valid_macro_auroc", num_or_null(ev.macro_auroc)},
                    {"valid_auroc", ev.per_label},
                    {"seconds", seconds},
                    {"best", state.best_epoch == epoch}}
                   .dump()
            << "\n";
        log.flush();
        if (!hooks.quiet) {
            std::fprintf(stderr, "epoch %lld: train loss %.4f, valid loss %.4f, valid macro AUROC %.4f%s (%.1f s)\n",
                         static_cast<long long>(epoch + 1),
                         epoch_steps ? epoch_loss / static_cast<double>(epoch_steps) : 0.0, ev.loss, ev.macro_auroc,
                         state.best_epoch == epoch ? " *best*" : "", seconds);
        }
        if (state.early_stopped && !hooks.quiet)
            std::fprintf(stderr, "early stop: validation loss has not improved for %lld epochs\n",
                         static_cast<long long>(config.patience));
        if (hooks.after_epoch && !hooks.after_epoch(epoch)) break;
    }

    result.epochs_run = state.epoch + 1;
    result.best_epoch = state.best_epoch;
    result.best_valid_auroc = std::isfinite(state.best_auroc) ? state.best_auroc
                                                              : std::numeric_limits<double>::quiet_NaN();
    result.early_stopped = state.early_stopped;
    result.best_checkpoint = best;
    if (state.epoch + 1 >= config.epochs || state.early_stopped) {
        write_json_atomically(out / "summary.json", {{"epochs_run", result.epochs_run},
                                                     {"best_epoch", result.best_epoch},
                                                     {"best_valid_macro_auroc", num_or_null(result.best_valid_auroc)},
                                                     {"early_stopped", result.early_stopped},
                                                     {"steps", state.step},
                                                     {"best_checkpoint", best}});
    }
    return result;
}

// ---------------------------------------------------------------- inference

ClassifierConfig checkpoint_config(const std::string& stem) {
    const nn::LoadedCheckpoint ck = nn::read_checkpoint(stem);
    CXR_CHECK(ck.meta.contains("config"), "checkpoint '", stem, "' has no classifier config in its meta");
    return ClassifierConfig::from_json(ck.meta["config"]);
}

std::shared_ptr<vision::ImageClassifier> load_classifier(const std::string& stem, const ClassifierConfig& config) {
    auto model = build_model(config);
    nn::load_checkpoint(stem, *model);
    model->to(tensor::parse_device(config.device));
    model->eval();
    return model;
}

metrics::Predictions predict(vision::ImageClassifier& model, const ClassifierConfig& config,
                             const std::vector<data::Record>& records_in, bool quiet) {
    std::vector<data::Record> converted;
    if (config.has_demographic_targets()) converted = target_records(config, records_in);
    const std::vector<data::Record>& records = config.has_demographic_targets() ? converted : records_in;
    const Evaluation ev = evaluate_model(model, config, records, quiet, "predict");
    const std::vector<int> idx = target_columns(config);
    metrics::Predictions p;
    p.label_names = config.label_names();
    p.scores = ev.scores;
    p.truth.assign(idx.size(), std::vector<int>(records.size(), -1));
    for (size_t n = 0; n < records.size(); ++n) {
        const data::Record& r = records[n];
        p.image_ids.push_back(r.image_path);
        for (size_t l = 0; l < idx.size(); ++l) {
            const data::LabelValue v = r.labels[static_cast<size_t>(idx[l])];
            p.truth[l][n] = v == data::LabelValue::positive ? 1 : v == data::LabelValue::negative ? 0 : -1;
        }
        p.sex.push_back(data::sex_code(r.sex));
        p.age.push_back(r.has_age() ? std::optional<double>(r.age) : std::nullopt);
        p.race.push_back(r.race == data::Race::other_unknown ? "" : data::race_name(r.race));
        p.site.push_back(r.site);
    }
    return p;
}

Tensor score_images(vision::ImageClassifier& model, const ClassifierConfig& config, const Tensor& images) {
    CXR_CHECK(images.dim() == 4 && images.size(1) == config.channels && images.size(2) == config.image_size &&
                  images.size(3) == config.image_size,
              "score_images: expected images [B, ", config.channels, ", ", config.image_size, ", ", config.image_size,
              "], got ", tensor::shape_str(images.sizes()));
    const tensor::Device dev = tensor::parse_device(config.device);
    const bool was_training = model.is_training();
    model.eval();
    tensor::NoGradGuard no_grad;
    data::Batch batch;
    batch.images = images;
    const Tensor logits = forward_logits(model, batch, config, dev);  // [B, L] f32
    model.train(was_training);
    return tensor::sigmoid(logits).to(tensor::Device::cpu()).contiguous();
}

}  // namespace cxr::apps
