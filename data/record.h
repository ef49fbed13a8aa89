// Record: one chest radiograph as every dataset adapter delivers it (data/adapters/*.h), harmonised to the
// CheXpert label set (Irvin et al., "CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and
// Expert Comparison", AAAI 2019) and to the demographic categories of data/labels.h.
//
// Labels keep the four states a report-derived label can have apart:
//   positive   the finding is stated (CheXpert/MIMIC 1.0; NIH/PadChest/VinDr listed);
//   negative   the finding is denied (CheXpert/MIMIC 0.0) or, for datasets that list every finding they looked
//              for (NIH, PadChest, VinDr, the phantom), not listed;
//   uncertain  CheXpert/MIMIC -1.0 ("may represent", "cannot exclude"): a policy (apply_uncertainty_policy in
//              data/labels.h) turns it into negative (U-zeros), positive (U-ones) or unknown (ignore);
//   unknown    not mentioned (blank in CheXpert/MIMIC) or a finding the source dataset does not label at all
//              (e.g. Fracture for NIH); training and evaluation leave such entries out.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cxr::data {

enum class LabelValue : uint8_t { negative = 0, positive = 1, uncertain = 2, unknown = 3 };
enum class Sex : uint8_t { unknown = 0, male, female };
// The five race/ethnicity categories of the RoentGen-v2 and fairness studies; the mapping from each dataset's
// strings is documented in data/labels.h. `other_unknown` holds both "other" and "not known".
enum class Race : uint8_t { asian = 0, black, hispanic, white, other_unknown };
// View: PA and AP are frontal; `lateral` covers LL/RL/"L"; `other` is anything named but not recognised.
enum class View : uint8_t { unknown = 0, pa, ap, lateral, other };

constexpr int kNumChexpertLabels = 14;

struct Record {
    std::string image_path;  // path of the image file (the dataset root joined with the path the dataset gives)
    std::string patient_id;
    std::string study_id;    // "" when the dataset has no studies (one image per study)
    std::string split;       // "train", "valid", "test" or "" (not assigned)
    View view = View::unknown;
    Sex sex = Sex::unknown;
    double age = std::numeric_limits<double>::quiet_NaN();  // years at the study; NaN when unknown
    Race race = Race::other_unknown;
    std::string race_source;  // the dataset's own race/ethnicity string(s) the category came from
    // Labels in CheXpert order (data/labels.h chexpert_labels()); unknown until the adapter sets them.
    std::array<LabelValue, kNumChexpertLabels> labels;
    // The source dataset's own positive finding names, as written (e.g. NIH "Emphysema", PadChest
    // "pleural effusion"), so findings without a CheXpert counterpart are not lost.
    std::vector<std::string> source_findings;
    std::string report;   // report text or impression where the dataset has one
    std::string dataset;  // "nih", "chexpert", "mimic", "padchest", "vindr", "manifest", "phantom"
    std::string site;     // acquisition site / hospital; the dataset name unless the source says more

    Record() { labels.fill(LabelValue::unknown); }
    bool is_frontal() const { return view == View::pa || view == View::ap; }
    bool has_age() const { return !std::isnan(age); }
};

}  // namespace cxr::data
