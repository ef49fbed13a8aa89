// Selection, splitting and summaries of record lists: frontal/PA filtering, deterministic patient-disjoint
// splits, and the counts `cxr data inspect` prints.
//
// Patient-disjoint split (every image of a patient lands in the same split): the distinct patient ids are given
// one key each, u_p = Philox uniform double number k of the stream (seed, offset 0) where k is the patient's rank
// in lexicographic id order (tensor/generator.h fill_uniform_f64); patients are sorted by (u_p, id); the first
// round(f_train * P) patients go to "train", the next round(f_valid * P) to "valid", the rest to "test". The
// result depends only on the set of patient ids and the seed, not on the order of the records.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/record.h"

namespace cxr::data {

// Keeps frontal images (PA or AP); with pa_only, PA only.
std::vector<Record> filter_frontal(const std::vector<Record>& records, bool pa_only = false);

struct SplitFractions {
    double train = 0.7, valid = 0.1, test = 0.2;  // must be >= 0 and sum to 1 (within 1e-9)
};
// Overwrites Record::split of every record by the rule above.
void assign_patient_splits(std::vector<Record>& records, SplitFractions fractions, uint64_t seed);
// Patient ids that occur in more than one split (empty for a patient-disjoint split).
std::vector<std::string> patients_in_several_splits(const std::vector<Record>& records);

// Counts over a record list. Label counts are [negative, positive, uncertain, unknown] per CheXpert label.
struct DatasetSummary {
    int64_t images = 0;
    int64_t patients = 0;
    std::map<std::string, int64_t> by_split, by_sex, by_age_bin, by_race, by_view, by_dataset;
    std::map<std::string, std::array<int64_t, 4>> labels;  // CheXpert name -> counts
    std::map<std::string, int64_t> source_findings;        // the datasets' own finding names
    double age_min = 0, age_max = 0;                       // over known ages (0, 0 when none)
};
// Unknown values are counted under "unknown" (split: "unassigned"; age bin: "unknown" or "<18").
DatasetSummary summarize(const std::vector<Record>& records);

}  // namespace cxr::data
