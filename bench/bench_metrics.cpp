// Benchmark of the classification metrics on the CPU and, when a CUDA device is present, on the GPU (issue 6's
// sizes): AUROC and AUPRC over 10M scores, and `cxr evaluate`'s bootstrap (1,000 resamples) of a 100k-image ×
// 14-label prediction set. Values are checked before timing: the AUROC of scores = label + noise against the closed
// form for two normals, and the bootstrap CI contains the point estimate; the GPU's values (metrics/gpu.h) against
// the CPU's (AUROC and the bootstrap intervals to 1e-9, AUPRC to 1e-9), after one untimed warm-up call that also
// creates the CUDA context. GPU timings include the host-to-device copies and the sorts. Without a device the GPU
// part prints "GPU: none" and the JSON's "gpu" is null. bench/compare_metrics_sklearn.py times scikit-learn on the
// same data sizes.
//   usage: bench_metrics [--n 10000000] [--rows 100000] [--labels 14] [--bootstrap 1000] [--json FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/classification.h"
#include "metrics/evaluate.h"
#include "metrics/gpu.h"
#include "metrics/predictions.h"
#include "tensor/backend.h"
#include "tensor/generator.h"

using namespace cxr;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Scores = y + N(0, 1) with y ~ Bernoulli(prevalence): AUROC = Φ(1/√2) ≈ 0.7602 in the limit.
void make_data(int64_t n, double prevalence, uint64_t seed, std::vector<double>& scores, std::vector<int>& labels) {
    std::vector<double> u(n), z(n);
    tensor::fill_uniform_f64(u.data(), n, seed, 0, 0.0, 1.0);
    tensor::fill_normal_f64(z.data(), n, seed + 1, 0, 0.0, 1.0);
    scores.resize(n);
    labels.resize(n);
    for (int64_t i = 0; i < n; ++i) {
        labels[i] = u[i] < prevalence ? 1 : 0;
        scores[i] = labels[i] + z[i];
    }
}

}  // namespace

