// Tests of the GPU metrics (metrics/gpu.h). The oracle is the CPU code of metrics/, itself tested against
// scikit-learn, numpy, scipy, pytorch_msssim and pytorch-fid fixtures; a few values are hand-computed.
//  [gpu][metrics] (skipped visibly without a CUDA device):
//  - AUROC/AUPRC: hand cases (ties, one class, n = 0, 1, 2), random data with heavy ties and unknown labels, and
//    n = 1e6 with ties. AUROC is the CPU's value bit for bit (integer sums, see gpu.h), checked to 1e-12 (1e-9 at
//    1e6); AUPRC's sum runs in another order: 1e-12 (1e-9 at 1e6).
//  - GpuBinaryBatch: per-resample values of full, subset, empty and one-case problems and of rates against
//    RankedBinary / weighted sums under bootstrap_weights(n, seed, r), for resamples not starting at 0; a problem
//    with tie blocks longer than a tile and a segment (snapped segment cuts); results independent of how the
//    resamples are requested.
//  - bootstrap_labels_gpu: the intervals of `cxr evaluate` (its JSON, computed on the CPU) for the same seed,
//    including labels with undefined resamples and an undefined label.
//  - fairness: fairness_gpu, fairness_resamples_gpu and bootstrap_fairness_gpu against FairnessEvaluator and the
//    CPU bootstrap() on the scikit-learn fixture CSV and on synthetic data with an unknown attribute.
//  - MS-SSIM on the GPU against the pytorch_msssim fixture and the CPU (f64: 1e-10; f32: 1e-5, the bar).
//  - Fréchet distance with GPU statistics against the CPU: 1e-6 relative; statistics to 1e-10.
//  - bad inputs throw as on the CPU.
//  [cpu][metrics]: without CUDA (or without a device) every GPU function throws a clear cxr::Error.
#include "tests/metrics/metrics_fixture.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/classification.h"
#include "metrics/evaluate.h"
#include "metrics/fairness.h"
#include "metrics/frechet.h"
#include "metrics/gpu.h"
#include "metrics/predictions.h"
#include "metrics/ssim.h"
#include "metrics/statistics.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

using namespace cxr::metrics;
using cxr::tensor::DType;
using cxr::tensor::Tensor;

