// CheXpert adapter (Irvin et al., "CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and Expert
// Comparison", AAAI 2019): train.csv / valid.csv, uncertainty policies (U-zeros, U-ones, ignore; §4 of the paper)
// and race from a CSV export of the CHEXPERT DEMO sheet; CheXpert Plus through a column mapping.
// Layout: data/adapters/adapters.h.
#include <filesystem>
#include <map>

#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

struct Demographics {
    Sex sex = Sex::unknown;
    double age = std::numeric_limits<double>::quiet_NaN();
    Race race = Race::other_unknown;
    std::string race_source;
};

std::map<std::string, Demographics> read_demographics(const std::string& path) {
    const CsvTable t = CsvTable::read(path);
    const size_t c_pat = t.column("PATIENT"), c_race = t.column("PRIMARY_RACE");
    const bool has_eth = t.has_column("ETHNICITY"), has_sex = t.has_column("GENDER"),
               has_age = t.has_column("AGE_AT_CXR");
    std::map<std::string, Demographics> out;
    for (size_t r = 0; r < t.num_rows(); ++r) {
        Demographics d;
        const std::string eth = has_eth ? t.at(r, "ETHNICITY") : "";
        d.race = race_from_chexpert(t.at(r, c_race), eth);
        d.race_source = trim(t.at(r, c_race)) + (eth.empty() ? "" : " / " + trim(eth));
        if (has_sex) d.sex = parse_sex(t.at(r, "GENDER"));
        if (has_age && !trim(t.at(r, "AGE_AT_CXR")).empty()) d.age = t.get_double(r, "AGE_AT_CXR");
        out[trim(t.at(r, c_pat))] = d;
    }
    return out;
}

}  // namespace

ChexpertColumns chexpert_plus_columns() {
    ChexpertColumns c;
    c.path = "path_to_image";
    c.sex = "sex";
    c.age = "age";
    c.frontal_lateral = "frontal_lateral";
    c.ap_pa = "ap_pa";
    c.patient = "deid_patient_id";
    c.race = "race";
    c.ethnicity = "ethnicity";
    c.report = "section_impression";
    c.split = "split";
    c.labels_required = false;
    return c;
}

std::vector<Record> load_chexpert(const ChexpertOptions& options) {
    const ChexpertColumns& cols = options.columns;
    CXR_CHECK(!cols.path.empty(), "CheXpert: the column mapping names no path column");
    std::vector<std::pair<std::string, std::string>> files;  // (path, split)
    if (options.csvs.empty()) {
        for (const char* n : {"train.csv", "valid.csv"}) {
            std::string p = detail::find_file(options.root, n);
            if (!p.empty()) files.emplace_back(p, std::string(n) == "train.csv" ? "train" : "valid");
        }
        CXR_CHECK(!files.empty(), "CheXpert: neither train.csv nor valid.csv in '", options.root, "'");
    } else {
        for (const auto& p : options.csvs) {
            const std::string stem = fs::path(p).stem().string();
            files.emplace_back(p, stem.find("valid") != std::string::npos ? "valid"
                                  : stem.find("test") != std::string::npos ? "test"
                                                                           : "train");
        }
    }
    std::map<std::string, Demographics> demo;
    if (!options.demographics_csv.empty()) demo = read_demographics(options.demographics_csv);
    // root's own folder name, so that a Path starting with it ("CheXpert-v1.0-small/train/...") resolves against
    // root's parent; a trailing separator or "." in root must not hide the name.
    fs::path root_abs = fs::absolute(options.root.empty() ? "." : options.root).lexically_normal();
    if (root_abs.filename().empty()) root_abs = root_abs.parent_path();
    const std::string root_name = root_abs.filename().string();
    const std::string parent = root_abs.parent_path().string();
    const auto& names = chexpert_labels();

    std::vector<Record> out;
    for (const auto& [path, file_split] : files) {
        const CsvTable t = CsvTable::read(path);
        auto optional_col = [&](const std::string& name) { return name.empty() ? -1L : (long)t.column(name); };
        const size_t c_path = t.column(cols.path);
        const long c_sex = optional_col(cols.sex), c_age = optional_col(cols.age),
                   c_fl = optional_col(cols.frontal_lateral), c_appa = optional_col(cols.ap_pa),
                   c_pat = optional_col(cols.patient), c_race = optional_col(cols.race),
                   c_eth = optional_col(cols.ethnicity), c_rep = optional_col(cols.report),
                   c_split = optional_col(cols.split);
        auto get = [&](size_t r, long c) { return c < 0 ? std::string() : trim(t.at(r, (size_t)c)); };
        std::vector<long> c_label;
        for (const auto& n : names)
            c_label.push_back(cols.labels_required || t.has_column(n) ? (long)t.column(n) : -1L);
        for (size_t r = 0; r < t.num_rows(); ++r) {
            Record rec;
            const std::string p = trim(t.at(r, c_path));
            CXR_CHECK(!p.empty(), detail::where(t, r), ": empty ", cols.path);
            const auto parts = split_string(p, '/');
            rec.image_path = detail::join_path(!parts.empty() && parts[0] == root_name ? parent : options.root, p);
            for (size_t k = 0; k < parts.size(); ++k) {
                if (parts[k].rfind("patient", 0) == 0) {
                    rec.patient_id = parts[k];
                    if (k + 1 < parts.size() && parts[k + 1].rfind("study", 0) == 0)
                        rec.study_id = parts[k] + "/" + parts[k + 1];
                    break;
                }
            }
            if (c_pat >= 0 && !get(r, c_pat).empty()) rec.patient_id = get(r, c_pat);
            CXR_CHECK(!rec.patient_id.empty(), detail::where(t, r), ": ", cols.path, " '", p,
                      "' names no patientNNNNN folder", c_pat >= 0 ? " and " + cols.patient + " is empty" : "");
            rec.split = file_split;
            if (c_split >= 0) {
                std::string sp = to_lower(get(r, c_split));
                if (sp == "validate" || sp == "val" || sp == "validation") sp = "valid";
                rec.split = sp;
            }
            const std::string fl = to_lower(get(r, c_fl));
            rec.view = fl == "lateral" ? View::lateral : parse_view(get(r, c_appa));
            if (fl == "frontal" && (rec.view == View::unknown || rec.view == View::lateral)) rec.view = View::other;
            rec.sex = parse_sex(get(r, c_sex));
            if (c_age >= 0 && !get(r, c_age).empty()) rec.age = t.get_double(r, (size_t)c_age);
            for (int i = 0; i < kNumChexpertLabels; ++i)
                if (c_label[i] >= 0)
                    rec.labels[i] = parse_label_cell(t.at(r, (size_t)c_label[i]),
                                                     detail::where(t, r) + " column '" + names[i] + "'");
            if (c_race >= 0) {
                rec.race = race_from_chexpert(get(r, c_race), get(r, c_eth));
                rec.race_source = get(r, c_race) + (get(r, c_eth).empty() ? "" : " / " + get(r, c_eth));
            }
            if (c_rep >= 0) rec.report = get(r, c_rep);
            auto d = demo.find(rec.patient_id);
            if (d != demo.end()) {
                rec.race = d->second.race;
                rec.race_source = d->second.race_source;
                if (rec.sex == Sex::unknown) rec.sex = d->second.sex;
                if (!rec.has_age()) rec.age = d->second.age;
            }
            apply_uncertainty_policy(rec, options.uncertainty);
            rec.dataset = "chexpert";
            rec.site = "chexpert";
            out.push_back(std::move(rec));
        }
    }
    return out;
}

}  // namespace cxr::data
