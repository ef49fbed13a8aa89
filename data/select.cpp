// Frontal filtering, deterministic patient-disjoint splits and dataset summaries (rules in data/select.h).
#include "data/select.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "data/labels.h"
#include "tensor/error.h"
#include "tensor/generator.h"

namespace cxr::data {

std::vector<Record> filter_frontal(const std::vector<Record>& records, bool pa_only) {
    std::vector<Record> out;
    for (const auto& r : records)
        if (pa_only ? r.view == View::pa : r.is_frontal()) out.push_back(r);
    return out;
}

void assign_patient_splits(std::vector<Record>& records, SplitFractions f, uint64_t seed) {
    CXR_CHECK(f.train >= 0 && f.valid >= 0 && f.test >= 0 && std::fabs(f.train + f.valid + f.test - 1.0) < 1e-9,
              "split fractions must be >= 0 and sum to 1 (got ", f.train, ", ", f.valid, ", ", f.test, ")");
    std::set<std::string> ids;
    for (const auto& r : records) {
        CXR_CHECK(!r.patient_id.empty(), "cannot split by patient: image '", r.image_path, "' has no patient id");
        ids.insert(r.patient_id);
    }
    const int64_t n = (int64_t)ids.size();
    std::vector<double> keys(ids.size());
    if (n > 0) tensor::fill_uniform_f64(keys.data(), n, seed, 0, 0.0, 1.0);
    std::vector<std::pair<double, std::string>> order;
    int64_t k = 0;
    for (const auto& id : ids) order.emplace_back(keys[k++], id);
    std::sort(order.begin(), order.end());
    const int64_t n_train = std::llround(f.train * (double)n);
    const int64_t n_valid = std::min<int64_t>(n - n_train, std::llround(f.valid * (double)n));
    std::map<std::string, std::string> split_of;
    for (int64_t i = 0; i < n; ++i)
        split_of[order[i].second] = i < n_train ? "train" : i < n_train + n_valid ? "valid" : "test";
    for (auto& r : records) r.split = split_of[r.patient_id];
}

std::vector<std::string> patients_in_several_splits(const std::vector<Record>& records) {
    std::map<std::string, std::set<std::string>> splits;
    for (const auto& r : records) splits[r.patient_id].insert(r.split);
    std::vector<std::string> out;
    for (const auto& [id, s] : splits)
        if (s.size() > 1) out.push_back(id);
    return out;
}

DatasetSummary summarize(const std::vector<Record>& records) {
    DatasetSummary s;
    std::set<std::string> patients;
    bool any_age = false;
    for (const auto& r : records) {
        ++s.images;
        patients.insert(r.patient_id);
        ++s.by_split[r.split.empty() ? "unassigned" : r.split];
        ++s.by_sex[r.sex == Sex::unknown ? "unknown" : sex_code(r.sex)];
        const std::string bin = age_bin(r.age);
        ++s.by_age_bin[!bin.empty() ? bin : r.has_age() ? "<18" : "unknown"];
        ++s.by_race[race_name(r.race)];
        ++s.by_view[r.view == View::unknown ? "unknown" : view_name(r.view)];
        ++s.by_dataset[r.dataset];
        for (int i = 0; i < kNumChexpertLabels; ++i) {
            auto& c = s.labels[chexpert_labels()[i]];
            ++c[(int)r.labels[i]];
        }
        for (const auto& f : r.source_findings) ++s.source_findings[f];
        if (r.has_age()) {
            s.age_min = any_age ? std::min(s.age_min, r.age) : r.age;
            s.age_max = any_age ? std::max(s.age_max, r.age) : r.age;
            any_age = true;
        }
    }
    s.patients = (int64_t)patients.size();
    return s;
}

}  // namespace cxr::data
