// Tests of metrics/statistics.h: the DeLong test (fast midrank algorithm) against the O(m n) definition of
// DeLong et al. 1988 computed with numpy/scipy in the fixture script; the normal CDF and midranks against scipy;
// percentile intervals against numpy.percentile; the exact permutation p-value against an enumeration with
// scikit-learn's average precision, and the Monte Carlo p-value within binomial error of it; bootstrap
// reproducibility, resampling identities and coverage of a known quantity; the DeLong z and p against R's pROC.
#include "tests/metrics/metrics_fixture.h"

#include <cmath>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "metrics/classification.h"
#include "metrics/predictions.h"
#include "metrics/statistics.h"
#include "tensor/error.h"

using namespace cxr::metrics;
using cxr::testing::fx;
using cxr::testing::fx1;
using cxr::testing::fx_labels;

TEST_CASE("statistics: DeLong test matches the O(mn) definition", "[cpu][statistics]") {
    for (const char* c : {"delong_small", "delong_ties", "delong_large"}) {
        INFO("case " << c);
        const std::string n = c;
        const DelongResult r = delong_test(fx(n + ".a"), fx(n + ".b"), fx_labels(n + ".labels"));
        const auto auc = fx(n + ".auc");
        const auto S = fx(n + ".S");  // [2, 2]
        CHECK(std::fabs(r.auroc_a - auc[0]) <= 1e-12);
        CHECK(std::fabs(r.auroc_b - auc[1]) <= 1e-12);
        CHECK(r.variance_a == Approx(S[0]).epsilon(1e-9));
        CHECK(r.covariance == Approx(S[1]).epsilon(1e-9));
        CHECK(r.variance_b == Approx(S[3]).epsilon(1e-9));
        CHECK(r.z == Approx(fx1(n + ".z")).epsilon(1e-9));
        CHECK(std::fabs(r.p_value - fx1(n + ".p")) <= 1e-6);
    }
}

TEST_CASE("statistics: DeLong identities", "[cpu][statistics]") {
    const auto a = fx("delong_small.a");
    const auto y = fx_labels("delong_small.labels");
    const DelongResult same = delong_test(a, a, y);
    CHECK(same.difference == 0.0);
    CHECK(same.p_value == 1.0);
    // Swapping the models flips z and keeps p.
    const auto b = fx("delong_small.b");
    const DelongResult ab = delong_test(a, b, y), ba = delong_test(b, a, y);
    CHECK(ab.z == Approx(-ba.z).epsilon(1e-12));
    CHECK(ab.p_value == Approx(ba.p_value).epsilon(1e-12));
    CHECK(ab.auroc_a == Approx(*auroc(a, y)).epsilon(1e-12));
    CHECK_THROWS_AS(delong_test({0.1, 0.2, 0.3}, {0.1, 0.2, 0.3}, {1, 0, 0}), cxr::Error);
}

TEST_CASE("statistics: normal CDF and midranks match scipy", "[cpu][statistics]") {
    const auto x = fx("normal.x"), cdf = fx("normal.cdf");
    for (size_t i = 0; i < x.size(); ++i) {
        INFO("x = " << x[i]);
        CHECK(normal_cdf(x[i]) == Approx(cdf[i]).epsilon(1e-13).margin(1e-300));
    }
    const auto r = midranks(fx("ranks.values")), want = fx("ranks.midranks");
    REQUIRE(r.size() == want.size());
    for (size_t i = 0; i < r.size(); ++i) CHECK(r[i] == want[i]);
}

TEST_CASE("statistics: percentile interval matches numpy.percentile", "[cpu][statistics]") {
    const auto v = fx("percentile.values");
    const ConfidenceInterval c95 = percentile_interval(v, 0.95), c80 = percentile_interval(v, 0.80);
    CHECK(*c95.lo == Approx(fx("percentile.ci95")[0]).epsilon(1e-14));
    CHECK(*c95.hi == Approx(fx("percentile.ci95")[1]).epsilon(1e-14));
    CHECK(*c80.lo == Approx(fx("percentile.ci80")[0]).epsilon(1e-14));
    CHECK(*c80.hi == Approx(fx("percentile.ci80")[1]).epsilon(1e-14));
    const ConfidenceInterval empty = percentile_interval({}, 0.95);
    CHECK_FALSE(empty.lo.has_value());
    CHECK(empty.valid_resamples == 0);
}

TEST_CASE("statistics: exact and Monte Carlo permutation p-values for AUPRC", "[cpu][statistics]") {
    const auto a = fx("perm.a"), b = fx("perm.b");
    const auto y = fx_labels("perm.labels");
    const double p_exact = fx1("perm.p_exact");
    const PermutationResult ex = permutation_test_auprc(a, b, y, {1024, 7});  // 2^10 patterns: enumerated
    CHECK(ex.exact);
    CHECK(ex.permutations == 1024);
    CHECK(std::fabs(ex.difference - fx1("perm.difference")) <= 1e-12);
    CHECK(std::fabs(ex.p_value - p_exact) <= 1e-12);
    const PermutationResult mc = permutation_test_auprc(a, b, y, {1000, 7});
    CHECK_FALSE(mc.exact);
    // Monte Carlo with 1000 draws: within 5 binomial standard errors of the exact value.
    const double se = std::sqrt(p_exact * (1 - p_exact) / 1000.0);
    CHECK(std::fabs(mc.p_value - p_exact) <= 5 * se + 2e-3);
    // Reproducible from the seed.
    CHECK(permutation_test_auprc(a, b, y, {1000, 7}).p_value == mc.p_value);
    // Identical models: every permutation is as extreme as the observation.
    CHECK(permutation_test_auprc(a, a, y, {200, 1}).p_value == 1.0);
}