namespace {

std::vector<double> uniform(int64_t n, uint64_t seed) {
    std::vector<double> u((size_t)n);
    cxr::tensor::fill_uniform_f64(u.data(), n, seed, 0, 0.0, 1.0);
    return u;
}

std::vector<double> normal(int64_t n, uint64_t seed) {
    std::vector<double> z((size_t)n);
    cxr::tensor::fill_normal_f64(z.data(), n, seed, 0, 0.0, 1.0);
    return z;
}

// Labels ~ Bernoulli(prevalence) with a fraction `unknown` of -1; scores = label + N(0, 1), rounded to `step`
// (0: not rounded) so that many scores tie.
void make_binary(int64_t n, double prevalence, double unknown, double step, uint64_t seed, std::vector<double>& scores,
                 std::vector<int>& labels) {
    const std::vector<double> u = uniform(n, seed), v = uniform(n, seed + 1000), z = normal(n, seed + 2000);
    scores.resize((size_t)n);
    labels.resize((size_t)n);
    for (int64_t i = 0; i < n; ++i) {
        labels[i] = v[i] < unknown ? -1 : (u[i] < prevalence ? 1 : 0);
        double s = (labels[i] == 1 ? 1.0 : 0.0) + z[i];
        if (step > 0) s = std::round(s / step) * step;
        scores[i] = s;
    }
}

// Both undefined, or both defined and within tol.
void check_same(const std::optional<double>& gpu, const std::optional<double>& cpu, double tol, const char* what) {
    INFO(what << ": GPU " << (gpu ? std::to_string(*gpu) : "undefined") << ", CPU "
              << (cpu ? std::to_string(*cpu) : "undefined"));
    REQUIRE(gpu.has_value() == cpu.has_value());
    if (cpu) {
        INFO("difference " << (*gpu - *cpu));
        CHECK(std::fabs(*gpu - *cpu) <= tol);
    }
}

void check_interval(const ConfidenceInterval& gpu, const ConfidenceInterval& cpu, double tol, const char* what) {
    INFO(what);
    CHECK(gpu.valid_resamples == cpu.valid_resamples);
    check_same(gpu.lo, cpu.lo, tol, "interval low end");
    check_same(gpu.hi, cpu.hi, tol, "interval high end");
}

// The JSON interval of evaluate(): [lo, hi] or null.
void check_interval_json(const ConfidenceInterval& gpu, const nlohmann::json& cpu, double tol, const std::string& what) {
    INFO(what);
    if (cpu.is_null()) {
        CHECK_FALSE(gpu.lo.has_value());
        CHECK_FALSE(gpu.hi.has_value());
        return;
    }
    REQUIRE(gpu.lo.has_value());
    REQUIRE(gpu.hi.has_value());
    CHECK(std::fabs(*gpu.lo - cpu[0].get<double>()) <= tol);
    CHECK(std::fabs(*gpu.hi - cpu[1].get<double>()) <= tol);
}

std::optional<double> json_opt(const nlohmann::json& j) {
    if (j.is_null()) return std::nullopt;
    return j.get<double>();
}

void check_fairness(const FairnessResult& gpu, const FairnessResult& cpu, double tol) {
    REQUIRE(gpu.subgroups.size() == cpu.subgroups.size());
    for (size_t s = 0; s < cpu.subgroups.size(); ++s) {
        INFO("subgroup " << cpu.subgroups[s].name);
        CHECK(gpu.subgroups[s].name == cpu.subgroups[s].name);
        CHECK(gpu.subgroups[s].n == cpu.subgroups[s].n);
        CHECK(gpu.subgroups[s].in_gaps == cpu.subgroups[s].in_gaps);
        check_same(gpu.subgroups[s].auroc, cpu.subgroups[s].auroc, tol, "subgroup AUROC");
        check_same(gpu.subgroups[s].fpr_no_finding, cpu.subgroups[s].fpr_no_finding, 0.0, "underdiagnosis rate");
    }
    check_same(gpu.auroc_gap, cpu.auroc_gap, tol, "AUROC gap");
    check_same(gpu.underdiagnosis_gap, cpu.underdiagnosis_gap, 0.0, "underdiagnosis gap");
    CHECK(gpu.auroc_best == cpu.auroc_best);
    CHECK(gpu.auroc_worst == cpu.auroc_worst);
    CHECK(gpu.underdiagnosis_max == cpu.underdiagnosis_max);
    CHECK(gpu.underdiagnosis_min == cpu.underdiagnosis_min);
}

// A synthetic predictions table: 3 labels (one rare), No Finding, sex with unknowns, age with missing and < 18
// values, race with 3 values.
Predictions synthetic_predictions(int64_t n, uint64_t seed) {
    Predictions p;
    for (int64_t i = 0; i < n; ++i) p.image_ids.push_back("img" + std::to_string(i));
    const double prevalence[4] = {0.3, 0.1, 0.01, 0.5};
    const char* names[4] = {"Effusion", "Edema", "Rare", "No Finding"};
    for (int l = 0; l < 4; ++l) {
        std::vector<double> s;
        std::vector<int> y;
        make_binary(n, prevalence[l], 0.05, l == 1 ? 0.25 : 0.0, seed + 10 * (uint64_t)l, s, y);
        if (l == 3)
            for (double& v : s) v = 1.0 / (1.0 + std::exp(-v));  // No Finding as a probability, thresholded at 0.5
        p.label_names.push_back(names[l]);
        p.scores.push_back(s);
        p.truth.push_back(y);
    }
    const std::vector<double> a = uniform(n, seed + 100), b = uniform(n, seed + 200), c = uniform(n, seed + 300);
    const char* races[3] = {"White", "Black", "Asian"};
    for (int64_t i = 0; i < n; ++i) {
        p.sex.push_back(a[i] < 0.05 ? "" : (a[i] < 0.55 ? "F" : "M"));
        p.age.push_back(b[i] < 0.05 ? std::nullopt : std::optional<double>(10.0 + 85.0 * b[i]));
        p.race.push_back(races[std::min(2, (int)(c[i] * 3.0))]);
    }
    return p;
}

// Every number of `gpu` equals the one at the same place in `cpu` to `tol` (relative above 1); strings, booleans and
// nulls exactly; the same keys. `skip`: a key whose value may differ (where the bootstrap ran).
void check_json_close(const nlohmann::json& gpu, const nlohmann::json& cpu, double tol, const std::string& path,
                      const std::string& skip) {
    INFO("at " << path);
    if (cpu.is_number() && gpu.is_number()) {
        const double a = gpu.get<double>(), b = cpu.get<double>();
        CHECK(std::fabs(a - b) <= tol * std::max(1.0, std::fabs(b)));
        return;
    }
    REQUIRE(gpu.type() == cpu.type());
    if (cpu.is_object()) {
        CHECK(gpu.size() == cpu.size());
        for (auto it = cpu.begin(); it != cpu.end(); ++it) {
            if (it.key() == skip) continue;
            REQUIRE(gpu.contains(it.key()));
            check_json_close(gpu[it.key()], it.value(), tol, path + "." + it.key(), skip);
        }
    } else if (cpu.is_array()) {
        REQUIRE(gpu.size() == cpu.size());
        for (size_t k = 0; k < cpu.size(); ++k)
            check_json_close(gpu[k], cpu[k], tol, path + "[" + std::to_string(k) + "]", skip);
    } else {
        CHECK(gpu == cpu);
    }
}

}  // namespace

