// Classification metrics for one binary label (see classification.h for the conventions and formulas:
// Mann-Whitney AUROC with half-credit ties, scikit-learn's average precision, curves without dropped points).
#include "metrics/classification.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/error.h"

namespace cxr::metrics {

void check_binary_inputs(const std::vector<double>& scores, const std::vector<int>& labels, const std::string& what) {
    CXR_CHECK(scores.size() == labels.size(), what, ": ", scores.size(), " scores but ", labels.size(), " labels");
    for (size_t i = 0; i < labels.size(); ++i) {
        CXR_CHECK(labels[i] == 1 || labels[i] == 0 || labels[i] == -1, what, ": label of case ", i, " is ", labels[i],
                  " (expected 1, 0 or -1 for unknown)");
        if (labels[i] != -1)
            CXR_CHECK(std::isfinite(scores[i]), what, ": score of case ", i, " is not finite (", scores[i], ")");
    }
}

RankedBinary::RankedBinary(const std::vector<double>& scores, const std::vector<int>& labels,
                           const std::vector<int64_t>* subset, const std::string& what) {
    check_binary_inputs(scores, labels, what);
    const int64_t n = (int64_t)scores.size();
    if (subset) {
        for (int64_t i : *subset) {
            CXR_CHECK(i >= 0 && i < n, what, ": subset index ", i, " out of range [0, ", n, ")");
            if (labels[i] != -1) case_.push_back(i);
        }
    } else {
        for (int64_t i = 0; i < n; ++i)
            if (labels[i] != -1) case_.push_back(i);
    }
    // Descending score; equal scores keep index order so that the result never depends on the sort.
    std::stable_sort(case_.begin(), case_.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    positive_.resize(case_.size());
    for (size_t k = 0; k < case_.size(); ++k) {
        positive_[k] = labels[case_[k]] == 1;
        positives_ += positive_[k];
        if (k + 1 == case_.size() || scores[case_[k + 1]] != scores[case_[k]]) block_end_.push_back((int64_t)k + 1);
    }
}

void RankedBinary::block_weights(const std::vector<double>* weights, std::vector<double>& wpos,
                                 std::vector<double>& wneg) const {
    wpos.assign(block_end_.size(), 0.0);
    wneg.assign(block_end_.size(), 0.0);
    int64_t k = 0;
    for (size_t b = 0; b < block_end_.size(); ++b) {
        for (; k < block_end_[b]; ++k) {
            const double w = weights ? (*weights)[case_[k]] : 1.0;
            (positive_[k] ? wpos[b] : wneg[b]) += w;
        }
    }
}

std::optional<double> RankedBinary::auroc(const std::vector<double>* weights) const {
    std::vector<double> wpos, wneg;
    block_weights(weights, wpos, wneg);
    const double total_pos = std::accumulate(wpos.begin(), wpos.end(), 0.0);
    const double total_neg = std::accumulate(wneg.begin(), wneg.end(), 0.0);
    if (total_pos <= 0.0 || total_neg <= 0.0) return std::nullopt;
    // Blocks descending: a positive in block b beats the negatives strictly below it and ties with its block's.
    double neg_above = 0.0, u = 0.0;
    for (size_t b = 0; b < wpos.size(); ++b) {
        const double neg_below = total_neg - neg_above - wneg[b];
        u += wpos[b] * (neg_below + 0.5 * wneg[b]);
        neg_above += wneg[b];
    }
    return u / (total_pos * total_neg);
}

std::optional<double> RankedBinary::auprc(const std::vector<double>* weights) const {
    std::vector<double> wpos, wneg;
    block_weights(weights, wpos, wneg);
    const double total_pos = std::accumulate(wpos.begin(), wpos.end(), 0.0);
    if (total_pos <= 0.0) return std::nullopt;
    double tp = 0.0, fp = 0.0, ap = 0.0;
    for (size_t b = 0; b < wpos.size(); ++b) {
        tp += wpos[b];
        fp += wneg[b];
        if (wpos[b] > 0.0) ap += (wpos[b] / total_pos) * (tp / (tp + fp));
    }
    return ap;
}

std::optional<double> auroc(const std::vector<double>& scores, const std::vector<int>& labels) {
    return RankedBinary(scores, labels, nullptr, "auroc").auroc();
}

std::optional<double> auprc(const std::vector<double>& scores, const std::vector<int>& labels) {
    return RankedBinary(scores, labels, nullptr, "auprc").auprc();
}

namespace {

// Cumulative (threshold, tp, fp) at each distinct score, descending: scikit-learn's _binary_clf_curve points.
struct CumulativeCounts {
    std::vector<double> threshold, tp, fp;
};

CumulativeCounts cumulative_counts(const std::vector<double>& scores, const std::vector<int>& labels,
                                   const char* what) {
    check_binary_inputs(scores, labels, what);
    std::vector<int64_t> idx;
    for (size_t i = 0; i < labels.size(); ++i)
        if (labels[i] != -1) idx.push_back((int64_t)i);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    CumulativeCounts c;
    double tp = 0, fp = 0;
    for (size_t k = 0; k < idx.size(); ++k) {
        (labels[idx[k]] == 1 ? tp : fp) += 1.0;
        if (k + 1 == idx.size() || scores[idx[k + 1]] != scores[idx[k]]) {
            c.threshold.push_back(scores[idx[k]]);
            c.tp.push_back(tp);
            c.fp.push_back(fp);
        }
    }
    return c;
}

}  // namespace

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
    CumulativeCounts c = cumulative_counts(scores, labels, "roc_curve");
    CXR_CHECK(!c.tp.empty() && c.tp.back() > 0 && c.fp.back() > 0,
              "roc_curve: needs at least one positive and one negative known case (the curve is undefined)");
    RocCurve r;
    r.thresholds.push_back(std::numeric_limits<double>::infinity());
    r.fpr.push_back(0.0);
    r.tpr.push_back(0.0);
    for (size_t k = 0; k < c.tp.size(); ++k) {
        r.thresholds.push_back(c.threshold[k]);
        r.fpr.push_back(c.fp[k] / c.fp.back());
        r.tpr.push_back(c.tp[k] / c.tp.back());
    }
    return r;
}

PrCurve precision_recall_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
    CumulativeCounts c = cumulative_counts(scores, labels, "precision_recall_curve");
    CXR_CHECK(!c.tp.empty() && c.tp.back() > 0,
              "precision_recall_curve: needs at least one positive known case (recall is undefined)");
    PrCurve r;
    for (size_t j = c.tp.size(); j-- > 0;) {  // ascending thresholds
        r.thresholds.push_back(c.threshold[j]);
        r.precision.push_back(c.tp[j] / (c.tp[j] + c.fp[j]));
        r.recall.push_back(c.tp[j] / c.tp.back());
    }
    r.precision.push_back(1.0);
    r.recall.push_back(0.0);
    return r;
}