TEST_CASE("statistics: bootstrap weights, reproducibility and percentile intervals", "[cpu][statistics]") {
    const int64_t n = 257;
    const std::vector<double> w0 = bootstrap_weights(n, 42, 0), w1 = bootstrap_weights(n, 42, 1);
    CHECK(std::accumulate(w0.begin(), w0.end(), 0.0) == n);
    CHECK(w0 != w1);
    CHECK(bootstrap_weights(n, 42, 1) == w1);  // each resample reproducible on its own
    CHECK(bootstrap_weights(n, 43, 0) != w0);

    // The bootstrap of a mean: percentile interval around the sample mean, reproducible, and equal to the
    // interval of the explicitly recomputed resampled means.
    std::vector<double> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37 * (double)i) + 0.01 * (double)i;
    const double mean = std::accumulate(x.begin(), x.end(), 0.0) / (double)n;
    auto stat = [&](const std::vector<double>& w) {
        double s = 0.0, sw = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            s += w[i] * x[i];
            sw += w[i];
        }
        return std::vector<std::optional<double>>{s / sw, std::nullopt};
    };
    BootstrapOptions opt;
    opt.resamples = 400;
    opt.seed = 9;
    const auto ci = bootstrap(n, 2, stat, opt);
    REQUIRE(ci.size() == 2);
    CHECK(ci[0].valid_resamples == 400);
    CHECK(*ci[0].lo < mean);
    CHECK(*ci[0].hi > mean);
    CHECK_FALSE(ci[1].lo.has_value());  // never defined -> no interval
    std::vector<double> means;
    for (int64_t r = 0; r < opt.resamples; ++r) means.push_back(*stat(bootstrap_weights(n, 9, r))[0]);
    const ConfidenceInterval direct = percentile_interval(means, 0.95);
    CHECK(*ci[0].lo == *direct.lo);
    CHECK(*ci[0].hi == *direct.hi);
    // Standard error check: the 95% interval width is close to 2 * 1.96 * sd / sqrt(n).
    double var = 0.0;
    for (double v : x) var += (v - mean) * (v - mean);
    const double se = std::sqrt(var / (double)(n - 1) / (double)n);
    CHECK((*ci[0].hi - *ci[0].lo) == Approx(2 * 1.96 * se).epsilon(0.2));
}

// R's pROC 1.18 (tests/fixtures/metrics_proc.json, made by tests/fixtures/tools/make_metrics_proc_fixtures.R from
// the predictions fixture): AUC, DeLong variance and paired roc.test(method = "delong") z and p.
TEST_CASE("statistics: DeLong test matches R pROC", "[cpu][statistics]") {
    const std::string root = CXR_SOURCE_DIR;
    std::ifstream in(root + "/tests/fixtures/metrics_proc.json");
    REQUIRE(in);
    const nlohmann::json ref = nlohmann::json::parse(in);
    const Predictions p = read_predictions_csv(root + "/tests/fixtures/metrics_predictions.csv");
    for (const std::string l : {"Effusion", "Edema", "No Finding"}) {
        INFO("label " << l);
        const int64_t li = p.label_index(l);
        std::vector<double> noisy(p.scores[li]);
        for (size_t i = 0; i < noisy.size(); ++i) noisy[i] += 0.3 * std::sin(7.0 * (double)i);
        const DelongResult d = delong_test(p.scores[li], noisy, p.truth[li]);
        CHECK(std::fabs(d.auroc_a - ref["auc." + l].get<double>()) <= 1e-12);
        CHECK(std::fabs(d.auroc_b - ref["noisy." + l + ".auc_b"].get<double>()) <= 1e-12);
        CHECK(d.variance_a == Approx(ref["var." + l].get<double>()).epsilon(1e-9));
        CHECK(d.z == Approx(ref["noisy." + l + ".z"].get<double>()).epsilon(1e-9));
        CHECK(std::fabs(d.p_value - ref["noisy." + l + ".p"].get<double>()) <= 1e-6);
        CHECK(d.p_value == Approx(ref["noisy." + l + ".p"].get<double>()).epsilon(1e-8));
        for (const std::string m : {"Effusion", "Edema", "No Finding"}) {
            if (m == l) continue;
            INFO("versus " << m);
            const DelongResult e = delong_test(p.scores[li], p.scores[p.label_index(m)], p.truth[li]);
            CHECK(e.z == Approx(ref["delong." + l + "." + m + ".z"].get<double>()).epsilon(1e-9));
            CHECK(e.p_value == Approx(ref["delong." + l + "." + m + ".p"].get<double>()).epsilon(1e-6));
        }
    }
}
