// `cxr train-diffusion --config FILE [--out DIR]`: fine-tunes a Stable Diffusion pipeline folder on chest X-ray
// image/report pairs (apps/train/diffusion_trainer.h), RoentGen-style: UNet (and optionally text encoder) trained
// with the noise-prediction loss, VAE frozen.
//
// Config:
//   {"model": "DIR",                      a diffusers StableDiffusionPipeline folder (relative: to the config file)
//    "data": SOURCE,                      apps/train/data_source.h (e.g. {"dataset": "manifest", "root": "x.csv"})
//    "train": {trainer settings, apps/train/diffusion_trainer.h DiffusionTrainConfig; "model" may be given here
//              instead},
//    "out": "runs/name"}                  (--out overrides)
// Outputs in DIR: the trainer's files (config.json, run.json, log.jsonl, last.*, samples/, pipeline/, summary.json)
// and the resolved workflow config (train_config.json). A killed run started again with the same config resumes.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/config_json.h"
#include "apps/progress.h"
#include "apps/train/data_source.h"
#include "apps/train/diffusion_trainer.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;

int cmd_train_diffusion(int argc, char** argv) {
    Args args("train-diffusion",
              "Fine-tunes a Stable Diffusion pipeline folder (diffusers layout) on chest X-ray images and their\n"
              "reports (RoentGen prompts \"<AGE> year old <RACE> <SEX>. <IMPRESSION>\"): the UNet learns the\n"
              "noise-prediction loss, the VAE stays frozen. Writes checkpoints, samples and a diffusers folder\n"
              "DIR/pipeline that `cxr generate` loads. The config format is at the top of\n"
              "apps/cmd_train_diffusion.cpp and in the README.",
              {{"config", "FILE", "the JSON config (required)", ""},
               {"out", "DIR", "output folder (overrides the config's \"out\")", ""},
               {"device", "DEV", "cpu or cuda (overrides train.device)", ""},
               {"max-steps", "N", "override train.max_steps (0: keep the config's)", "0"},
               {"quiet", "", "no progress bar", ""}});
    if (!args.parse(argc, argv)) return 0;
    const std::string config_path = args.get("config");
    CXR_CHECK(!config_path.empty(), "train-diffusion: --config FILE is required (see --help)");
    json cfg = read_json_file(config_path, "train-diffusion", "config");
    CXR_CHECK(cfg.is_object() && cfg.contains("data"), "train-diffusion: '", config_path,
              "' needs \"data\" (a data source), \"model\" and optionally \"train\" (trainer settings)");
    for (auto it = cfg.begin(); it != cfg.end(); ++it)
        CXR_CHECK(it.key() == "data" || it.key() == "train" || it.key() == "model" || it.key() == "out",
                  "train-diffusion: unknown top-level key \"", it.key(), "\" (known: model, data, train, out)");
    const std::string base = fs::path(config_path).parent_path().string();
    json train_json = cfg.value("train", json::object());
    CXR_CHECK(train_json.is_object(), "train-diffusion: \"train\" must be an object");
    if (cfg.contains("model")) {
        CXR_CHECK(!train_json.contains("model"), "train-diffusion: give \"model\" once (top level or in \"train\")");
        CXR_CHECK(cfg["model"].is_string(), "train-diffusion: \"model\" must be a folder path");
        train_json["model"] = cfg["model"];
    }
    if (train_json.contains("model") && train_json["model"].is_string()) {
        const fs::path m(train_json["model"].get<std::string>());
        if (m.is_relative() && !m.empty()) train_json["model"] = (fs::path(base) / m).lexically_normal().string();
    }
    if (!args.get("device").empty()) train_json["device"] = args.get("device");
    if (args.get_int("max-steps") > 0) train_json["max_steps"] = args.get_int("max-steps");
    const DiffusionTrainConfig config = DiffusionTrainConfig::from_json(train_json);

    const DataSource source = DataSource::from_json(cfg["data"], "data", base);
    std::string out = args.get("out");
    if (out.empty()) out = cfg.value("out", "");
    CXR_CHECK(!out.empty(), "train-diffusion: no output folder (--out DIR or \"out\" in the config)");

    const auto records = load_source(source);
    std::cerr << "train-diffusion: " << records.size() << " images (" << source.describe() << "), model "
              << config.model << ", " << (config.max_steps > 0 ? std::to_string(config.max_steps) + " steps"
                                                               : std::to_string(config.epochs) + " epochs")
              << " on " << config.device << "\n";
    fs::create_directories(out);
    json resolved = cfg;
    resolved.erase("model");
    resolved["train"] = config.to_json();
    resolved["data"] = source.to_json();
    resolved["out"] = out;
    // A resumed run's folder keeps its record until the trainer has accepted the resume (a refused one must not
    // overwrite the original run's settings).
    const bool resuming = nn::checkpoint_exists((fs::path(out) / "last").string());
    if (!resuming) write_json_atomically(fs::path(out) / "train_config.json", resolved);

    DiffusionTrainHooks hooks;
    hooks.quiet = args.flag("quiet");
    const DiffusionTrainResult r = train_diffusion(config, records, out, hooks);
    if (resuming) write_json_atomically(fs::path(out) / "train_config.json", resolved);
    std::cout << "wrote " << out << " (" << r.steps_run << " steps; pipeline " << r.pipeline_dir << ")\n";
    return 0;
}

}  // namespace cxr::apps
