// The core of `cxr evaluate`: from a predictions table (and optionally a validation table for thresholds and a
// second model's predictions for comparisons) to the metrics JSON documented in metrics/README.md.
//   - per label: AUROC, AUPRC (classification.h), bootstrap percentile CIs (statistics.h), and with a validation
//     set the F1-maximising threshold and the binarised metrics at it on the test set;
//   - macro AUROC/AUPRC over the chosen labels (mean of the defined per-label values) with CIs;
//   - per grouping: subgroup AUROC, underdiagnosis rate and the two gaps with CIs (fairness.h);
//   - with a second model: DeLong test per label, paired bootstrap CIs of the AUROC differences (per label and
//     macro) and the paired permutation test of the AUPRC difference per label.
// All bootstrap statistics share the same resamples (one weight vector per resample), so differences and gaps are
// paired and the run is reproducible from the seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/predictions.h"

namespace cxr::metrics {

struct EvaluateOptions {
    std::vector<std::string> labels;                  // empty: every label of the predictions
    std::vector<std::vector<std::string>> groupings;  // e.g. {{"sex"}, {"sex", "race"}}
    int64_t bootstrap = 1000;                         // resamples; 0: no confidence intervals
    uint64_t seed = 0;
    double level = 0.95;
    int64_t permutations = 1000;
    int64_t min_subgroup_size = 0;
    std::string no_finding_label = "No Finding";
    double no_finding_threshold = 0.5;                // used when no validation set gives one
    // Where the bootstrap runs: "cpu" (OpenMP) or "cuda[:N]" (metrics/gpu.h: every resample in parallel on the
    // GPU, the same resamples and intervals). Point estimates, DeLong and permutation tests run on the CPU.
    std::string device = "cpu";
};

// `compare` rows are matched to `test` rows by image_id; its truth columns are ignored (the test truth is used).
nlohmann::json evaluate(const Predictions& test, const Predictions* validation, const Predictions* compare,
                        const EvaluateOptions& options);

}  // namespace cxr::metrics
