// `cxr study --config FILE --out DIR`: the study runner (apps/study/study.h) — trains classifiers under the four
// strategies, evaluates them on every test set and writes DIR/metrics.json and DIR/report.html. Restarting a killed
// study with the same config and folder reuses the finished models.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/config_json.h"
#include "apps/study/study.h"
#include "tensor/error.h"

namespace cxr::apps {

int cmd_study(int argc, char** argv) {
    Args args("study",
              "Trains classifiers on real data, synthetic data, their mix, and synthetic pretraining + real\n"
              "fine-tuning (plus baselines), evaluates performance and fairness with bootstrap CIs and DeLong tests on\n"
              "every test set, and writes DIR/metrics.json and a self-contained DIR/report.html.\n"
              "The config format is documented in apps/study/study.h and the README.",
              {{"config", "FILE", "the study's JSON config (required)", ""},
               {"out", "DIR", "output folder (required; a killed study restarts here where it stopped)", ""},
               {"device", "DEV", "cpu or cuda (overrides model.device)", ""},
               {"quiet", "", "no progress bars", ""}});
    if (!args.parse(argc, argv)) return 0;
    const std::string path = args.get("config"), out = args.get("out");
    CXR_CHECK(!path.empty() && !out.empty(), "study: --config FILE and --out DIR are required (see --help)");
    nlohmann::json j = read_json_file(path, "study", "config");
    if (!args.get("device").empty()) j["model"]["device"] = args.get("device");
    const StudyConfig config = StudyConfig::from_json(j, std::filesystem::path(path).parent_path().string());
    StudyHooks hooks;
    hooks.quiet = args.flag("quiet");
    const StudyResult r = run_study(config, out, hooks);
    std::cout << "study done: " << r.trained.size() << " runs trained, " << r.reused.size() << " reused\nreport: "
              << r.report << "\n";
    return 0;
}

}  // namespace cxr::apps
