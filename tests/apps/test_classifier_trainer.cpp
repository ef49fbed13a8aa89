// The classifier trainer (apps/train/classifier_trainer.h) on a tiny phantom dataset: a killed run resumes
// bit-identically, a changed config refuses to resume, fine-tuning from a checkpoint with another label set keeps
// the backbone and starts a new head, the early-stopping/best-epoch rule, config validation, and predictions.
#include "tests/support/testing.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "apps/train/classifier_trainer.h"
#include "data/adapters/adapters.h"
#include "data/phantom.h"
#include "nn/checkpoint.h"

using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;
using nlohmann::json;

namespace {

// 40 phantom images at 32 px (written once per test binary run).
const std::vector<data::Record>& phantom_records() {
    static const std::vector<data::Record> records = [] {
        const fs::path dir = fs::temp_directory_path() / ("cxr_test_trainer_data_" + std::to_string(::getpid()));
        data::PhantomOptions o;
        o.n = 40;
        o.size = 32;
        o.seed = 3;
        o.prevalence = {0.4, 0.4, 0.3, 0.2, 0.2, 0.2, 0.2};
        data::write_phantom_dataset(dir.string(), o);
        auto r = data::load_manifest((dir / "manifest.csv").string());
        return r;
    }();
    return records;
}

apps::ClassifierConfig tiny_config() {
    apps::ClassifierConfig c;
    c.arch = "resnet18-w4";
    c.labels = {"No Finding", "Cardiomegaly", "Pleural Effusion"};
    c.image_size = 32;
    c.channels = 1;
    c.mean = {0.5};
    c.std = {0.25};
    c.epochs = 3;
    c.batch_size = 8;
    c.lr = 3e-3;
    c.warmup_epochs = 1;
    c.augment = "standard";
    c.workers = 2;
    c.seed = 11;
    return c;
}

std::vector<data::Record> slice(const std::vector<data::Record>& r, size_t a, size_t b) {
    return {r.begin() + static_cast<long>(a), r.begin() + static_cast<long>(b)};
}

std::map<std::string, std::vector<float>> weights_of(const std::string& stem) {
    std::map<std::string, std::vector<float>> out;
    for (const auto& [k, v] : nn::read_checkpoint(stem).weights)
        if (v.dtype() == tensor::DType::f32) out[k] = v.to_vector<float>();
    return out;
}

}  // namespace

TEST_CASE("trainer: a killed run resumes bit-identically on the CPU", "[cpu][apps][trainer]") {
    const auto& all = phantom_records();
    const auto train = slice(all, 0, 28), valid = slice(all, 28, 40);
    const apps::ClassifierConfig c = tiny_config();
    apps::TrainHooks quiet;
    quiet.quiet = true;

    TempDir full("full"), killed("killed");
    const apps::TrainResult a = apps::train_classifier(c, train, valid, full.path(), quiet);
    REQUIRE(a.epochs_run == 3);
    REQUIRE(a.step_losses.size() == 3 * 4);  // 28 images / batch 8 -> 4 steps per epoch

    apps::TrainHooks kill = quiet;
    kill.after_epoch = [](int64_t epoch) { return epoch < 0; };  // stop after the first epoch
    const apps::TrainResult b1 = apps::train_classifier(c, train, valid, killed.path(), kill);
    CHECK(b1.epochs_run == 1);
    CHECK_FALSE(fs::exists(killed / "summary.json"));
    // a half-written line of the killed run is cut away on resume
    std::ofstream(killed / "log.jsonl", std::ios::app) << "{\"type\": \"step\", \"epoch\": 1, \"step\": 4, \"lo";
    const apps::TrainResult b2 = apps::train_classifier(c, train, valid, killed.path(), quiet);
    CHECK(b2.resumed);
    CHECK(b2.epochs_run == 3);

    std::vector<double> resumed = b1.step_losses;
    resumed.insert(resumed.end(), b2.step_losses.begin(), b2.step_losses.end());
    REQUIRE(resumed.size() == a.step_losses.size());
    for (size_t i = 0; i < resumed.size(); ++i) {
        INFO("step " << i);
        CHECK(resumed[i] == a.step_losses[i]);  // bitwise
    }
    const auto wa = weights_of(full / "last"), wb = weights_of(killed / "last");
    REQUIRE(wa.size() == wb.size());
    for (const auto& [k, v] : wa) {
        INFO(k);
        CHECK(v == wb.at(k));
    }
    CHECK(a.best_epoch == b2.best_epoch);
    // the logs agree line for line (the seconds field aside)
    auto lines = [](const std::string& path) {
        std::vector<json> out;
        std::ifstream in(path);
        std::string line;
        while (std::getline(in, line)) {
            json j = json::parse(line);
            j.erase("seconds");
            out.push_back(j);
        }
        return out;
    };
    CHECK(lines(full / "log.jsonl") == lines(killed / "log.jsonl"));
}