// ============================================================================================ AUROC / AUPRC

TEST_CASE("metrics gpu: AUROC and AUPRC of hand-computed cases", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    // scikit-learn's documentation example: AUROC 3/4; AP = ½·1 + ½·⅔ = 5/6
    const std::vector<double> s1 = {0.1, 0.4, 0.35, 0.8};
    const std::vector<int> y1 = {0, 0, 1, 1};
    BinaryValues v = auroc_auprc_gpu(s1, y1);
    REQUIRE(v.auroc.has_value());
    REQUIRE(v.auprc.has_value());
    CHECK(*v.auroc == 0.75);
    CHECK(std::fabs(*v.auprc - 5.0 / 6.0) < 1e-15);
    // one tie block per class pair: AUROC (½ + 1 + 0 + ½) / 4 = ½; AP = ½·½ + ½·½ = ½
    v = auroc_auprc_gpu({1, 1, 0, 0}, {1, 0, 1, 0});
    CHECK(*v.auroc == 0.5);
    CHECK(*v.auprc == 0.5);
    // unknown labels (-1) are left out, whatever their scores
    v = auroc_auprc_gpu({0.1, 0.4, 100.0, 0.35, 0.8, -7.0}, {0, 0, -1, 1, 1, -1});
    CHECK(*v.auroc == 0.75);
    CHECK(std::fabs(*v.auprc - 5.0 / 6.0) < 1e-15);
    // tiny n
    CHECK_FALSE(auroc_gpu({}, {}).has_value());
    CHECK_FALSE(auprc_gpu({}, {}).has_value());
    CHECK_FALSE(auroc_gpu({0.3}, {1}).has_value());  // one class
    CHECK(*auprc_gpu({0.3}, {1}) == 1.0);
    CHECK_FALSE(auroc_gpu({0.3}, {0}).has_value());
    CHECK_FALSE(auprc_gpu({0.3}, {0}).has_value());  // no positive
    CHECK(*auroc_gpu({0.3, 0.7}, {1, 0}) == 0.0);
    CHECK(*auprc_gpu({0.3, 0.7}, {1, 0}) == 0.5);
    CHECK(*auroc_gpu({0.5, 0.5}, {1, 0}) == 0.5);
    CHECK(*auprc_gpu({0.5, 0.5}, {1, 0}) == 0.5);
    CHECK(*auroc_gpu({0.7, 0.3}, {1, 0}) == 1.0);
    // one class only, all unknown: undefined, never NaN
    CHECK_FALSE(auroc_gpu({0.1, 0.2, 0.2}, {1, 1, 1}).has_value());
    CHECK(*auprc_gpu({0.1, 0.2, 0.2}, {1, 1, 1}) == 1.0);
    CHECK_FALSE(auroc_gpu({0.1, 0.2}, {0, 0}).has_value());
    CHECK_FALSE(auprc_gpu({0.1, 0.2}, {0, 0}).has_value());
    CHECK_FALSE(auroc_gpu({0.1, 0.2}, {-1, -1}).has_value());
    CHECK_FALSE(auprc_gpu({0.1, 0.2}, {-1, -1}).has_value());
    // -0.0 and +0.0 are one tie: AUROC ½
    CHECK(*auroc_gpu({-0.0, 0.0}, {1, 0}) == 0.5);
    CHECK(*auroc_gpu({0.0, -0.0}, {1, 0}) == 0.5);
}