ConfusionCounts confusion_at(const std::vector<double>& scores, const std::vector<int>& labels, double threshold,
                             const std::vector<int64_t>* subset) {
    check_binary_inputs(scores, labels, "confusion_at");
    ConfusionCounts c;
    auto add = [&](int64_t i) {
        if (labels[i] == -1) return;
        const bool predicted = scores[i] >= threshold;
        if (labels[i] == 1)
            (predicted ? c.tp : c.fn) += 1;
        else
            (predicted ? c.fp : c.tn) += 1;
    };
    if (subset) {
        for (int64_t i : *subset) {
            CXR_CHECK(i >= 0 && i < (int64_t)scores.size(), "confusion_at: subset index ", i, " out of range");
            add(i);
        }
    } else {
        for (int64_t i = 0; i < (int64_t)scores.size(); ++i) add(i);
    }
    return c;
}

BinaryMetrics binary_metrics(const ConfusionCounts& c) {
    auto ratio = [](int64_t num, int64_t den) -> std::optional<double> {
        if (den == 0) return std::nullopt;
        return (double)num / (double)den;
    };
    BinaryMetrics m;
    m.accuracy = ratio(c.tp + c.tn, c.total());
    m.precision = ratio(c.tp, c.tp + c.fp);
    m.recall = ratio(c.tp, c.tp + c.fn);
    m.f1 = ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
    m.fpr = ratio(c.fp, c.fp + c.tn);
    m.fnr = ratio(c.fn, c.fn + c.tp);
    return m;
}

ThresholdChoice best_f1_threshold(const std::vector<double>& scores, const std::vector<int>& labels) {
    CumulativeCounts c = cumulative_counts(scores, labels, "best_f1_threshold");
    CXR_CHECK(!c.tp.empty() && c.tp.back() > 0,
              "best_f1_threshold: the validation set has no positive case for this label (F1 is undefined)");
    const double positives = c.tp.back();
    ThresholdChoice best;
    best.f1 = -1.0;
    // Descending thresholds: a strictly better F1 replaces the choice, so ties keep the highest threshold.
    for (size_t k = 0; k < c.tp.size(); ++k) {
        const double fn = positives - c.tp[k];
        const double f1 = 2.0 * c.tp[k] / (2.0 * c.tp[k] + c.fp[k] + fn);
        if (f1 > best.f1) {
            best.f1 = f1;
            best.threshold = c.threshold[k];
        }
    }
    return best;
}

std::optional<double> mean_defined(const std::vector<std::optional<double>>& values, int64_t* defined) {
    double sum = 0.0;
    int64_t count = 0;
    for (const auto& v : values)
        if (v) {
            sum += *v;
            ++count;
        }
    if (defined) *defined = count;
    if (count == 0) return std::nullopt;
    return sum / (double)count;
}

}  // namespace cxr::metrics
