// Tests of metrics/classification.h: AUROC, AUPRC, ROC and PR curves and case weights against scikit-learn
// (roc_auc_score, average_precision_score, roc_curve(drop_intermediate=False), precision_recall_curve, with
// sample_weight) on tiny, tied, masked (unknown labels) and larger cases; the F1-maximising threshold against a
// brute-force scan with sklearn.metrics.f1_score; hand-computed binarised metrics; undefined values for
// one-class labels; the Mann-Whitney identity on a hand case; bad inputs.
#include "tests/metrics/metrics_fixture.h"

#include <cmath>
#include <limits>

#include "metrics/classification.h"
#include "tensor/error.h"

using namespace cxr::metrics;
using cxr::testing::fx;
using cxr::testing::fx1;
using cxr::testing::fx_labels;

namespace {

void check_vector(const std::vector<double>& got, const std::vector<double>& want, double atol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("index " << i << ": got " << got[i] << ", want " << want[i]);
        if (std::isinf(want[i]))
            CHECK(got[i] == want[i]);
        else
            CHECK(std::fabs(got[i] - want[i]) <= atol);
    }
}

}  // namespace

TEST_CASE("classification: AUROC and AUPRC match scikit-learn", "[cpu][classification]") {
    for (const char* c : {"tiny", "ties", "masked", "large"}) {
        INFO("case " << c);
        const std::string n = c;
        const auto s = fx(n + ".scores");
        const auto y = fx_labels(n + ".labels");
        const auto a = auroc(s, y);
        const auto p = auprc(s, y);
        REQUIRE(a);
        REQUIRE(p);
        CHECK(std::fabs(*a - fx1(n + ".auroc")) <= 1e-9);
        CHECK(std::fabs(*p - fx1(n + ".auprc")) <= 1e-9);
    }
}

TEST_CASE("classification: integer case weights match scikit-learn sample_weight", "[cpu][classification]") {
    const auto s = fx("weighted.scores");
    const auto y = fx_labels("weighted.labels");
    const auto w = fx("weighted.weights");
    RankedBinary rb(s, y);
    CHECK(std::fabs(*rb.auroc(&w) - fx1("weighted.auroc")) <= 1e-9);
    CHECK(std::fabs(*rb.auprc(&w) - fx1("weighted.auprc")) <= 1e-9);
    // Identity: integer weights are multiplicities (the bootstrap relies on it).
    std::vector<double> s2;
    std::vector<int> y2;
    for (size_t i = 0; i < s.size(); ++i)
        for (int k = 0; k < (int)w[i]; ++k) {
            s2.push_back(s[i]);
            y2.push_back(y[i]);
        }
    CHECK(std::fabs(*auroc(s2, y2) - *rb.auroc(&w)) <= 1e-12);
    CHECK(std::fabs(*auprc(s2, y2) - *rb.auprc(&w)) <= 1e-12);
}

TEST_CASE("classification: ROC and PR curves match scikit-learn", "[cpu][classification]") {
    for (const char* c : {"tiny", "ties", "masked"}) {
        INFO("case " << c);
        const std::string n = c;
        const auto s = fx(n + ".scores");
        const auto y = fx_labels(n + ".labels");
        const RocCurve roc = roc_curve(s, y);
        check_vector(roc.fpr, fx(n + ".roc_fpr"), 1e-12);
        check_vector(roc.tpr, fx(n + ".roc_tpr"), 1e-12);
        check_vector(roc.thresholds, fx(n + ".roc_thresholds"), 0.0);
        const PrCurve pr = precision_recall_curve(s, y);
        check_vector(pr.precision, fx(n + ".pr_precision"), 1e-12);
        check_vector(pr.recall, fx(n + ".pr_recall"), 1e-12);
        check_vector(pr.thresholds, fx(n + ".pr_thresholds"), 0.0);
    }
}

TEST_CASE("classification: F1-maximising threshold matches a brute-force scikit-learn scan", "[cpu][classification]") {
    for (const char* c : {"tiny", "ties", "masked"}) {
        INFO("case " << c);
        const std::string n = c;
        const ThresholdChoice t = best_f1_threshold(fx(n + ".scores"), fx_labels(n + ".labels"));
        CHECK(t.threshold == fx1(n + ".f1_threshold"));
        CHECK(std::fabs(t.f1 - fx1(n + ".f1_best")) <= 1e-12);
    }
}