TEST_CASE("metrics gpu: AUROC and AUPRC equal the CPU on random data with ties and unknown labels",
          "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    struct Case {
        int64_t n;
        double prevalence, unknown, step;
    };
    // sizes around a tile (256) and a segment (4096); steps from no ties to a handful of distinct scores
    const std::vector<Case> cases = {{3, 0.5, 0.0, 0.0},     {17, 0.3, 0.2, 0.5},   {255, 0.1, 0.1, 0.0},
                                     {256, 0.5, 0.0, 1.0},   {257, 0.2, 0.0, 0.1},  {1000, 0.02, 0.3, 0.01},
                                     {4095, 0.4, 0.0, 0.05}, {4097, 0.4, 0.0, 2.0}, {20000, 0.1, 0.1, 0.001},
                                     {50000, 0.7, 0.0, 0.5}};
    uint64_t seed = 1;
    for (const Case& c : cases) {
        INFO("n " << c.n << ", prevalence " << c.prevalence << ", unknown " << c.unknown << ", step " << c.step);
        std::vector<double> s;
        std::vector<int> y;
        make_binary(c.n, c.prevalence, c.unknown, c.step, seed++, s, y);
        const BinaryValues g = auroc_auprc_gpu(s, y);
        check_same(g.auroc, auroc(s, y), 1e-12, "AUROC");
        check_same(g.auprc, auprc(s, y), 1e-12, "AUPRC");
    }
}

TEST_CASE("metrics gpu: AUROC and AUPRC over 1e6 scores with ties equal the CPU", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    std::vector<double> s;
    std::vector<int> y;
    make_binary(1'000'000, 0.05, 0.05, 1e-3, 77, s, y);
    const BinaryValues g = auroc_auprc_gpu(s, y);
    check_same(g.auroc, auroc(s, y), 1e-9, "AUROC");
    check_same(g.auprc, auprc(s, y), 1e-9, "AUPRC");
    REQUIRE(g.auroc.has_value());
    CHECK(std::fabs(*g.auroc - 0.5 * std::erfc(-0.5)) < 5e-3);  // Φ(1/√2) for two unit normals one apart (loose)
}

// ============================================================================================ batch and bootstrap

