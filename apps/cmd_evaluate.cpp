// `cxr evaluate`: performance and fairness of a classifier from its predictions CSV (format and JSON schema in
// metrics/README.md): per-label and macro AUROC/AUPRC with bootstrap CIs, F1 thresholds from a validation file,
// subgroup AUROC and underdiagnosis gaps, and DeLong/permutation tests against a second model (metrics/evaluate.h).
#include <filesystem>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/progress.h"
#include "metrics/evaluate.h"
#include "metrics/fairness.h"
#include "metrics/predictions.h"
#include "tensor/error.h"

namespace cxr::apps {

int cmd_evaluate(int argc, char** argv) {
    // --groups may be repeated (one grouping each); collect them before the common parser sees the rest.
    std::vector<std::string> groups;
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--groups") {
            CXR_CHECK(i + 1 < argc, "cxr evaluate: --groups needs a value (e.g. sex or sex,race)");
            groups.push_back(argv[++i]);
        } else if (a.rfind("--groups=", 0) == 0) {
            groups.push_back(a.substr(9));
        } else {
            rest.push_back(argv[i]);
        }
    }
    Args args("evaluate",
              "Classification performance and fairness from a predictions CSV, with bootstrap confidence intervals\n"
              "and tests against a second model. Formats: metrics/README.md.",
              {{"predictions", "P.csv", "predictions CSV of the model (required)", ""},
               {"validation", "V.csv", "predictions on a validation set: F1-maximising thresholds per label", ""},
               {"labels", "L1,L2,...", "labels for the per-label and macro metrics (default: all in the file)", ""},
               {"groups", "A[,B]", "a grouping (sex, age, race, site or an intersection like sex,race); repeatable",
                ""},
               {"min-subgroup", "N", "subgroups with fewer cases are reported but excluded from the gaps", "0"},
               {"no-finding", "LABEL", "the label whose binarised FPR is the underdiagnosis rate", "No Finding"},
               {"threshold", "X", "No Finding threshold when --validation does not give one", "0.5"},
               {"bootstrap", "N", "bootstrap resamples for the confidence intervals (0: none)", "1000"},
               {"level", "X", "confidence level of the intervals", "0.95"},
               {"permutations", "N", "permutations of the AUPRC test (with --compare)", "1000"},
               {"seed", "S", "seed of the bootstrap and permutation streams", "0"},
               {"device", "DEV", "where the bootstrap runs: cpu, or cuda[:n] (all resamples in parallel on the GPU; "
                                 "the same intervals)", "cpu"},
               {"compare", "Q.csv", "predictions of a second model on the same images: DeLong and permutation tests",
                ""},
               {"out", "metrics.json", "where to write the metrics JSON (required)", ""}});
    if (!args.parse((int)rest.size(), rest.data())) return 0;
    const std::string pred_path = args.get("predictions"), out_path = args.get("out");
    CXR_CHECK(!pred_path.empty(), "cxr evaluate: --predictions is required (see cxr evaluate --help)");
    CXR_CHECK(!out_path.empty(), "cxr evaluate: --out is required (see cxr evaluate --help)");

    metrics::EvaluateOptions opt;
    if (!args.get("labels").empty()) {
        std::stringstream ss(args.get("labels"));
        std::string l;
        while (std::getline(ss, l, ',')) opt.labels.push_back(l);
    }
    for (const auto& g : groups) opt.groupings.push_back(metrics::parse_grouping(g));
    opt.min_subgroup_size = args.get_int("min-subgroup");
    opt.no_finding_label = args.get("no-finding");
    opt.no_finding_threshold = args.get_double("threshold");
    opt.bootstrap = args.get_int("bootstrap");
    opt.level = args.get_double("level");
    opt.permutations = args.get_int("permutations");
    opt.device = args.get("device");
    const int64_t seed = args.get_int("seed");
    CXR_CHECK(seed >= 0, "cxr evaluate: --seed must be >= 0");
    opt.seed = (uint64_t)seed;
    CXR_CHECK(opt.bootstrap >= 0, "cxr evaluate: --bootstrap must be >= 0");
    CXR_CHECK(opt.permutations >= 1, "cxr evaluate: --permutations must be >= 1");
    CXR_CHECK(opt.level > 0 && opt.level < 1, "cxr evaluate: --level must be in (0, 1)");

    const metrics::Predictions test = metrics::read_predictions_csv(pred_path);
    std::optional<metrics::Predictions> validation, compare;
    if (!args.get("validation").empty()) validation = metrics::read_predictions_csv(args.get("validation"));
    if (!args.get("compare").empty()) compare = metrics::read_predictions_csv(args.get("compare"));
    std::cout << "cxr evaluate: " << test.size() << " images, " << test.label_names.size() << " labels"
              << (opt.bootstrap ? ", " + std::to_string(opt.bootstrap) + " bootstrap resamples" : std::string())
              << std::endl;

    nlohmann::json j = metrics::evaluate(test, validation ? &*validation : nullptr, compare ? &*compare : nullptr, opt);
    j["inputs"] = {{"predictions", pred_path},
                   {"validation", args.get("validation")},
                   {"compare", args.get("compare")},
                   {"groups", groups}};
    j["run"] = run_record();
    write_json_atomically(out_path, j);
    std::cout << "macro AUROC " << j["macro"]["auroc"].dump() << "  95% CI " << j["macro"]["auroc_ci"].dump()
              << "\nwrote " << out_path << "\n";
    return 0;
}

}  // namespace cxr::apps