TEST_CASE("classification: hand-computed cases", "[cpu][classification]") {
    // Mann-Whitney by hand: positives {0.8, 0.5}, negatives {0.5, 0.2, 0.1}:
    // pairs won: 0.8 beats all 3; 0.5 ties one (0.5) and beats 2 -> U = 3 + 2.5 = 5.5; AUROC = 5.5 / 6.
    const std::vector<double> s = {0.8, 0.5, 0.5, 0.2, 0.1, 0.9};
    const std::vector<int> y = {1, 1, 0, 0, 0, -1};
    CHECK(*auroc(s, y) == Approx(5.5 / 6.0).epsilon(1e-15));
    // AP: descending blocks {0.8:+} -> R=1/2, P=1; {0.5: +,-} -> R=1, P=2/3; AP = 0.5 + 0.5 * 2/3.
    CHECK(*auprc(s, y) == Approx(0.5 + 1.0 / 3.0).epsilon(1e-15));
    // Confusion at 0.5 (score >= 0.5 predicted positive; the unknown case is ignored): TP 2, FP 1, TN 2, FN 0.
    const ConfusionCounts c = confusion_at(s, y, 0.5);
    CHECK(c.tp == 2);
    CHECK(c.fp == 1);
    CHECK(c.tn == 2);
    CHECK(c.fn == 0);
    const BinaryMetrics m = binary_metrics(c);
    CHECK(*m.accuracy == Approx(4.0 / 5.0));
    CHECK(*m.precision == Approx(2.0 / 3.0));
    CHECK(*m.recall == Approx(1.0));
    CHECK(*m.f1 == Approx(4.0 / 5.0));
    CHECK(*m.fpr == Approx(1.0 / 3.0));
    CHECK(*m.fnr == Approx(0.0));
    // No predicted positives: precision undefined, not NaN.
    const BinaryMetrics none = binary_metrics(confusion_at(s, y, 2.0));
    CHECK_FALSE(none.precision.has_value());
    CHECK(*none.recall == 0.0);
    // Reversing the scores gives 1 - AUROC.
    std::vector<double> neg(s);
    for (auto& v : neg) v = -v;
    CHECK(*auroc(neg, y) == Approx(1.0 - 5.5 / 6.0).epsilon(1e-15));
}

TEST_CASE("classification: one-class labels are undefined, never NaN", "[cpu][classification]") {
    const std::vector<double> s = {0.1, 0.7, 0.3};
    CHECK_FALSE(auroc(s, {1, 1, 1}).has_value());
    CHECK_FALSE(auroc(s, {0, 0, -1}).has_value());
    CHECK_FALSE(auprc(s, {0, 0, 0}).has_value());
    CHECK(*auprc(s, {1, 1, 1}) == 1.0);  // scikit-learn's value with only positives
    CHECK_FALSE(auroc(s, {-1, -1, -1}).has_value());
    CHECK_THROWS_AS(roc_curve(s, {1, 1, 1}), cxr::Error);
    CHECK_THROWS_AS(best_f1_threshold(s, {0, 0, 0}), cxr::Error);
    int64_t defined = -1;
    CHECK_FALSE(mean_defined({std::nullopt, std::nullopt}, &defined).has_value());
    CHECK(defined == 0);
    CHECK(*mean_defined({0.5, std::nullopt, 1.0}, &defined) == 0.75);
    CHECK(defined == 2);
}

TEST_CASE("classification: bad inputs name the problem", "[cpu][classification]") {
    CHECK_THROWS_AS(auroc({0.1, 0.2}, {1}), cxr::Error);
    CHECK_THROWS_AS(auroc({0.1, 0.2}, {1, 2}), cxr::Error);
    CHECK_THROWS_AS(auroc({0.1, std::nan("")}, {1, 0}), cxr::Error);
    // A NaN score on an unknown case is allowed (it is masked).
    CHECK(auroc({0.1, std::nan(""), 0.5}, {0, -1, 1}).has_value());
}