TEST_CASE("metrics gpu: batch values per resample equal RankedBinary under bootstrap_weights", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    const int64_t n = 12000;
    std::vector<double> s0, s1;
    std::vector<int> y0, y1;
    make_binary(n, 0.3, 0.1, 0.01, 5, s0, y0);
    make_binary(n, 0.05, 0.0, 0.0, 6, s1, y1);
    // a tie block longer than a tile and than a segment (4096 positions): 6000 cases at score 0
    for (int64_t i = 0; i < 6000; ++i) s1[i * 2] = 0.0;
    std::vector<int64_t> every_third, one_case = {17}, none;
    for (int64_t i = 0; i < n; i += 3) every_third.push_back(i);
    std::vector<int> unknown(n, -1);
    const std::vector<BinaryProblem> problems = {
        {&s0, &y0, nullptr, "full"},          {&s1, &y1, nullptr, "long ties"}, {&s0, &y0, &every_third, "subset"},
        {&s1, &y1, &one_case, "one case"},    {&s0, &unknown, nullptr, "all unknown"},
        {&s0, &y0, &none, "empty subset"}};
    RateProblem rate;
    for (int64_t i = 0; i < n; i += 2) {
        rate.cases.push_back(i);
        rate.numerator.push_back(s0[i] >= 0.5 ? 1 : 0);
    }
    RateProblem empty_rate;
    GpuBinaryBatch batch(n, problems, {rate, empty_rate});
    REQUIRE(batch.problems() == 6);
    REQUIRE(batch.rates() == 2);
    std::vector<RankedBinary> cpu;
    for (const auto& pr : problems) cpu.emplace_back(*pr.scores, *pr.labels, pr.subset, pr.what);
    for (size_t k = 0; k < cpu.size(); ++k) {
        CHECK(batch.size((int64_t)k) == cpu[k].size());
        CHECK(batch.positives((int64_t)k) == cpu[k].positives());
    }
    // point estimates
    const BatchValues point = batch.point();
    for (size_t k = 0; k < cpu.size(); ++k) {
        INFO("problem " << problems[k].what << " (point estimate)");
        check_same(point.auroc_at(0, (int64_t)k), cpu[k].auroc(), 1e-12, "AUROC");
        check_same(point.auprc_at(0, (int64_t)k), cpu[k].auprc(), 1e-12, "AUPRC");
    }
    // resamples 5 .. 11 of seed 31
    const uint64_t seed = 31;
    const BatchValues v = batch.resamples(seed, 5, 7);
    REQUIRE(v.resamples == 7);
    for (int64_t r = 0; r < 7; ++r) {
        const std::vector<double> w = bootstrap_weights(n, seed, 5 + r);
        for (size_t k = 0; k < cpu.size(); ++k) {
            INFO("problem " << problems[k].what << ", resample " << 5 + r);
            check_same(v.auroc_at(r, (int64_t)k), cpu[k].auroc(&w), 1e-12, "AUROC");
            check_same(v.auprc_at(r, (int64_t)k), cpu[k].auprc(&w), 1e-12, "AUPRC");
        }
        double num = 0, den = 0;
        for (size_t j = 0; j < rate.cases.size(); ++j) {
            den += w[rate.cases[j]];
            if (rate.numerator[j]) num += w[rate.cases[j]];
        }
        INFO("rate, resample " << 5 + r);
        REQUIRE(v.rate_at(r, 0).has_value());
        CHECK(*v.rate_at(r, 0) == num / den);
        CHECK_FALSE(v.rate_at(r, 1).has_value());
    }
    // the same resamples requested as part of a longer run give the same values
    const BatchValues longer = batch.resamples(seed, 0, 12);
    for (int64_t r = 0; r < 7; ++r)
        for (int64_t k = 0; k < 6; ++k) {
            CHECK(longer.auroc_at(5 + r, k) == v.auroc_at(r, k));
            CHECK(longer.auprc_at(5 + r, k) == v.auprc_at(r, k));
        }
}

// `cxr evaluate --device cuda`: the whole metrics JSON (labels, macro, fairness of two groupings, the comparison
// with a second model) equals the CPU run's, intervals included; only bootstrap.device differs.
TEST_CASE("metrics gpu: evaluate with the bootstrap on the GPU writes the CPU's JSON", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    const Predictions p = synthetic_predictions(900, 5);
    Predictions q = synthetic_predictions(900, 6);  // a second model on the same images
    q.truth = p.truth;
    EvaluateOptions o;
    o.bootstrap = 200;
    o.seed = 3;
    o.groupings = {{"sex"}, {"sex", "race"}};
    o.min_subgroup_size = 20;
    o.permutations = 50;
    const nlohmann::json cpu = evaluate(p, nullptr, &q, o);
    o.device = "cuda";
    const nlohmann::json gpu = evaluate(p, nullptr, &q, o);
    CHECK(gpu["bootstrap"]["device"] == "cuda");
    CHECK(cpu["bootstrap"]["device"] == "cpu");
    check_json_close(gpu, cpu, 1e-12, "metrics", "device");
}

