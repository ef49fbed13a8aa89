// Subgroup fairness metrics: subgroup assignment, per-subgroup macro AUROC, underdiagnosis rate (FPR of the
// binarised "No Finding" prediction) and the gaps between subgroups. Definitions and references in fairness.h.
#include "metrics/fairness.h"

#include <map>
#include <sstream>

#include "tensor/error.h"

namespace cxr::metrics {

std::vector<std::string> parse_grouping(const std::string& spec) {
    std::vector<std::string> out;
    std::stringstream ss(spec);
    std::string a;
    while (std::getline(ss, a, ',')) {
        CXR_CHECK(a == "sex" || a == "age" || a == "race" || a == "site", "grouping '", spec,
                  "': unknown attribute '", a, "' (expected sex, age, race or site)");
        for (const auto& b : out) CXR_CHECK(b != a, "grouping '", spec, "' names '", a, "' twice");
        out.push_back(a);
    }
    CXR_CHECK(!out.empty(), "empty grouping (expected e.g. sex or sex,race)");
    return out;
}

std::string grouping_name(const std::vector<std::string>& attributes) {
    std::string s;
    for (size_t i = 0; i < attributes.size(); ++i) s += (i ? "+" : "") + attributes[i];
    return s;
}

std::string age_bin(double age) {
    if (age < 18.0) return "";
    if (age < 40.0) return "18-40";
    if (age < 60.0) return "40-60";
    if (age < 80.0) return "60-80";
    return "80+";
}

Subgroups assign_subgroups(const Predictions& p, const std::vector<std::string>& attributes) {
    const int64_t n = p.size();
    for (const auto& a : attributes) {
        const bool present = (a == "sex" && !p.sex.empty()) || (a == "age" && !p.age.empty()) ||
                             (a == "race" && !p.race.empty()) || (a == "site" && !p.site.empty());
        CXR_CHECK(present, "grouping ", grouping_name(attributes), ": the predictions have no '", a, "' column");
    }
    std::map<std::string, std::vector<int64_t>> by_name;
    Subgroups g;
    for (int64_t i = 0; i < n; ++i) {
        std::string name;
        bool known = true;
        for (size_t k = 0; k < attributes.size() && known; ++k) {
            const std::string& a = attributes[k];
            std::string v;
            if (a == "sex") v = p.sex[i];
            if (a == "race") v = p.race[i];
            if (a == "site") v = p.site[i];
            if (a == "age") v = p.age[i] ? age_bin(*p.age[i]) : "";
            if (v.empty()) known = false;
            name += (k ? "+" : "") + v;
        }
        if (known)
            by_name[name].push_back(i);
        else
            ++g.unassigned;
    }
    for (auto& kv : by_name) {
        g.names.push_back(kv.first);
        g.members.push_back(std::move(kv.second));
    }
    return g;
}

FairnessEvaluator::FairnessEvaluator(const Predictions& p, Subgroups subgroups, FairnessOptions options)
    : p_(&p), groups_(std::move(subgroups)), opt_(std::move(options)) {
    const int64_t L = (int64_t)p.label_names.size();
    for (int64_t l : opt_.labels) CXR_CHECK(l >= 0 && l < L, "fairness: label index ", l, " out of range");
    CXR_CHECK(opt_.no_finding >= -1 && opt_.no_finding < L, "fairness: No Finding label index out of range");
    CXR_CHECK(opt_.min_size >= 0, "fairness: min_size must be >= 0");
    ranked_.resize(groups_.names.size());
    for (size_t g = 0; g < groups_.names.size(); ++g)
        for (int64_t l : opt_.labels)
            ranked_[g].emplace_back(p.scores[l], p.truth[l], &groups_.members[g],
                                    "fairness, label " + p.label_names[l] + ", subgroup " + groups_.names[g]);
}

void fill_gaps(FairnessResult& r) {
    auto gap = [&](auto value, std::optional<double>& out, std::string& hi_name, std::string& lo_name) {
        const SubgroupResult* hi = nullptr;
        const SubgroupResult* lo = nullptr;
        int count = 0;
        for (const auto& s : r.subgroups) {
            const std::optional<double> v = value(s);
            if (!s.in_gaps || !v) continue;
            ++count;
            if (!hi || *v > *value(*hi)) hi = &s;
            if (!lo || *v < *value(*lo)) lo = &s;
        }
        if (count >= 2) {
            out = *value(*hi) - *value(*lo);
            hi_name = hi->name;
            lo_name = lo->name;
        }
    };
    gap([](const SubgroupResult& s) { return s.auroc; }, r.auroc_gap, r.auroc_best, r.auroc_worst);
    gap([](const SubgroupResult& s) { return s.fpr_no_finding; }, r.underdiagnosis_gap, r.underdiagnosis_max,
        r.underdiagnosis_min);
}

FairnessResult FairnessEvaluator::evaluate(const std::vector<double>* weights) const {
    FairnessResult r;
    if (weights)
        CXR_CHECK((int64_t)weights->size() == p_->size(), "fairness: ", weights->size(), " weights for ", p_->size(),
                  " cases");
    for (size_t g = 0; g < groups_.names.size(); ++g) {
        SubgroupResult s;
        s.name = groups_.names[g];
        s.n = (int64_t)groups_.members[g].size();
        s.in_gaps = s.n >= opt_.min_size;
        std::vector<std::optional<double>> per_label;
        for (const auto& rb : ranked_[g]) per_label.push_back(rb.auroc(weights));
        s.auroc = mean_defined(per_label);
        if (opt_.no_finding >= 0) {
            const auto& truth = p_->truth[opt_.no_finding];
            const auto& score = p_->scores[opt_.no_finding];
            double fp = 0.0, tn = 0.0;
            for (int64_t i : groups_.members[g]) {
                if (truth[i] != 0) continue;
                const double w = weights ? (*weights)[i] : 1.0;
                (score[i] >= opt_.no_finding_threshold ? fp : tn) += w;
            }
            if (fp + tn > 0.0) s.fpr_no_finding = fp / (fp + tn);
        }
        r.subgroups.push_back(s);
    }
    fill_gaps(r);
    return r;
}

}  // namespace cxr::metrics
