// PadChest adapter (Bustos et al., "PadChest: A large chest x-ray image dataset with multi-label annotated
// reports", Med. Image Anal. 2020): the PADCHEST_chest_x_ray_images_labels CSV with list-as-text labels, age from
// the birth year. Layout and label table: data/adapters/adapters.h, data/labels.h.
#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

// "['pleural effusion', 'cardiomegaly']" -> {"pleural effusion", "cardiomegaly"}; "" / "nan" / "[]" -> {}.
std::vector<std::string> parse_list(const std::string& text) {
    std::string s = trim(text);
    if (s.empty() || s == "nan" || s == "[]") return {};
    if (s.front() == '[') s = s.substr(1);
    if (!s.empty() && s.back() == ']') s.pop_back();
    std::vector<std::string> out;
    for (std::string item : split_string(s, ',')) {
        item = trim(item);
        if (!item.empty() && (item.front() == '\'' || item.front() == '"')) item = item.substr(1);
        if (!item.empty() && (item.back() == '\'' || item.back() == '"')) item.pop_back();
        item = trim(item);
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

// PatientBirth is a year ("1948" or "1948.0"); StudyDate_DICOM is YYYYMMDD (its first four digits are the year).
double year_of(const std::string& s, bool is_date, const std::string& where, const char* what) {
    const std::string v = trim(s);
    if (v.empty() || v == "nan" || v == "None") return std::numeric_limits<double>::quiet_NaN();
    const std::string digits = is_date ? v.substr(0, 4) : v;
    try {
        size_t used = 0;
        const double y = std::stod(digits, &used);
        if (used == digits.size() && (!is_date || v.size() == 8)) return y;
    } catch (const std::exception&) {
    }
    CXR_FAIL(where, ": ", what, " '", s, "' is not ", is_date ? "a YYYYMMDD date" : "a year");
}

}  // namespace

std::vector<Record> load_padchest(const PadchestOptions& options) {
    std::string path = options.csv.empty() ? detail::find_prefixed(options.root, "PADCHEST") : options.csv;
    CXR_CHECK(!path.empty(), "PadChest: no PADCHEST*.csv in '", options.root, "'");
    const CsvTable t = CsvTable::read(path);
    const size_t c_id = t.column("ImageID"), c_pid = t.column("PatientID"), c_sid = t.column("StudyID"),
                 c_birth = t.column("PatientBirth"), c_sex = t.column("PatientSex_DICOM"),
                 c_date = t.column("StudyDate_DICOM"), c_proj = t.column("Projection"), c_lab = t.column("Labels");
    const bool has_dir = t.has_column("ImageDir"), has_report = t.has_column("Report");
    std::vector<Record> out;
    out.reserve(t.num_rows());
    for (size_t r = 0; r < t.num_rows(); ++r) {
        Record rec;
        const std::string id = trim(t.at(r, c_id));
        const std::string dir = has_dir && options.use_image_dir ? trim(t.at(r, "ImageDir")) : "";
        rec.image_path = detail::join_path(detail::join_path(options.root, dir), id);
        rec.patient_id = trim(t.at(r, c_pid));
        rec.study_id = trim(t.at(r, c_sid));
        rec.view = parse_view(t.at(r, c_proj));
        rec.sex = parse_sex(t.at(r, c_sex));
        const std::string w = detail::where(t, r);
        const double birth = year_of(t.at(r, c_birth), false, w, "PatientBirth");
        const double year = year_of(t.at(r, c_date), true, w, "StudyDate_DICOM");
        if (!std::isnan(birth) && !std::isnan(year)) rec.age = year - birth;
        const auto findings = parse_list(t.at(r, c_lab));
        if (!findings.empty()) apply_findings(findings, padchest_label_map(), true, rec);
        if (has_report) rec.report = trim(t.at(r, "Report"));
        rec.dataset = "padchest";
        rec.site = "padchest";
        out.push_back(std::move(rec));
    }
    return out;
}

}  // namespace cxr::data