TEST_CASE("metrics gpu: bootstrap intervals equal those of cxr evaluate on the CPU", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    Predictions p = synthetic_predictions(800, 3);
    // "Rare": exactly one positive, so about (1 − 1/800)^800 ≈ 37% of the resamples have none (AUROC undefined)
    p.truth[2].assign(800, 0);
    p.truth[2][5] = 1;
    // an undefined label: every known case negative
    p.label_names.push_back("Never");
    p.scores.push_back(p.scores[0]);
    p.truth.push_back(std::vector<int>(800, 0));
    EvaluateOptions o;
    o.bootstrap = 300;
    o.seed = 11;
    o.level = 0.9;
    const nlohmann::json cpu = evaluate(p, nullptr, nullptr, o);
    BootstrapOptions bo;
    bo.resamples = o.bootstrap;
    bo.seed = o.seed;
    bo.level = o.level;
    const LabelIntervals gpu = bootstrap_labels_gpu(p, {}, bo);
    REQUIRE(gpu.estimates.size() == p.label_names.size());
    for (size_t k = 0; k < p.label_names.size(); ++k) {
        const std::string& name = p.label_names[k];
        INFO("label " << name);
        const nlohmann::json& j = cpu["labels"][name];
        check_same(gpu.estimates[k].auroc, json_opt(j["auroc"]), 1e-12, "AUROC");
        check_same(gpu.estimates[k].auprc, json_opt(j["auprc"]), 1e-12, "AUPRC");
        check_interval_json(gpu.auroc_ci[k], j["auroc_ci"], 1e-12, "AUROC interval");
        check_interval_json(gpu.auprc_ci[k], j["auprc_ci"], 1e-12, "AUPRC interval");
        CHECK(gpu.auroc_ci[k].valid_resamples == j["auroc_ci_resamples"].get<int64_t>());
    }
    // the rare label has resamples without its positive: fewer valid resamples, still an interval
    CHECK(gpu.auroc_ci[2].valid_resamples < o.bootstrap);
    CHECK(gpu.auroc_ci[3].valid_resamples == o.bootstrap);
    CHECK(gpu.auroc_ci[4].valid_resamples == 0);
    check_same(gpu.macro_auroc, json_opt(cpu["macro"]["auroc"]), 1e-12, "macro AUROC");
    check_same(gpu.macro_auprc, json_opt(cpu["macro"]["auprc"]), 1e-12, "macro AUPRC");
    check_interval_json(gpu.macro_auroc_ci, cpu["macro"]["auroc_ci"], 1e-12, "macro AUROC interval");
    check_interval_json(gpu.macro_auprc_ci, cpu["macro"]["auprc_ci"], 1e-12, "macro AUPRC interval");
}

// ============================================================================================ fairness

TEST_CASE("metrics gpu: subgroup metrics, their resamples and intervals equal the CPU", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    const Predictions fixture = read_predictions_csv(std::string(CXR_SOURCE_DIR) +
                                                     "/tests/fixtures/metrics_predictions.csv");
    const Predictions synthetic = synthetic_predictions(1500, 21);
    struct Setup {
        const Predictions* p;
        std::vector<int64_t> labels;
        int64_t no_finding, min_size;
        std::vector<std::string> groupings;
    };
    const std::vector<Setup> setups = {{&fixture, {0, 1, 2}, 2, 15, {"sex", "race", "sex,race", "sex,age"}},
                                       {&synthetic, {0, 1, 2}, 3, 40, {"sex", "age", "sex,race", "race,age"}},
                                       {&synthetic, {1}, -1, 0, {"race"}}};
    for (const Setup& su : setups) {
        const Predictions& p = *su.p;
        FairnessOptions fo;
        fo.labels = su.labels;
        fo.no_finding = su.no_finding;
        fo.no_finding_threshold = 0.5;
        fo.min_size = su.min_size;
        for (const std::string& spec : su.groupings) {
            INFO("n " << p.size() << ", grouping " << spec << ", No Finding " << su.no_finding);
            const Subgroups groups = assign_subgroups(p, parse_grouping(spec));
            const FairnessEvaluator ev(p, groups, fo);
            {
                INFO("point estimate");
                check_fairness(fairness_gpu(p, groups, fo), ev.evaluate(), 1e-12);
            }
            const uint64_t seed = 4;
            const std::vector<FairnessResult> rs = fairness_resamples_gpu(p, groups, fo, seed, 3, 6);
            REQUIRE(rs.size() == 6);
            for (int64_t r = 0; r < 6; ++r) {
                INFO("resample " << 3 + r);
                const std::vector<double> w = bootstrap_weights(p.size(), seed, 3 + r);
                check_fairness(rs[r], ev.evaluate(&w), 1e-12);
            }
            // intervals: the slots of evaluate() [auroc_gap, underdiagnosis_gap, subgroup aurocs]
            BootstrapOptions bo;
            bo.resamples = 120;
            bo.seed = 8;
            bo.level = 0.95;
            const size_t S = groups.names.size();
            const auto cpu_ci = bootstrap(
                p.size(), 2 + (int64_t)S,
                [&](const std::vector<double>& w) {
                    const FairnessResult fr = ev.evaluate(&w);
                    std::vector<std::optional<double>> out = {fr.auroc_gap, fr.underdiagnosis_gap};
                    for (const auto& s : fr.subgroups) out.push_back(s.auroc);
                    return out;
                },
                bo);
            const FairnessIntervals gi = bootstrap_fairness_gpu(p, groups, fo, bo);
            check_fairness(gi.estimate, ev.evaluate(), 1e-12);
            check_interval(gi.auroc_gap_ci, cpu_ci[0], 1e-12, "AUROC gap interval");
            check_interval(gi.underdiagnosis_gap_ci, cpu_ci[1], 0.0, "underdiagnosis gap interval");
            REQUIRE(gi.subgroup_auroc_ci.size() == S);
            for (size_t s = 0; s < S; ++s) check_interval(gi.subgroup_auroc_ci[s], cpu_ci[2 + s], 1e-12, "subgroup AUROC interval");
        }
    }
}

