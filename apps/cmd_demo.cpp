// `cxr demo [--out DIR] [--device cpu|cuda] [--quick]`: the whole classifier study on built-in data, on a machine
// with no dataset. It renders two phantom datasets (data/phantom.h):
//   - the "real" set: three acquisition sites — site_0 is the training site (its train/valid/test splits), the
//     test split of site_2 (the most different) is the out-of-distribution test set — with Black patients
//     under-represented (10 %), so fairness gaps can arise;
//   - the "synthetic" set: a second phantom draw (another seed, one site, balanced demographics). It is a
//     STAND-IN for generator output until the diffusion generator exists, and the report says so;
// writes DIR/study.json (a study config, apps/study/study.h) and runs the study: real only, synthetic only, real +
// synthetic, synthetic pretraining + real fine-tuning (with a sweep over the real images used), and two baselines
// (oversampling by race, focal loss), with a small ResNet-18 at 64 px. Outputs: DIR/study/report.html,
// DIR/study/metrics.json. --quick shrinks everything for a smoke test.
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/progress.h"
#include "apps/study/study.h"
#include "data/phantom.h"
#include "tensor/error.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Writes a phantom set unless it is already there (a rerun of the demo reuses it: same seed, same images).
void ensure_phantom(const fs::path& dir, const data::PhantomOptions& o, bool quiet) {
    if (fs::exists(dir / "manifest.csv")) return;
    std::unique_ptr<Progress> bar;
    if (!quiet) bar = std::make_unique<Progress>("phantom " + dir.filename().string(), o.n);
    data::write_phantom_dataset(dir.string(), o, [&](int64_t done) {
        if (bar && (done % 64 == 0 || done == o.n)) bar->update(done);
    });
    if (bar) bar->finish();
}

json manifest_source(const fs::path& dir, const std::string& split, const std::string& site) {
    json s = {{"dataset", "manifest"}, {"root", (dir / "manifest.csv").string()}, {"split", split}};
    if (!site.empty()) s["site"] = site;
    return s;
}

}  // namespace

int cmd_demo(int argc, char** argv) {
    Args args("demo",
              "Runs the classifier study on built-in phantom data: real-only, synthetic-only, mixed and\n"
              "pretrain+fine-tune classifiers plus baselines, evaluated in and out of distribution with fairness\n"
              "gaps; writes a self-contained HTML report. About 2 minutes on 2 CPU cores (after the build).",
              {{"out", "DIR", "output folder", "out/demo"},
               {"device", "DEV", "cpu or cuda", "cpu"},
               {"seed", "S", "seed of the phantom draws and the training", "0"},
               {"quick", "", "a tiny run for smoke tests (seconds; the numbers mean nothing)", ""},
               {"quiet", "", "no progress bars", ""}});
    if (!args.parse(argc, argv)) return 0;
    const fs::path out = args.get("out");
    const bool quick = args.flag("quick"), quiet = args.flag("quiet");
    const auto seed = static_cast<uint64_t>(args.get_int("seed"));

    data::PhantomOptions real;
    real.n = quick ? 360 : 3600;
    real.size = quick ? 32 : 64;
    real.seed = 1000 + seed;
    real.sites = 3;  // site_0 trains; site_2 (the most different) is the out-of-distribution set
    real.race_weights = {0.3, 0.1, 0.3, 0.3};  // Asian, Black (under-represented), Hispanic, White
    real.prevalence = {0.2, 0.2, 0.15, 0.12, 0.12, 0.1, 0.1};
    data::PhantomOptions syn = real;
    syn.n = quick ? 120 : 1200;
    syn.seed = 2000 + seed;
    syn.sites = 1;
    syn.race_weights = {0.25, 0.25, 0.25, 0.25};
    const fs::path data_dir = out / "data";
    ensure_phantom(data_dir / "real", real, quiet);
    ensure_phantom(data_dir / "synthetic", syn, quiet);

    const json study = {
        {"name", "cxr demo: phantom chest radiographs"},
        {"data",
         {{"train", manifest_source(data_dir / "real", "train", "site_0")},
          {"valid", manifest_source(data_dir / "real", "valid", "site_0")},
          {"tests", json::array({{{"name", "in_distribution"},
                                  {"description", "site_0 test split (the training site)"},
                                  {"source", manifest_source(data_dir / "real", "test", "site_0")}},
                                 {{"name", "ood_site_2"},
                                  {"description", "site_2 test split (held-out site: darker, noisier, blurred, "
                                                  "collimated)"},
                                  {"source", manifest_source(data_dir / "real", "test", "site_2")}}})},
          {"synthetic", manifest_source(data_dir / "synthetic", "", "")},
          {"synthetic_description",
           "a second phantom draw (balanced demographics, one site) standing in for generator output"},
          {"synthetic_stand_in", true}}},
        {"model",
         {{"arch", quick ? "resnet18-w4" : "resnet18-w8"},
          {"labels", {"No Finding", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Pneumonia",
                      "Pneumothorax"}},
          {"image_size", real.size},
          {"channels", 1},
          {"mean", json::array({0.5})},
          {"std", json::array({0.25})},
          {"epochs", quick ? 1 : 6},
          {"batch_size", 32},
          {"lr", 2e-3},
          {"weight_decay", 0.05},
          {"warmup_epochs", quick ? 0 : 1},
          {"augment", "flip"},
          {"device", args.get("device")},
          {"workers", 1}}},
        {"strategies",
         json::array({{{"name", "real"}, {"kind", "real"}},
                      {{"name", "synthetic"}, {"kind", "synthetic"}},
                      {{"name", "mix"}, {"kind", "mix"}, {"synthetic_amounts", json::array({quick ? 60 : 600})}},
                      {{"name", "pretrain_finetune"},
                       {"kind", "pretrain_finetune"},
                       {"pretrain_lr", 2e-3},
                       {"finetune_lr", 1e-3},
                       {"real_images", json::array({quick ? 40 : 200, 0})}},
                      {{"name", "oversample_race"}, {"kind", "real"}, {"oversample", "race"}},
                      {{"name", "focal"}, {"kind", "real"}, {"train", {{"loss", "focal"}}}}})},
        {"baseline", "real"},
        {"seeds", json::array({seed})},
        {"evaluate",
         {{"bootstrap", quick ? 20 : 200}, {"seed", 0}, {"groups", json::array({json::array({"sex"}), json::array({"race"}), json::array({"sex", "race"}),
                                  json::array({"sex", "age"})})},
          {"min_subgroup_size", quick ? 0 : 10}}},
        {"samples", {{"findings", {"No Finding", "Cardiomegaly", "Pleural Effusion", "Pneumothorax", "Edema"}},
                     {"per_cell", 1}}}};
    fs::create_directories(out);
    write_json_atomically(out / "study.json", study);
    const StudyConfig config = StudyConfig::from_json(study, "");
    StudyHooks hooks;
    hooks.quiet = quiet;
    const StudyResult r = run_study(config, (out / "study").string(), hooks);
    std::cout << "demo done: " << r.trained.size() << " models trained, " << r.reused.size() << " reused\n"
              << "report: " << r.report << "\n";
    return 0;
}

}  // namespace cxr::apps