TEST_CASE("trainer: resuming with another config is refused, naming the changed keys", "[cpu][apps][trainer]") {
    const auto& all = phantom_records();
    apps::ClassifierConfig c = tiny_config();
    c.epochs = 1;
    c.augment = "none";
    TempDir dir("config");
    apps::TrainHooks quiet;
    quiet.quiet = true;
    apps::train_classifier(c, slice(all, 0, 16), slice(all, 28, 40), dir.path(), quiet);
    c.lr = 1e-2;
    CHECK_THROWS_WITH(apps::train_classifier(c, slice(all, 0, 16), slice(all, 28, 40), dir.path(), quiet),
                      Catch::Contains("lr"));
}

TEST_CASE("trainer: fine-tuning from a checkpoint with another label set keeps the backbone, new head",
          "[cpu][apps][trainer]") {
    const auto& all = phantom_records();
    apps::ClassifierConfig pre = tiny_config();
    pre.epochs = 1;
    pre.augment = "none";
    TempDir dir("finetune");
    apps::TrainHooks quiet;
    quiet.quiet = true;
    apps::train_classifier(pre, slice(all, 0, 16), slice(all, 28, 40), dir / "pre", quiet);

    apps::ClassifierConfig fine = pre;
    fine.labels = {"Edema", "Atelectasis"};
    fine.init = dir / "pre/best";
    fine.lr = 1e-12;  // (almost) no change: the loaded backbone stays visible in the result
    fine.optimizer = "sgd";
    fine.momentum = 0;
    fine.weight_decay = 0;
    apps::train_classifier(fine, slice(all, 0, 16), slice(all, 28, 40), dir / "fine", quiet);
    const auto before = weights_of(dir / "pre/best"), after = weights_of(dir / "fine/last");
    CHECK(after.at("fc.weight").size() == 2u * 32u);  // resnet18-w4: 8·4 = 32 features, 2 labels
    CHECK(before.at("fc.weight").size() == 3u * 32u);
    const auto& w0 = before.at("conv1.weight");
    const auto& w1 = after.at("conv1.weight");
    REQUIRE(w0.size() == w1.size());
    double max_diff = 0;
    for (size_t i = 0; i < w0.size(); ++i) max_diff = std::max(max_diff, (double)std::abs(w0[i] - w1[i]));
    CHECK(max_diff < 1e-6);

    // the same label set: the head comes along too
    apps::ClassifierConfig same = pre;
    same.init = dir / "pre/best";
    auto model = apps::load_classifier(dir / "pre/best", pre);
    CHECK(model->head_config().num_classes == 3);
    CHECK(apps::checkpoint_config(dir / "pre/best").label_names() == pre.label_names());
}

TEST_CASE("trainer: best epoch and early stopping rule", "[cpu][apps][trainer]") {
    apps::TrainState s;
    s.record_epoch(0, 1.0, 0.60, 2);
    CHECK(s.best_epoch == 0);
    s.record_epoch(1, 0.9, 0.70, 2);  // both improve
    CHECK(s.best_epoch == 1);
    CHECK(s.epochs_without_improvement == 0);
    s.record_epoch(2, 0.95, 0.70, 2);  // AUROC tie: the earlier epoch stays best; loss worse
    CHECK(s.best_epoch == 1);
    CHECK(s.epochs_without_improvement == 1);
    CHECK_FALSE(s.early_stopped);
    s.record_epoch(3, 0.9, 0.80, 2);  // equal loss is not an improvement
    CHECK(s.best_epoch == 3);
    CHECK(s.early_stopped);
    const apps::TrainState r = apps::TrainState::from_json(s.to_json());
    CHECK(r.best_epoch == 3);
    CHECK(r.best_auroc == 0.80);
    CHECK(r.best_loss == 0.9);
    CHECK(r.early_stopped);

    apps::TrainState nan_auroc;  // no label with both classes: the first epoch is the best
    nan_auroc.record_epoch(0, 1.0, std::nan(""), 0);
    nan_auroc.record_epoch(1, 0.5, std::nan(""), 0);
    CHECK(nan_auroc.best_epoch == 0);
    CHECK_FALSE(nan_auroc.early_stopped);
}

TEST_CASE("trainer: config validation names the key", "[cpu][apps][trainer]") {
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json({{"epoch", 3}}), Catch::Contains("unknown key \"epoch\""));
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json({{"lr", "fast"}}), Catch::Contains("\"lr\""));
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json({{"labels", {"Cardiomegaly", "Broken Leg"}}}),
                      Catch::Contains("Broken Leg"));
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json({{"channels", 3}, {"mean", {0.5}}}),
                      Catch::Contains("one value per channel"));
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json({{"autocast", "yes"}}), Catch::Contains("autocast"));
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json({{"optimizer", "lion"}}), Catch::Contains("lion"));
    const auto c = apps::ClassifierConfig::from_json({{"channels", 1}, {"labels", {"Effusion"}}});
    CHECK(c.mean.size() == 1);
    CHECK(c.label_indices() == std::vector<int>{10});  // Effusion = CheXpert "Pleural Effusion"
    CHECK(apps::ClassifierConfig::from_json(c.to_json()).to_json() == c.to_json());
}