int main(int argc, char** argv) {
    int64_t n = 10'000'000, rows = 100'000, labels_n = 14, bootstrap = 1000;
    std::string json_path;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--n") n = std::atoll(argv[i + 1]);
        else if (a == "--rows") rows = std::atoll(argv[i + 1]);
        else if (a == "--labels") labels_n = std::atoll(argv[i + 1]);
        else if (a == "--bootstrap") bootstrap = std::atoll(argv[i + 1]);
        else if (a == "--json") json_path = argv[i + 1];
        else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    nlohmann::json out;
    // ---- AUROC / AUPRC over n scores ----
    std::vector<double> s;
    std::vector<int> y;
    make_data(n, 0.1, 1, s, y);
    auto t0 = std::chrono::steady_clock::now();
    const double auc = *metrics::auroc(s, y);
    const double t_auroc = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const double ap = *metrics::auprc(s, y);
    const double t_auprc = seconds_since(t0);
    const double expected = 0.5 * std::erfc(-(1.0 / std::sqrt(2.0)) / std::sqrt(2.0));  // Φ(1/√2)
    if (std::fabs(auc - expected) > 5e-3) {
        std::fprintf(stderr, "AUROC %.6f differs from the closed form %.6f\n", auc, expected);
        return 1;
    }
    std::printf("AUROC over %lld scores: %.4f (closed form %.4f) in %.3f s; AUPRC %.4f in %.3f s\n", (long long)n, auc,
                expected, t_auroc, ap, t_auprc);
    out["auroc"] = {{"n", n}, {"value", auc}, {"seconds", t_auroc}};
    out["auprc"] = {{"n", n}, {"value", ap}, {"seconds", t_auprc}};

    // ---- bootstrap of a rows × labels prediction set ----
    metrics::Predictions p;
    for (int64_t r = 0; r < rows; ++r) p.image_ids.push_back("img" + std::to_string(r));
    for (int64_t l = 0; l < labels_n; ++l) {
        std::vector<double> ls;
        std::vector<int> ly;
        make_data(rows, 0.05 + 0.02 * (double)l, 100 + (uint64_t)l, ls, ly);
        p.label_names.push_back("L" + std::to_string(l));
        p.scores.push_back(ls);
        p.truth.push_back(ly);
    }
    metrics::EvaluateOptions o;
    o.bootstrap = bootstrap;
    o.seed = 0;
    t0 = std::chrono::steady_clock::now();
    const nlohmann::json m = metrics::evaluate(p, nullptr, nullptr, o);
    const double t_boot = seconds_since(t0);
    const double macro = m["macro"]["auroc"];
    const auto ci = m["macro"]["auroc_ci"];
    if (!(ci[0].get<double>() <= macro && macro <= ci[1].get<double>())) {
        std::fprintf(stderr, "bootstrap CI does not contain the estimate\n");
        return 1;
    }
    std::printf("evaluate with %lld bootstrap resamples of %lld rows x %lld labels (AUROC + AUPRC per label and "
                "macro): %.2f s; macro AUROC %.4f [%.4f, %.4f]\n",
                (long long)bootstrap, (long long)rows, (long long)labels_n, t_boot, macro, ci[0].get<double>(),
                ci[1].get<double>());
    out["bootstrap"] = {{"rows", rows}, {"labels", labels_n}, {"resamples", bootstrap}, {"seconds", t_boot},
                        {"macro_auroc", macro}, {"macro_auroc_ci", ci}};

    // ---- the same on the GPU ----
    if (!metrics::metrics_gpu_available()) {
        std::printf("GPU: none (%s)\n", tensor::backend_compiled(tensor::DeviceType::CUDA)
                                            ? "no CUDA device on this machine"
                                            : "this build has no CUDA backend");
        out["gpu"] = nullptr;
    } else {
        const int devices = tensor::backend_for(tensor::DeviceType::CUDA).device_count();
        std::printf("GPU: cuda:0 (%d device(s))\n", devices);
        nlohmann::json g;
        g["device"] = "cuda:0";
        // warm-up: the CUDA context, the allocator's first blocks, CUB's kernels
        {
            std::vector<double> ws;
            std::vector<int> wy;
            make_data(4096, 0.5, 9, ws, wy);
            (void)metrics::auroc_auprc_gpu(ws, wy);
        }
        auto fail = [](const char* what, double gpu, double cpu) {
            std::fprintf(stderr, "GPU %s %.17g differs from the CPU's %.17g\n", what, gpu, cpu);
            return 1;
        };
        // validation (untimed), then timings
        const metrics::BinaryValues both = metrics::auroc_auprc_gpu(s, y);
        if (!both.auroc || std::fabs(*both.auroc - auc) > 1e-9) return fail("AUROC", both.auroc.value_or(-1), auc);
        if (!both.auprc || std::fabs(*both.auprc - ap) > 1e-9) return fail("AUPRC", both.auprc.value_or(-1), ap);
        t0 = std::chrono::steady_clock::now();
        const double g_auc = *metrics::auroc_gpu(s, y);
        const double tg_auroc = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        const double g_ap = *metrics::auprc_gpu(s, y);
        const double tg_auprc = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        (void)metrics::auroc_auprc_gpu(s, y);
        const double tg_both = seconds_since(t0);
        std::printf("GPU AUROC over %lld scores: %.4f in %.4f s; AUPRC %.4f in %.4f s; both from one sort %.4f s "
                    "(CPU %.3f s + %.3f s)\n",
                    (long long)n, g_auc, tg_auroc, g_ap, tg_auprc, tg_both, t_auroc, t_auprc);
        g["auroc"] = {{"n", n}, {"value", g_auc}, {"seconds", tg_auroc}};
        g["auprc"] = {{"n", n}, {"value", g_ap}, {"seconds", tg_auprc}};
        g["auroc_auprc"] = {{"n", n}, {"seconds", tg_both}};

        metrics::BootstrapOptions bo;
        bo.resamples = o.bootstrap;
        bo.seed = o.seed;
        bo.level = o.level;
        const metrics::LabelIntervals check = metrics::bootstrap_labels_gpu(p, {}, bo);  // validation (untimed)
        const double cpu_lo = ci[0].get<double>(), cpu_hi = ci[1].get<double>();
        if (!check.macro_auroc || std::fabs(*check.macro_auroc - macro) > 1e-9)
            return fail("macro AUROC", check.macro_auroc.value_or(-1), macro);
        if (!check.macro_auroc_ci.lo || std::fabs(*check.macro_auroc_ci.lo - cpu_lo) > 1e-9)
            return fail("macro AUROC CI low end", check.macro_auroc_ci.lo.value_or(-1), cpu_lo);
        if (!check.macro_auroc_ci.hi || std::fabs(*check.macro_auroc_ci.hi - cpu_hi) > 1e-9)
            return fail("macro AUROC CI high end", check.macro_auroc_ci.hi.value_or(-1), cpu_hi);
        t0 = std::chrono::steady_clock::now();
        const metrics::LabelIntervals li = metrics::bootstrap_labels_gpu(p, {}, bo);
        const double tg_boot = seconds_since(t0);
        std::printf("GPU bootstrap, %lld resamples of %lld rows x %lld labels (AUROC + AUPRC per label and macro, "
                    "CIs): %.3f s (CPU %.2f s); macro AUROC %.4f [%.4f, %.4f] (equal to the CPU's)\n",
                    (long long)bootstrap, (long long)rows, (long long)labels_n, tg_boot, t_boot, *li.macro_auroc,
                    *li.macro_auroc_ci.lo, *li.macro_auroc_ci.hi);
        g["bootstrap"] = {{"rows", rows},
                          {"labels", labels_n},
                          {"resamples", bootstrap},
                          {"seconds", tg_boot},
                          {"macro_auroc", *li.macro_auroc},
                          {"macro_auroc_ci", {*li.macro_auroc_ci.lo, *li.macro_auroc_ci.hi}}};
        out["gpu"] = g;
    }
    if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
    return 0;
}