// ============================================================================================ image metrics

TEST_CASE("metrics gpu: MS-SSIM on the GPU matches pytorch_msssim and the CPU", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    cxr::testing::Fixtures fx("ssim");
    SsimOptions o;
    o.data_range = 255.0;
    for (const char* name : {"gray176", "odd165x171"}) {
        INFO("case " << name);
        const std::string n = name;
        const Tensor x = fx.get(n + ".x"), y = fx.get(n + ".y");  // u8 images
        // f64
        const Tensor g64 = ms_ssim_gpu(x.to(DType::f64), y.to(DType::f64), o);
        CHECK(g64.is_cuda());
        CXR_EXPECT_CLOSE(g64.to(cxr::tensor::Device::cpu()), fx.get(n + ".ms_ssim"), 1e-10, 0.0);
        CXR_EXPECT_CLOSE(g64.to(cxr::tensor::Device::cpu()), ms_ssim(x.to(DType::f64), y.to(DType::f64), o), 1e-10,
                         0.0);
        // f32 (u8 input is computed in f32): the 1e-5 against the CPU's f32 and the f64 reference
        const Tensor g32 = ms_ssim_gpu(x, y, o);
        CHECK(g32.dtype() == DType::f32);
        CXR_EXPECT_CLOSE(g32.to(cxr::tensor::Device::cpu()), ms_ssim(x, y, o), 1e-5, 0.0);
        CXR_EXPECT_CLOSE(g32.to(cxr::tensor::Device::cpu()), fx.get(n + ".ms_ssim"), 1e-5, 0.0);
    }
    // mean pairwise MS-SSIM of 4 images (6 pairs in batches of 4) against the fixture
    Tensor images = cxr::tensor::cat({fx.get("gray176.x"), fx.get("gray176.y")}, 0).to(DType::f64);  // [4, 1, 176, 176]
    const double ref = fx.get("diversity.mean_pairwise_ms_ssim").item();
    CHECK(std::fabs(mean_pairwise_ms_ssim_gpu(images, o, 4) - ref) < 1e-10);
}

TEST_CASE("metrics gpu: Fréchet distance with GPU feature statistics equals the CPU", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    // two feature sets [N, D] of different means and covariances; one with fewer samples than dimensions
    const Tensor a = cxr::testing::random_input({300, 64}, 101, -1.0, 1.0);
    const Tensor b = cxr::testing::random_input({250, 64}, 102, -0.5, 1.5) * 1.3;
    const Tensor c = cxr::testing::random_input({40, 64}, 103, 0.0, 2.0);
    const FeatureStats ga = feature_statistics_gpu(a), ca = feature_statistics(a);
    CHECK(ga.mean.is_cuda());
    CHECK(ga.count == 300);
    CXR_EXPECT_CLOSE(ga.mean.to(cxr::tensor::Device::cpu()), ca.mean, 1e-12, 0.0);
    CXR_EXPECT_CLOSE(ga.cov.to(cxr::tensor::Device::cpu()), ca.cov, 1e-10, 1e-10);
    for (const auto& pair : {std::make_pair(a, b), std::make_pair(a, c), std::make_pair(b, b)}) {
        const double cpu = frechet_distance(pair.first, pair.second);
        const double gpu = frechet_distance_gpu(pair.first, pair.second);
        INFO("CPU " << cpu << ", GPU " << gpu);
        CHECK(std::fabs(gpu - cpu) <= 1e-6 * std::max(1.0, std::fabs(cpu)));
    }
    // f32 features are read in f64 as on the CPU
    const double cpu32 = frechet_distance(a.to(DType::f32), b.to(DType::f32));
    CHECK(std::fabs(frechet_distance_gpu(a.to(DType::f32), b.to(DType::f32)) - cpu32) <= 1e-6 * std::fabs(cpu32));
}

