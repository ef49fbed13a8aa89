// The core of `cxr evaluate` (see evaluate.h): point estimates, one shared bootstrap pass for every interval,
// DeLong and permutation tests against a second model, and the JSON layout documented in metrics/README.md.
#include "metrics/evaluate.h"

#include <functional>
#include <map>
#include <optional>

#include "metrics/classification.h"
#include "metrics/fairness.h"
#include "metrics/gpu.h"
#include "metrics/statistics.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace cxr::metrics {

namespace {

using nlohmann::json;

json value_or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json interval_json(const ConfidenceInterval& ci) {
    if (!ci.lo || !ci.hi) return json(nullptr);
    return json::array({*ci.lo, *ci.hi});
}

// Scores of `other` reordered to the rows of `test` by image_id, for the labels `labels` of test.
std::vector<std::vector<double>> aligned_scores(const Predictions& test, const Predictions& other,
                                                const std::vector<int64_t>& labels) {
    std::map<std::string, int64_t> row;
    for (int64_t i = 0; i < other.size(); ++i) row[other.image_ids[i]] = i;
    std::vector<std::vector<double>> out(test.label_names.size());
    for (int64_t l : labels) {
        const int64_t ol = other.label_index(test.label_names[l]);
        CXR_CHECK(ol >= 0, "--compare: the second predictions file has no column '", test.label_names[l], ":score'");
        out[l].resize(test.size());
        for (int64_t i = 0; i < test.size(); ++i) {
            auto it = row.find(test.image_ids[i]);
            CXR_CHECK(it != row.end(), "--compare: image_id '", test.image_ids[i],
                      "' is missing from the second predictions file");
            out[l][i] = other.scores[ol][it->second];
        }
    }
    return out;
}

}  // namespace