TEST_CASE("trainer: predictions carry the truth coding, demographics and scores in (0, 1)", "[cpu][apps][trainer]") {
    const auto& all = phantom_records();
    apps::ClassifierConfig c = tiny_config();
    c.epochs = 1;
    c.augment = "none";
    TempDir dir("predict");
    apps::TrainHooks quiet;
    quiet.quiet = true;
    const auto r = apps::train_classifier(c, slice(all, 0, 16), slice(all, 16, 40), dir.path(), quiet);
    auto model = apps::load_classifier(r.best_checkpoint, c);
    const auto valid = slice(all, 16, 40);
    const metrics::Predictions p = apps::predict(*model, c, valid);
    REQUIRE(p.size() == 24);
    REQUIRE(p.label_names == c.label_names());
    for (size_t n = 0; n < valid.size(); ++n) {
        CHECK(p.image_ids[n] == valid[n].image_path);
        CHECK(p.sex[n] == (valid[n].sex == data::Sex::male ? "M" : "F"));
        CHECK(p.truth[1][n] == (valid[n].labels[2] == data::LabelValue::positive ? 1 : 0));  // Cardiomegaly
        for (size_t l = 0; l < 3; ++l) CHECK((p.scores[l][n] > 0 && p.scores[l][n] < 1));
    }
}

// bf16 autocast (tensor/autocast.h) in the trainer: the run trains (finite losses), the checkpoint keeps f32 master
// weights, and its step losses track the f32 run's within bf16's precision at the start (same data, same order,
// same initialisation; they drift apart as the updates differ).
TEST_CASE("trainer: bf16 autocast trains with f32 master weights", "[cpu][apps][trainer]") {
    const auto& all = phantom_records();
    apps::ClassifierConfig c = tiny_config();
    c.epochs = 1;
    c.augment = "none";
    apps::TrainHooks quiet;
    quiet.quiet = true;
    TempDir d32("amp_f32"), d16("amp_bf16");
    const auto r32 = apps::train_classifier(c, slice(all, 0, 24), slice(all, 24, 40), d32.path(), quiet);
    c.autocast = true;
    const auto r16 = apps::train_classifier(c, slice(all, 0, 24), slice(all, 24, 40), d16.path(), quiet);
    REQUIRE(r16.step_losses.size() == r32.step_losses.size());
    for (double l : r16.step_losses) CHECK(std::isfinite(l));
    // the first step's loss: same weights and batch, only the forward's precision differs (bf16 has 8 bits)
    CHECK(std::fabs(r16.step_losses[0] - r32.step_losses[0]) <= 0.05 * std::fabs(r32.step_losses[0]));
    CHECK(r16.step_losses[0] != r32.step_losses[0]);  // bf16 really was used
    const auto w = nn::read_checkpoint(r16.best_checkpoint).weights;
    REQUIRE_FALSE(w.empty());
    for (const auto& [k, v] : w)
        if (tensor::is_floating(v.dtype())) {
            INFO(k);
            CHECK(v.dtype() == tensor::DType::f32);
        }
    CHECK(apps::ClassifierConfig::from_json(c.to_json()).autocast);
}

// The trainer on CUDA (issue 4: "CPU and CUDA"): the same config, data and initialisation as on the CPU; the first
// step's loss agrees to f32 precision (the kernels differ only in summation order), later steps stay close, the
// checkpoint reloads on the CPU, and bf16 autocast runs on the GPU too.
TEST_CASE("trainer: a run on CUDA tracks the CPU run; autocast on CUDA trains", "[gpu][cuda][apps][trainer]") {
    CXR_SKIP_WITHOUT_GPU();
    const auto& all = phantom_records();
    apps::ClassifierConfig c = tiny_config();
    c.epochs = 1;
    c.augment = "none";
    apps::TrainHooks quiet;
    quiet.quiet = true;
    TempDir dc("cpu"), dg("cuda"), da("cuda_amp");
    const auto rc = apps::train_classifier(c, slice(all, 0, 24), slice(all, 24, 40), dc.path(), quiet);
    c.device = "cuda";
    const auto rg = apps::train_classifier(c, slice(all, 0, 24), slice(all, 24, 40), dg.path(), quiet);
    REQUIRE(rg.step_losses.size() == rc.step_losses.size());
    CHECK(std::fabs(rg.step_losses[0] - rc.step_losses[0]) <= 1e-4 * std::fabs(rc.step_losses[0]));
    for (size_t k = 0; k < rc.step_losses.size(); ++k) {
        INFO("step " << k);
        CHECK(std::fabs(rg.step_losses[k] - rc.step_losses[k]) <= 2e-2 * std::fabs(rc.step_losses[k]));
    }
    const auto w = weights_of(rg.best_checkpoint);
    CHECK_FALSE(w.empty());
    c.autocast = true;
    const auto ra = apps::train_classifier(c, slice(all, 0, 24), slice(all, 24, 40), da.path(), quiet);
    for (double l : ra.step_losses) CHECK(std::isfinite(l));
    CHECK(std::fabs(ra.step_losses[0] - rc.step_losses[0]) <= 0.05 * std::fabs(rc.step_losses[0]));
}
