// NIH ChestX-ray14 adapter (Wang et al., "ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks",
// CVPR 2017): Data_Entry_2017*.csv plus a split CSV or the official train_val/test lists. Layout and label
// table: data/adapters/adapters.h and data/labels.h.
#include <filesystem>
#include <fstream>
#include <map>

#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

// Reads an official list (one image name per line) into `out` with the given split name.
void read_list(const std::string& path, const std::string& split, std::map<std::string, std::string>& out) {
    std::ifstream in(path);
    CXR_CHECK(in.good(), "cannot open NIH split list '", path, "'");
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (!line.empty()) out[line] = split;
    }
}

}  // namespace

std::vector<Record> load_nih(const NihOptions& options) {
    const std::string& root = options.root;
    std::string entry = options.entry_csv.empty() ? detail::find_prefixed(root, "Data_Entry_2017") : options.entry_csv;
    CXR_CHECK(!entry.empty(), "NIH: no Data_Entry_2017*.csv in '", root, "'");
    const CsvTable t = CsvTable::read(entry);

    std::map<std::string, std::string> split_of;
    std::string split_csv = options.split_csv.empty() ? detail::find_file(root, "splits.csv") : options.split_csv;
    if (!split_csv.empty()) {
        const CsvTable s = CsvTable::read(split_csv);
        const size_t ci = s.column("Image Index"), cs = s.column("split");
        for (size_t r = 0; r < s.num_rows(); ++r) {
            std::string sp = trim(s.at(r, cs));
            if (sp == "val" || sp == "validate" || sp == "validation") sp = "valid";
            split_of[trim(s.at(r, ci))] = sp;
        }
    } else {
        std::string tv = options.train_val_list.empty() ? detail::find_file(root, "train_val_list.txt")
                                                        : options.train_val_list;
        std::string te = options.test_list.empty() ? detail::find_file(root, "test_list.txt") : options.test_list;
        if (!tv.empty()) read_list(tv, "train", split_of);
        if (!te.empty()) read_list(te, "test", split_of);
    }
    std::string image_dir = options.image_dir;
    if (image_dir.empty())
        image_dir = fs::is_directory(fs::path(root) / "images") ? (fs::path(root) / "images").string() : root;

    const size_t c_img = t.column("Image Index"), c_find = t.column("Finding Labels"), c_pid = t.column("Patient ID"),
                 c_age = t.column("Patient Age"), c_sex = t.column("Patient Gender"),
                 c_view = t.column("View Position");
    std::vector<Record> out;
    out.reserve(t.num_rows());
    for (size_t r = 0; r < t.num_rows(); ++r) {
        Record rec;
        const std::string name = trim(t.at(r, c_img));
        CXR_CHECK(!name.empty(), detail::where(t, r), ": empty Image Index");
        rec.image_path = detail::join_path(image_dir, name);
        rec.patient_id = trim(t.at(r, c_pid));
        CXR_CHECK(!rec.patient_id.empty(), detail::where(t, r), ": empty Patient ID");
        const bool png = name.size() > 4 && name.substr(name.size() - 4) == ".png";
        rec.study_id = png ? name.substr(0, name.size() - 4) : name;
        auto s = split_of.find(name);
        if (s != split_of.end()) rec.split = s->second;
        rec.view = parse_view(t.at(r, c_view));
        rec.sex = parse_sex(t.at(r, c_sex));
        // Older releases write ages like "058Y"; the v2020 file has plain years.
        std::string age = trim(t.at(r, c_age));
        if (!age.empty() && (age.back() == 'Y' || age.back() == 'y')) age.pop_back();
        if (!age.empty()) {
            try {
                size_t used = 0;
                rec.age = std::stod(age, &used);
                CXR_CHECK(used == age.size(), "");
            } catch (const std::exception&) {
                CXR_FAIL(detail::where(t, r), ": Patient Age '", t.at(r, c_age), "' is not a number");
            }
        }
        apply_findings(split_string(t.at(r, c_find), '|'), nih_label_map(), false, rec);
        rec.dataset = "nih";
        rec.site = "nih";
        out.push_back(std::move(rec));
    }
    return out;
}

}  // namespace cxr::data