// ============================================================================================ errors

TEST_CASE("metrics gpu: bad inputs are rejected as on the CPU", "[gpu][metrics]") {
    CXR_SKIP_WITHOUT_GPU();
    CHECK_THROWS_AS(auroc_gpu({0.1, 0.2}, {1, 2}), cxr::Error);                    // label 2
    CHECK_THROWS_AS(auroc_gpu({0.1, 0.2}, {1}), cxr::Error);                       // sizes differ
    CHECK_THROWS_AS(auroc_gpu({0.1, std::nan("")}, {1, 0}), cxr::Error);           // NaN score on a known case
    CHECK(*auroc_gpu({0.1, std::nan(""), 0.3}, {0, -1, 1}) == 1.0);                 // ... allowed on an unknown one
    const std::vector<double> s = {0.1, 0.2, 0.3};
    const std::vector<int> y = {0, 1, 0};
    const std::vector<int64_t> bad_subset = {0, 3};
    CHECK_THROWS_AS(GpuBinaryBatch(3, {BinaryProblem{&s, &y, &bad_subset, "bad subset"}}), cxr::Error);
    CHECK_THROWS_AS(GpuBinaryBatch(4, {BinaryProblem{&s, &y, nullptr, "wrong n"}}), cxr::Error);
    RateProblem bad_rate;
    bad_rate.cases = {5};
    bad_rate.numerator = {1};
    CHECK_THROWS_AS(GpuBinaryBatch(3, {}, {bad_rate}), cxr::Error);
    GpuBinaryBatch ok(3, {BinaryProblem{&s, &y, nullptr, "ok"}});
    CHECK_THROWS_AS(ok.resamples(0, 0, 0), cxr::Error);
    CHECK_THROWS_AS(auroc_gpu(s, y, 1000), cxr::Error);  // no such device
}

TEST_CASE("metrics gpu: without CUDA or a device the GPU functions say so", "[cpu][metrics]") {
    const bool compiled = cxr::tensor::backend_compiled(cxr::tensor::DeviceType::CUDA);
    const bool present = cxr::tensor::device_available(cxr::tensor::DeviceType::CUDA);
    CHECK(metrics_gpu_available() == (compiled && present));
    if (metrics_gpu_available()) {
        WARN("a CUDA device is present: the GPU paths are tested by the [gpu][metrics] tests");
        return;
    }
    const std::string expected = compiled ? "no CUDA device" : "built without CUDA";
    const std::vector<double> s = {0.1, 0.2};
    const std::vector<int> y = {0, 1};
    auto check_message = [&](const std::function<void()>& call, const char* what) {
        INFO(what);
        try {
            call();
            FAIL("no error was thrown");
        } catch (const cxr::Error& e) {
            INFO("message: " << e.what());
            CHECK(std::string(e.what()).find(expected) != std::string::npos);
        }
    };
    check_message([&] { auroc_gpu(s, y); }, "auroc_gpu");
    check_message([&] { auprc_gpu(s, y); }, "auprc_gpu");
    check_message([&] { GpuBinaryBatch(2, {BinaryProblem{&s, &y}}); }, "GpuBinaryBatch");
    Predictions p;
    p.image_ids = {"a", "b"};
    p.label_names = {"L"};
    p.scores = {s};
    p.truth = {y};
    check_message([&] { bootstrap_labels_gpu(p, {}, BootstrapOptions{}); }, "bootstrap_labels_gpu");
    check_message([&] { fairness_gpu(p, Subgroups{}, FairnessOptions{}); }, "fairness_gpu");
    const Tensor img = cxr::tensor::zeros({1, 1, 176, 176});
    check_message([&] { ms_ssim_gpu(img, img); }, "ms_ssim_gpu");
    const Tensor f = cxr::tensor::zeros({4, 3});
    check_message([&] { frechet_distance_gpu(f, f); }, "frechet_distance_gpu");
}
