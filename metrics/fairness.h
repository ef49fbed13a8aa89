// Subgroup fairness metrics on the CPU: subgroups by one attribute or an intersection of attributes, per-subgroup
// macro AUROC, the AUROC fairness gap, and the underdiagnosis rate and gap.
//
// Definitions (following Seyyed-Kalantari et al. 2021, "Underdiagnosis bias of artificial intelligence algorithms
// applied to chest radiographs in under-served patient populations", Nature Medicine 27:2176, and the RoentGen-v2
// fairness evaluation)
//   - Attributes: sex (M/F), age (binned 18-40, 40-60, 60-80, 80+ as [18, 40), [40, 60), [60, 80), [80, inf);
//     younger patients fall in no bin), race, site. A grouping is one attribute or several ("sex,race"); its
//     subgroups are the combinations present in the data, named by joining the values with '+' ("F+White").
//     A case with an unknown (empty) value of any grouping attribute belongs to no subgroup.
//   - Subgroup AUROC: the macro AUROC over the chosen labels, i.e. the mean of the labels whose AUROC is defined
//     in the subgroup (at least one known positive and one known negative); undefined when none is.
//   - Underdiagnosis rate: the false-positive rate of the binarised "No Finding" prediction, i.e. among the
//     subgroup's cases whose No Finding truth is 0 (some finding present), the fraction predicted "No Finding"
//     (score >= threshold): FP / (FP + TN) with No Finding as the positive class. Undefined without such cases.
//   - auroc_gap = max - min subgroup AUROC; underdiagnosis_gap = max - min underdiagnosis rate; both over the
//     subgroups with at least min_size cases (all cases of the subgroup, known labels or not) whose value is
//     defined. Smaller subgroups are reported but excluded from the gaps. A gap needs two eligible subgroups.
//   - Case weights (bootstrap resampling, metrics/statistics.h) weight every count and AUROC; the eligibility of a
//     subgroup is decided once on the unweighted data so that every resample compares the same subgroups.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics/classification.h"
#include "metrics/predictions.h"

namespace cxr::metrics {

// "sex", "age", "race", "site" or a comma-separated intersection such as "sex,race". Checks the names.
std::vector<std::string> parse_grouping(const std::string& spec);
// The key of a grouping: attributes joined by '+' ("sex+race").
std::string grouping_name(const std::vector<std::string>& attributes);
// "18-40", "40-60", "60-80", "80+", or "" for an age below 18.
std::string age_bin(double age);

struct Subgroups {
    std::vector<std::string> names;                // sorted
    std::vector<std::vector<int64_t>> members;     // case indices per subgroup
    int64_t unassigned = 0;                        // cases with an unknown attribute value (or age < 18)
};
// Fails when the predictions lack a column the grouping needs.
Subgroups assign_subgroups(const Predictions& p, const std::vector<std::string>& attributes);

struct FairnessOptions {
    std::vector<int64_t> labels;          // label indices for the macro AUROC
    int64_t no_finding = -1;              // label index of "No Finding", -1: no underdiagnosis rates
    double no_finding_threshold = 0.5;    // predicted "No Finding" when score >= threshold
    int64_t min_size = 0;                 // subgroups with fewer cases are excluded from the gaps
};

struct SubgroupResult {
    std::string name;
    int64_t n = 0;
    std::optional<double> auroc;           // macro over the labels defined in the subgroup
    std::optional<double> fpr_no_finding;  // underdiagnosis rate
    bool in_gaps = false;                  // n >= min_size
};

struct FairnessResult {
    std::vector<SubgroupResult> subgroups;
    std::optional<double> auroc_gap, underdiagnosis_gap;
    std::string auroc_best, auroc_worst, underdiagnosis_max, underdiagnosis_min;  // subgroup names
};

// Fills r's gaps from r.subgroups: best − worst subgroup AUROC and max − min underdiagnosis rate, over the subgroups
// in the gaps (in_gaps) whose value is defined; undefined with fewer than two. Ties keep the first subgroup in name
// order. Shared by the CPU evaluator and the GPU path (metrics/gpu.h).
void fill_gaps(FairnessResult& r);

// Holds the sorted per-(subgroup, label) problems so that evaluate() costs O(n) per call (one per resample).
class FairnessEvaluator {
public:
    FairnessEvaluator(const Predictions& p, Subgroups subgroups, FairnessOptions options);
    // weights: one per case of the predictions (null = all 1). Thread-safe.
    FairnessResult evaluate(const std::vector<double>* weights = nullptr) const;
    const Subgroups& subgroups() const { return groups_; }

private:
    const Predictions* p_;
    Subgroups groups_;
    FairnessOptions opt_;
    std::vector<std::vector<RankedBinary>> ranked_;  // [subgroup][label in opt_.labels]
};

}  // namespace cxr::metrics