json evaluate(const Predictions& test, const Predictions* validation, const Predictions* compare,
              const EvaluateOptions& opt) {
    CXR_CHECK(test.size() > 0, "evaluate: the predictions have no rows");
    const tensor::Device device = tensor::parse_device(opt.device);  // checked before any work
    // ---- the label set ----
    std::vector<int64_t> labels;
    if (opt.labels.empty()) {
        for (size_t l = 0; l < test.label_names.size(); ++l) labels.push_back((int64_t)l);
    } else {
        for (const auto& name : opt.labels) {
            const int64_t l = test.label_index(name);
            CXR_CHECK(l >= 0, "evaluate: label '", name, "' is not in the predictions (columns '", name, "' and '",
                      name, ":score')");
            labels.push_back(l);
        }
    }
    const int64_t L = (int64_t)labels.size();
    json out;
    json notes = json::array();

    // ---- per-label estimates ----
    std::vector<RankedBinary> ranked;
    for (int64_t l : labels)
        ranked.emplace_back(test.scores[l], test.truth[l], nullptr, "label " + test.label_names[l]);
    std::vector<std::optional<double>> auroc(L), auprc(L);
    for (int64_t k = 0; k < L; ++k) {
        auroc[k] = ranked[k].auroc();
        auprc[k] = ranked[k].auprc();
        const std::string& name = test.label_names[labels[k]];
        json& j = out["labels"][name];
        j["n"] = ranked[k].size();
        j["positives"] = ranked[k].positives();
        j["negatives"] = ranked[k].negatives();
        j["auroc"] = value_or_null(auroc[k]);
        j["auprc"] = value_or_null(auprc[k]);
        if (!auroc[k])
            notes.push_back("label " + name + ": AUROC undefined (needs known positive and negative cases)");
    }
    int64_t macro_count = 0;
    out["macro"]["auroc"] = value_or_null(mean_defined(auroc, &macro_count));
    out["macro"]["auprc"] = value_or_null(mean_defined(auprc));
    out["macro"]["labels_defined"] = macro_count;
    out["macro"]["labels"] = L;

    // ---- thresholds from the validation set ----
    double no_finding_threshold = opt.no_finding_threshold;
    std::string no_finding_threshold_source = "default";
    const int64_t no_finding = test.label_index(opt.no_finding_label);
    if (validation) {
        for (int64_t l : labels) {
            const std::string& name = test.label_names[l];
            const int64_t vl = validation->label_index(name);
            CXR_CHECK(vl >= 0, "--validation: the validation file has no label '", name, "'");
            json& j = out["labels"][name];
            int64_t vpos = 0;
            for (int t : validation->truth[vl]) vpos += t == 1;
            if (vpos == 0) {
                j["threshold"] = nullptr;
                notes.push_back("label " + name + ": no positive validation case, no threshold");
                continue;
            }
            const ThresholdChoice t = best_f1_threshold(validation->scores[vl], validation->truth[vl]);
            j["threshold"] = t.threshold;
            j["validation_f1"] = t.f1;
            const BinaryMetrics m = binary_metrics(confusion_at(test.scores[l], test.truth[l], t.threshold));
            j["binarized"] = {{"accuracy", value_or_null(m.accuracy)}, {"precision", value_or_null(m.precision)},
                              {"recall", value_or_null(m.recall)},     {"f1", value_or_null(m.f1)},
                              {"fpr", value_or_null(m.fpr)},           {"fnr", value_or_null(m.fnr)}};
        }
        if (no_finding >= 0) {
            const int64_t vl = validation->label_index(opt.no_finding_label);
            if (vl >= 0) {
                int64_t vpos = 0;
                for (int t : validation->truth[vl]) vpos += t == 1;
                if (vpos > 0) {
                    no_finding_threshold = best_f1_threshold(validation->scores[vl], validation->truth[vl]).threshold;
                    no_finding_threshold_source = "validation F1";
                }
            }
        }
    }

    // ---- fairness ----
    std::vector<std::string> grouping_names;
    std::vector<FairnessEvaluator> fairness;
    FairnessOptions fo;
    fo.labels = labels;
    fo.no_finding = no_finding;
    fo.no_finding_threshold = no_finding_threshold;
    fo.min_size = opt.min_subgroup_size;
    for (const auto& attrs : opt.groupings) {
        grouping_names.push_back(grouping_name(attrs));
        fairness.emplace_back(test, assign_subgroups(test, attrs), fo);
    }
    if (!opt.groupings.empty() && no_finding < 0)
        notes.push_back("no '" + opt.no_finding_label + "' label: underdiagnosis rates are undefined");
    std::vector<FairnessResult> fair_est;
    for (size_t g = 0; g < fairness.size(); ++g) {
        const FairnessResult r = fairness[g].evaluate();
        fair_est.push_back(r);
        json& j = out["fairness"][grouping_names[g]];
        for (const auto& s : r.subgroups)
            j["subgroups"][s.name] = {{"n", s.n},
                                      {"auroc", value_or_null(s.auroc)},
                                      {"fpr_no_finding", value_or_null(s.fpr_no_finding)},
                                      {"in_gaps", s.in_gaps}};
        if (r.subgroups.empty()) j["subgroups"] = json::object();
        j["unassigned"] = fairness[g].subgroups().unassigned;
        j["min_size"] = opt.min_subgroup_size;
        j["no_finding_threshold"] = no_finding_threshold;
        j["no_finding_threshold_source"] = no_finding_threshold_source;
        j["auroc_gap"] = value_or_null(r.auroc_gap);
        j["underdiagnosis_gap"] = value_or_null(r.underdiagnosis_gap);
        if (r.auroc_gap) {
            j["auroc_best"] = r.auroc_best;
            j["auroc_worst"] = r.auroc_worst;
        }
        if (r.underdiagnosis_gap) {
            j["underdiagnosis_max"] = r.underdiagnosis_max;
            j["underdiagnosis_min"] = r.underdiagnosis_min;
        }
    }

    // ---- comparison with a second model ----
    std::vector<std::vector<double>> scores_b;
    std::vector<RankedBinary> ranked_b;
    if (compare) {
        scores_b = aligned_scores(test, *compare, labels);
        {
            // The test file's truth is used; say so when the second file disagrees (a mismatched file?).
            std::map<std::string, int64_t> row;
            for (int64_t i = 0; i < compare->size(); ++i) row[compare->image_ids[i]] = i;
            int64_t differ = 0;
            for (int64_t l : labels) {
                const int64_t ol = compare->label_index(test.label_names[l]);
                for (int64_t i = 0; i < test.size(); ++i) {
                    const int a = test.truth[l][i], b = compare->truth[ol][row[test.image_ids[i]]];
                    if (a != -1 && b != -1 && a != b) ++differ;
                }
            }
            if (differ > 0)
                notes.push_back("--compare: " + std::to_string(differ) +
                                " known truth values differ from the predictions file; its truth was used");
        }
        for (int64_t l : labels)
            ranked_b.emplace_back(scores_b[l], test.truth[l], nullptr, "compare " + test.label_names[l]);
        std::vector<std::optional<double>> auroc_b(L), auprc_b(L);
        for (int64_t k = 0; k < L; ++k) {
            const int64_t l = labels[k];
            const std::string& name = test.label_names[l];
            auroc_b[k] = ranked_b[k].auroc();
            auprc_b[k] = ranked_b[k].auprc();
            json& d = out["delong"][name];
            if (ranked[k].positives() >= 2 && ranked[k].negatives() >= 2) {
                const DelongResult r = delong_test(test.scores[l], scores_b[l], test.truth[l]);
                d = {{"auroc_a", r.auroc_a}, {"auroc_b", r.auroc_b}, {"auroc_difference", r.difference},
                     {"z", r.z},         {"p_value", r.p_value}};
            } else {
                d = {{"p_value", nullptr}, {"auroc_difference", nullptr}};
                notes.push_back("label " + name + ": DeLong test needs two known positives and two negatives");
            }
            json& pm = out["permutation"][name];
            if (ranked[k].positives() >= 1) {
                const PermutationResult r =
                    permutation_test_auprc(test.scores[l], scores_b[l], test.truth[l], {opt.permutations, opt.seed});
                pm = {{"auprc_a", r.auprc_a},           {"auprc_b", r.auprc_b},
                      {"auprc_difference", r.difference}, {"p_value", r.p_value},
                      {"permutations", r.permutations},   {"exact", r.exact}};
            } else {
                pm = {{"p_value", nullptr}, {"auprc_difference", nullptr}};
            }
        }
        const auto ma = mean_defined(auroc), mb = mean_defined(auroc_b);
        out["delong"]["macro"]["auroc_a"] = value_or_null(ma);
        out["delong"]["macro"]["auroc_b"] = value_or_null(mb);
        out["delong"]["macro"]["auroc_difference"] = (ma && mb) ? json(*ma - *mb) : json(nullptr);
    }

    // ---- one bootstrap pass for every interval ----
    if (opt.bootstrap > 0) {
        // Slot layout: [auroc L][auprc L][macro auroc, macro auprc]
        //              per grouping: [auroc_gap, underdiagnosis_gap, subgroup aurocs S_g]
        //              with compare: [auroc diff L][macro auroc diff]
        std::vector<int64_t> group_offset;
        int64_t k_total = 2 * L + 2;
        for (size_t g = 0; g < fairness.size(); ++g) {
            group_offset.push_back(k_total);
            k_total += 2 + (int64_t)fairness[g].subgroups().names.size();
        }
        const int64_t compare_offset = k_total;
        if (compare) k_total += L + 1;
        // The slots of one resample from its per-label AUROC/AUPRC (a, b), the second model's AUROC (ab) and the
        // fairness result of each grouping — the same assembly for the CPU and the GPU evaluations.
        auto slots = [&](const std::vector<std::optional<double>>& a, const std::vector<std::optional<double>>& b,
                         const std::vector<std::optional<double>>& ab, const std::vector<FairnessResult>& fr) {
            std::vector<std::optional<double>> s(k_total);
            for (int64_t k = 0; k < L; ++k) {
                s[k] = a[k];
                s[L + k] = b[k];
            }
            s[2 * L] = mean_defined(a);
            s[2 * L + 1] = mean_defined(b);
            for (size_t g = 0; g < fr.size(); ++g) {
                s[group_offset[g]] = fr[g].auroc_gap;
                s[group_offset[g] + 1] = fr[g].underdiagnosis_gap;
                for (size_t t = 0; t < fr[g].subgroups.size(); ++t) s[group_offset[g] + 2 + t] = fr[g].subgroups[t].auroc;
            }
            if (compare) {
                for (int64_t k = 0; k < L; ++k)
                    if (a[k] && ab[k]) s[compare_offset + k] = *a[k] - *ab[k];
                const auto ma = mean_defined(a), mb = mean_defined(ab);
                if (ma && mb) s[compare_offset + L] = *ma - *mb;
            }
            return s;
        };
        BootstrapOptions bo;
        bo.resamples = opt.bootstrap;
        bo.seed = opt.seed;
        bo.level = opt.level;
        std::vector<ConfidenceInterval> ci;
        if (device.is_cuda()) {
            // All resamples on the GPU (metrics/gpu.h): the same resamples and values as the CPU path below.
            std::vector<BinaryProblem> problems;
            for (int64_t k = 0; k < L; ++k) problems.push_back({&test.scores[labels[k]], &test.truth[labels[k]]});
            if (compare)
                for (int64_t k = 0; k < L; ++k) problems.push_back({&scores_b[labels[k]], &test.truth[labels[k]]});
            const GpuBinaryBatch batch(test.size(), problems, {}, device.index);
            const BatchValues v = batch.resamples(opt.seed, 0, opt.bootstrap);
            std::vector<std::vector<FairnessResult>> fr_g;  // [grouping][resample]
            for (const auto& f : fairness)
                fr_g.push_back(fairness_resamples_gpu(test, f.subgroups(), fo, opt.seed, 0, opt.bootstrap,
                                                      device.index));
            std::vector<std::vector<std::optional<double>>> values((size_t)opt.bootstrap);
            for (int64_t r = 0; r < opt.bootstrap; ++r) {
                std::vector<std::optional<double>> a(L), b(L), ab(L);
                for (int64_t k = 0; k < L; ++k) {
                    a[k] = v.auroc_at(r, k);
                    b[k] = v.auprc_at(r, k);
                    if (compare) ab[k] = v.auroc_at(r, L + k);
                }
                std::vector<FairnessResult> fr;
                for (const auto& per_resample : fr_g) fr.push_back(per_resample[(size_t)r]);
                values[(size_t)r] = slots(a, b, ab, fr);
            }
            ci = percentile_intervals(values, k_total, opt.level);
        } else {
            auto statistic = [&](const std::vector<double>& w) {
                std::vector<std::optional<double>> a(L), b(L), ab(L);
                for (int64_t k = 0; k < L; ++k) {
                    a[k] = ranked[k].auroc(&w);
                    b[k] = ranked[k].auprc(&w);
                    if (compare) ab[k] = ranked_b[k].auroc(&w);
                }
                std::vector<FairnessResult> fr;
                for (const auto& f : fairness) fr.push_back(f.evaluate(&w));
                return slots(a, b, ab, fr);
            };
            ci = bootstrap(test.size(), k_total, statistic, bo);
        }
        for (int64_t k = 0; k < L; ++k) {
            json& j = out["labels"][test.label_names[labels[k]]];
            j["auroc_ci"] = interval_json(ci[k]);
            j["auprc_ci"] = interval_json(ci[L + k]);
            j["auroc_ci_resamples"] = ci[k].valid_resamples;
        }
        out["macro"]["auroc_ci"] = interval_json(ci[2 * L]);
        out["macro"]["auprc_ci"] = interval_json(ci[2 * L + 1]);
        for (size_t g = 0; g < fairness.size(); ++g) {
            json& j = out["fairness"][grouping_names[g]];
            j["auroc_gap_ci"] = interval_json(ci[group_offset[g]]);
            j["underdiagnosis_gap_ci"] = interval_json(ci[group_offset[g] + 1]);
            const auto& names = fairness[g].subgroups().names;
            for (size_t t = 0; t < names.size(); ++t)
                j["subgroups"][names[t]]["auroc_ci"] = interval_json(ci[group_offset[g] + 2 + t]);
        }
        if (compare) {
            for (int64_t k = 0; k < L; ++k)
                out["delong"][test.label_names[labels[k]]]["auroc_difference_ci"] =
                    interval_json(ci[compare_offset + k]);
            out["delong"]["macro"]["auroc_difference_ci"] = interval_json(ci[compare_offset + L]);
        }
    } else {
        out["macro"]["auroc_ci"] = nullptr;
        for (int64_t k = 0; k < L; ++k) out["labels"][test.label_names[labels[k]]]["auroc_ci"] = nullptr;
        for (const auto& g : grouping_names) {
            out["fairness"][g]["auroc_gap_ci"] = nullptr;
            out["fairness"][g]["underdiagnosis_gap_ci"] = nullptr;
        }
    }
    out["bootstrap"] = {{"resamples", opt.bootstrap}, {"seed", opt.seed}, {"level", opt.level},
                        {"method", "percentile"}, {"device", opt.bootstrap > 0 ? opt.device : std::string("cpu")}};
    out["n"] = test.size();
    out["notes"] = notes;
    return out;
}

}  // namespace cxr::metrics
