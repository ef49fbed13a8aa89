// Classification metrics for one binary label on the CPU, in double precision: ROC and precision-recall curves,
// AUROC, AUPRC (average precision), confusion counts and binarised metrics at a threshold, and the threshold that
// maximises F1 on a validation set.
//
// Conventions (shared by every function here)
//   - scores: any real numbers, larger = more likely positive; labels: 1 (positive), 0 (negative), -1 (unknown).
//     Cases with label -1 are masked out. Any other label value, or a NaN score on a known case, is an error.
//   - A case is predicted positive at threshold t when score >= t (scikit-learn's convention for its curves).
//   - Undefined values are std::nullopt, never NaN: AUROC needs at least one positive and one negative known
//     case; AUPRC needs at least one positive; a ratio with a zero denominator (e.g. precision with no predicted
//     positives) is undefined.
//   - Case weights: RankedBinary accepts non-negative weights per case (indexed like the scores). Integer weights
//     are multiplicities, so a bootstrap resample is evaluated as weights = how often each case was drawn, in
//     O(n) per resample after one O(n log n) sort (metrics/statistics.h).
//
// Formulas
//   AUROC = P(score+ > score-) + 0.5 P(score+ = score-), the Mann-Whitney U statistic divided by n+ n-
//           (Hanley & McNeil 1982; ties count one half). Computed over blocks of tied scores in descending order:
//           AUROC = sum_blocks w+_b (W-_below_b + 0.5 w-_b) / (W+ W-).
//   AUPRC = average precision as in scikit-learn (average_precision_score): AP = sum_k (R_k - R_{k-1}) P_k over
//           the distinct thresholds in descending order, R_k and P_k the recall and precision when predicting
//           score >= threshold_k (no interpolation; Zhu 2004, Manning et al. 2008 §8.4).
//   roc_curve / precision_recall_curve return the points scikit-learn returns with drop_intermediate=False:
//     roc: thresholds descending, starting at +inf with the point (0, 0), then one point per distinct score;
//     pr:  thresholds ascending over the distinct scores; precision and recall with a final point (1, 0) that
//          has no threshold (so precision/recall have one more entry than thresholds).
//   F1 = 2 TP / (2 TP + FP + FN). best_f1_threshold scans every distinct score as a threshold and returns the one
//   with the highest F1; among equal F1 values (compared exactly) the highest threshold wins, which predicts the
//   fewest positives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cxr::metrics {

// Checks scores/labels of one label: same length, labels in {1, 0, -1}, finite scores where the label is known.
// `what` names the data in the error message (e.g. "label Effusion").
void check_binary_inputs(const std::vector<double>& scores, const std::vector<int>& labels,
                         const std::string& what = "binary metrics");

// One binary problem sorted once by descending score, so that AUROC and AP under any case weights cost O(n).
class RankedBinary {
public:
    RankedBinary() = default;
    // subset: the case indices to use (all cases when null). Cases with label -1 are dropped.
    RankedBinary(const std::vector<double>& scores, const std::vector<int>& labels,
                 const std::vector<int64_t>* subset = nullptr, const std::string& what = "binary metrics");

    // weights: one non-negative weight per case of the original vectors (not per subset entry); null = all 1.
    std::optional<double> auroc(const std::vector<double>* weights = nullptr) const;
    std::optional<double> auprc(const std::vector<double>* weights = nullptr) const;

    int64_t size() const { return (int64_t)case_.size(); }
    int64_t positives() const { return positives_; }
    int64_t negatives() const { return size() - positives_; }

private:
    // Sums of weights per block of tied scores (descending): positive and negative weight.
    void block_weights(const std::vector<double>* weights, std::vector<double>& wpos, std::vector<double>& wneg) const;

    std::vector<int64_t> case_;      // original case index, by descending score
    std::vector<uint8_t> positive_;  // 1 for a positive case, same order
    std::vector<int64_t> block_end_; // end (exclusive) of each block of tied scores in the sorted order
    int64_t positives_ = 0;
};

std::optional<double> auroc(const std::vector<double>& scores, const std::vector<int>& labels);
std::optional<double> auprc(const std::vector<double>& scores, const std::vector<int>& labels);

struct RocCurve {
    std::vector<double> fpr, tpr, thresholds;  // thresholds[0] = +inf
};
struct PrCurve {
    std::vector<double> precision, recall;  // one more entry than thresholds: the final (1, 0)
    std::vector<double> thresholds;         // ascending
};
// Both need at least one positive and one negative (roc) / one positive (pr); otherwise cxr::Error.
RocCurve roc_curve(const std::vector<double>& scores, const std::vector<int>& labels);
PrCurve precision_recall_curve(const std::vector<double>& scores, const std::vector<int>& labels);

struct ConfusionCounts {
    int64_t tp = 0, fp = 0, tn = 0, fn = 0;
    int64_t total() const { return tp + fp + tn + fn; }
};
ConfusionCounts confusion_at(const std::vector<double>& scores, const std::vector<int>& labels, double threshold,
                             const std::vector<int64_t>* subset = nullptr);

// Binarised metrics from counts; each is undefined when its denominator is zero.
struct BinaryMetrics {
    std::optional<double> accuracy;   // (TP + TN) / total
    std::optional<double> precision;  // TP / (TP + FP)
    std::optional<double> recall;     // TP / (TP + FN), the TPR (sensitivity)
    std::optional<double> f1;         // 2 TP / (2 TP + FP + FN)
    std::optional<double> fpr;        // FP / (FP + TN)
    std::optional<double> fnr;        // FN / (FN + TP)
};
BinaryMetrics binary_metrics(const ConfusionCounts& c);

struct ThresholdChoice {
    double threshold = 0.5;
    double f1 = 0.0;
};
// The F1-maximising threshold over the distinct scores of the known cases (see the header comment). Needs at
// least one positive; otherwise cxr::Error.
ThresholdChoice best_f1_threshold(const std::vector<double>& scores, const std::vector<int>& labels);

// Mean of the defined values (std::nullopt when none is defined); `defined` (optional) receives how many were.
std::optional<double> mean_defined(const std::vector<std::optional<double>>& values, int64_t* defined = nullptr);

}  // namespace cxr::metrics
