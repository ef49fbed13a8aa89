// `cxr train-classifier --config FILE [--out DIR]`: trains a classifier (apps/train/classifier_trainer.h) on the
// data sources of a JSON config, then scores the validation and (when given) test sets with the best checkpoint
// and evaluates the test predictions as `cxr evaluate` does.
//
// Config:
//   {"data": {"train": SOURCE, "valid": SOURCE, "test": SOURCE (optional)},   SOURCE: apps/train/data_source.h
//    "train": {classifier settings, apps/train/classifier_trainer.h ClassifierConfig},
//    "evaluate": {"bootstrap": 1000, "seed": 0, "groups": [["sex"], ["sex", "race"]]}   (optional),
//    "out": "runs/name"}                                                        (--out overrides)
// Outputs in DIR: the trainer's files (config.json, log.jsonl, best.*, last.*, summary.json, run.json), the
// resolved workflow config (train_config.json), valid_predictions.csv, and with a test set test_predictions.csv and
// test_metrics.json (metrics/README.md). A killed run started again with the same config resumes.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/config_json.h"
#include "apps/progress.h"
#include "apps/train/classifier_trainer.h"
#include "apps/train/data_source.h"
#include "metrics/evaluate.h"
#include "metrics/fairness.h"
#include "metrics/predictions.h"
#include "tensor/error.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;

int cmd_train_classifier(int argc, char** argv) {
    Args args("train-classifier",
              "Trains an image classifier (ResNet/DenseNet/BiT) on chest X-ray records from a JSON config, keeps the\n"
              "best checkpoint by validation macro AUROC, and scores/evaluates the validation and test sets.\n"
              "The config format is documented at the top of apps/cmd_train_classifier.cpp and in the README.",
              {{"config", "FILE", "the JSON config (required)", ""},
               {"out", "DIR", "output folder (overrides the config's \"out\")", ""},
               {"device", "DEV", "cpu or cuda (overrides the config's train.device)", ""},
               {"epochs", "N", "override train.epochs (0: keep the config's)", "0"},
               {"quiet", "", "no progress bars", ""}});
    if (!args.parse(argc, argv)) return 0;
    const std::string config_path = args.get("config");
    CXR_CHECK(!config_path.empty(), "train-classifier: --config FILE is required (see --help)");
    json cfg = read_json_file(config_path, "train-classifier", "config");
    CXR_CHECK(cfg.is_object() && cfg.contains("data") && cfg.contains("train"), "train-classifier: '", config_path,
              "' needs \"data\" (with \"train\" and \"valid\" sources) and \"train\" (classifier settings)");
    for (auto it = cfg.begin(); it != cfg.end(); ++it)
        CXR_CHECK(it.key() == "data" || it.key() == "train" || it.key() == "evaluate" || it.key() == "out",
                  "train-classifier: unknown top-level key \"", it.key(), "\" (known: data, train, evaluate, out)");
    const std::string base = fs::path(config_path).parent_path().string();
    json train_json = cfg["train"];
    if (!args.get("device").empty()) train_json["device"] = args.get("device");
    if (args.get_int("epochs") > 0) train_json["epochs"] = args.get_int("epochs");
    if (train_json.contains("init") && train_json["init"].is_string() && !train_json["init"].get<std::string>().empty() &&
        fs::path(train_json["init"].get<std::string>()).is_relative())
        train_json["init"] = (fs::path(base) / train_json["init"].get<std::string>()).lexically_normal().string();
    const ClassifierConfig config = ClassifierConfig::from_json(train_json);

    const json& data = cfg["data"];
    CXR_CHECK(data.is_object() && data.contains("train") && data.contains("valid"),
              "train-classifier: \"data\" needs \"train\" and \"valid\" sources");
    const DataSource train_src = DataSource::from_json(data["train"], "data.train", base);
    const DataSource valid_src = DataSource::from_json(data["valid"], "data.valid", base);
    std::string out = args.get("out");
    if (out.empty()) out = cfg.value("out", "");
    CXR_CHECK(!out.empty(), "train-classifier: no output folder (--out DIR or \"out\" in the config)");

    const bool quiet = args.flag("quiet");
    const auto train = load_source(train_src);
    const auto valid = load_source(valid_src);
    std::cerr << "train-classifier: " << train.size() << " training images (" << train_src.describe() << "), "
              << valid.size() << " validation images; model " << config.arch << ", " << config.label_names().size()
              << " labels, " << config.image_size << " px, " << config.epochs << " epochs on " << config.device
              << "\n";
    fs::create_directories(out);
    json resolved = cfg;
    resolved["train"] = config.to_json();
    resolved["data"]["train"] = train_src.to_json();
    resolved["data"]["valid"] = valid_src.to_json();
    resolved["out"] = out;

    TrainHooks hooks;
    hooks.quiet = quiet;
    const TrainResult r = train_classifier(config, train, valid, out, hooks);
    std::cerr << "best epoch " << r.best_epoch + 1 << ", validation macro AUROC " << r.best_valid_auroc << "\n";

    auto model = load_classifier(r.best_checkpoint, config);
    const metrics::Predictions valid_pred = predict(*model, config, valid, quiet);
    metrics::write_predictions_csv((fs::path(out) / "valid_predictions.csv").string(), valid_pred);
    if (data.contains("test")) {
        const DataSource test_src = DataSource::from_json(data["test"], "data.test", base);
        resolved["data"]["test"] = test_src.to_json();
        const auto test = load_source(test_src);
        const metrics::Predictions test_pred = predict(*model, config, test, quiet);
        metrics::write_predictions_csv((fs::path(out) / "test_predictions.csv").string(), test_pred);
        const json ev = cfg.value("evaluate", json::object());
        metrics::EvaluateOptions opt;
        opt.bootstrap = ev.value("bootstrap", int64_t{1000});
        opt.seed = ev.value("seed", uint64_t{0});
        if (ev.contains("groups"))
            for (const auto& g : ev["groups"]) {
                std::string joined;
                for (const auto& a : g) joined += (joined.empty() ? "" : ",") + a.get<std::string>();
                opt.groupings.push_back(metrics::parse_grouping(joined));
            }
        const json metrics_json = metrics::evaluate(test_pred, &valid_pred, nullptr, opt);
        write_json_atomically(fs::path(out) / "test_metrics.json", metrics_json);
        std::cerr << "test (" << test.size() << " images): macro AUROC " << metrics_json["macro"]["auroc"]
                  << " CI " << metrics_json["macro"].value("auroc_ci", json()) << "\n";
    }
    write_json_atomically(fs::path(out) / "train_config.json", resolved);
    std::cout << "wrote " << out << " (best checkpoint " << r.best_checkpoint << ")\n";
    return 0;
}

}  // namespace cxr::apps
