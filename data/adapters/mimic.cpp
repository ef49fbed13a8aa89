// MIMIC-CXR-JPG 2.0.0 adapter (Johnson et al., "MIMIC-CXR-JPG, a large publicly available database of labeled
// chest radiographs", arXiv:1901.07042) with age, sex and race from the MIMIC-IV hosp module's patients.csv and
// admissions.csv (v1 column `ethnicity`, v2 column `race`). Layout and rules: data/adapters/adapters.h.
#include <map>
#include <set>

#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

std::string required(const std::string& given, const std::string& root, const std::string& name) {
    if (!given.empty()) return given;
    std::string p = detail::find_file(root, name);
    CXR_CHECK(!p.empty(), "MIMIC-CXR-JPG: no ", name, " (or ", name, ".gz) in '", root, "'");
    return p;
}

struct Patient {
    Sex sex = Sex::unknown;
    double anchor_age = std::numeric_limits<double>::quiet_NaN();
    double anchor_year = std::numeric_limits<double>::quiet_NaN();
    std::set<Race> races;           // known categories seen over the admissions
    std::set<std::string> sources;  // raw values seen
};

}  // namespace

std::vector<Record> load_mimic(const MimicOptions& options) {
    const std::string& root = options.root;
    const CsvTable meta = CsvTable::read(required(options.metadata_csv, root, "mimic-cxr-2.0.0-metadata.csv"));
    const CsvTable labels = CsvTable::read(required(options.chexpert_csv, root, "mimic-cxr-2.0.0-chexpert.csv"));
    const std::string split_path =
        options.split_csv.empty() ? detail::find_file(root, "mimic-cxr-2.0.0-split.csv") : options.split_csv;
    std::string patients_path =
        options.patients_csv.empty() ? detail::find_file(root, "patients.csv") : options.patients_csv;
    std::string adm_path =
        options.admissions_csv.empty() ? detail::find_file(root, "admissions.csv") : options.admissions_csv;

    // Study-level labels keyed by study_id.
    const auto& names = chexpert_labels();
    std::map<std::string, std::array<LabelValue, kNumChexpertLabels>> study_labels;
    {
        const size_t c_study = labels.column("study_id");
        std::vector<size_t> c_label;
        for (const auto& n : names) c_label.push_back(labels.column(n));
        for (size_t r = 0; r < labels.num_rows(); ++r) {
            std::array<LabelValue, kNumChexpertLabels> v;
            for (int i = 0; i < kNumChexpertLabels; ++i)
                v[i] = parse_label_cell(labels.at(r, c_label[i]),
                                        detail::where(labels, r) + " column '" + names[i] + "'");
            study_labels[trim(labels.at(r, c_study))] = v;
        }
    }
    std::map<std::string, std::string> split_of;  // dicom_id -> split
    if (!split_path.empty()) {
        const CsvTable s = CsvTable::read(split_path);
        const size_t c_d = s.column("dicom_id"), c_s = s.column("split");
        for (size_t r = 0; r < s.num_rows(); ++r) {
            std::string sp = trim(s.at(r, c_s));
            if (sp == "validate") sp = "valid";
            split_of[trim(s.at(r, c_d))] = sp;
        }
    }
    std::map<std::string, Patient> patients;
    if (!patients_path.empty()) {
        const CsvTable p = CsvTable::read(patients_path);
        const size_t c_id = p.column("subject_id"), c_g = p.column("gender"), c_a = p.column("anchor_age"),
                     c_y = p.column("anchor_year");
        for (size_t r = 0; r < p.num_rows(); ++r) {
            Patient& q = patients[trim(p.at(r, c_id))];
            q.sex = parse_sex(p.at(r, c_g));
            q.anchor_age = p.get_double(r, c_a);
            q.anchor_year = p.get_double(r, c_y);
        }
    }
    if (!adm_path.empty()) {
        const CsvTable a = CsvTable::read(adm_path);
        const std::string col = a.has_column("race") ? "race" : "ethnicity";
        CXR_CHECK(a.has_column(col), a.source(), ": admissions table has neither a 'race' (MIMIC-IV v2) nor an ",
                  "'ethnicity' (v1) column");
        const size_t c_id = a.column("subject_id"), c_r = a.column(col);
        for (size_t r = 0; r < a.num_rows(); ++r) {
            Patient& q = patients[trim(a.at(r, c_id))];
            const std::string v = trim(a.at(r, c_r));
            if (v.empty()) continue;
            q.sources.insert(v);
            const Race race = race_from_mimic(v);
            if (race != Race::other_unknown) q.races.insert(race);
        }
    }

    const size_t c_dicom = meta.column("dicom_id"), c_subj = meta.column("subject_id"),
                 c_study = meta.column("study_id"), c_view = meta.column("ViewPosition");
    const bool has_date = meta.has_column("StudyDate");
    std::vector<Record> out;
    out.reserve(meta.num_rows());
    for (size_t r = 0; r < meta.num_rows(); ++r) {
        Record rec;
        const std::string dicom = trim(meta.at(r, c_dicom)), subj = trim(meta.at(r, c_subj)),
                          study = trim(meta.at(r, c_study));
        CXR_CHECK(subj.size() >= 2, detail::where(meta, r), ": subject_id '", subj, "' is too short");
        rec.image_path = detail::join_path(root, "files/p" + subj.substr(0, 2) + "/p" + subj + "/s" + study + "/" +
                                                     dicom + ".jpg");
        rec.patient_id = subj;
        rec.study_id = study;
        auto s = split_of.find(dicom);
        if (s != split_of.end()) rec.split = s->second;
        rec.view = parse_view(meta.at(r, c_view));
        auto l = study_labels.find(study);
        if (l != study_labels.end()) rec.labels = l->second;
        auto p = patients.find(subj);
        if (p != patients.end()) {
            const Patient& q = p->second;
            rec.sex = q.sex;
            rec.age = q.anchor_age;
            const std::string date = has_date ? trim(meta.at(r, "StudyDate")) : "";
            if (!date.empty() && !std::isnan(q.anchor_year)) {
                CXR_CHECK(date.size() == 8 && date.find_first_not_of("0123456789") == std::string::npos,
                          detail::where(meta, r), ": StudyDate '", date, "' is not YYYYMMDD");
                const double year = std::stod(date.substr(0, 4));
                rec.age = q.anchor_age + (year - q.anchor_year);
            }
            rec.race = q.races.size() == 1 ? *q.races.begin() : Race::other_unknown;
            for (const auto& v : q.sources) rec.race_source += (rec.race_source.empty() ? "" : "|") + v;
        }
        apply_uncertainty_policy(rec, options.uncertainty);
        rec.dataset = "mimic";
        rec.site = "mimic";
        out.push_back(std::move(rec));
    }
    return out;
}

}  // namespace cxr::data
