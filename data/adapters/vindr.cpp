// VinDr-CXR adapter (Nguyen et al., "VinDr-CXR: An open dataset of chest X-rays with radiologist's annotations",
// Sci. Data 2022): image_labels_train.csv (three readers per image, column rad_id) and image_labels_test.csv (one
// consensus row per image), aggregated by reader votes. Layout and label table: data/adapters/adapters.h,
// data/labels.h.
#include <map>

#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

void read_vindr(const std::string& path, const std::string& split, const VindrOptions& options,
                std::vector<Record>& out) {
    const CsvTable t = CsvTable::read(path);
    const size_t c_id = t.column("image_id");
    const bool has_rad = t.has_column("rad_id");
    std::vector<size_t> finding_cols;
    for (size_t c = 0; c < t.num_columns(); ++c)
        if (c != c_id && !(has_rad && c == t.column("rad_id"))) finding_cols.push_back(c);
    struct Votes {
        int readers = 0;
        std::vector<int> positive;
    };
    std::vector<std::string> order;  // image ids in first-appearance order
    std::map<std::string, Votes> votes;
    for (size_t r = 0; r < t.num_rows(); ++r) {
        const std::string id = trim(t.at(r, c_id));
        CXR_CHECK(!id.empty(), detail::where(t, r), ": empty image_id");
        auto it = votes.find(id);
        if (it == votes.end()) {
            it = votes.emplace(id, Votes{0, std::vector<int>(finding_cols.size(), 0)}).first;
            order.push_back(id);
        }
        it->second.readers += 1;
        for (size_t k = 0; k < finding_cols.size(); ++k) {
            const int64_t v = t.get_int(r, finding_cols[k]);
            CXR_CHECK(v == 0 || v == 1, detail::where(t, r), " column '", t.header()[finding_cols[k]],
                      "': expected 0 or 1, got ", v);
            it->second.positive[k] += (int)v;
        }
    }
    for (const auto& id : order) {
        const Votes& v = votes[id];
        Record rec;
        std::vector<std::string> findings;
        for (size_t k = 0; k < finding_cols.size(); ++k) {
            const bool pos = options.min_votes > 0 ? v.positive[k] >= options.min_votes : 2 * v.positive[k] > v.readers;
            if (pos) findings.push_back(t.header()[finding_cols[k]]);
        }
        apply_findings(findings, vindr_label_map(), false, rec);
        rec.image_path = detail::join_path(options.root, split + "/" + id + ".dicom");
        rec.patient_id = id;
        rec.study_id = id;
        rec.split = split;
        rec.view = View::pa;
        rec.dataset = "vindr";
        rec.site = "vindr";
        out.push_back(std::move(rec));
    }
}

}  // namespace

std::vector<Record> load_vindr(const VindrOptions& options) {
    const std::string train =
        options.train_csv.empty() ? detail::find_file(options.root, "image_labels_train.csv") : options.train_csv;
    const std::string test =
        options.test_csv.empty() ? detail::find_file(options.root, "image_labels_test.csv") : options.test_csv;
    CXR_CHECK(!train.empty() || !test.empty(),
              "VinDr-CXR: neither image_labels_train.csv nor image_labels_test.csv in '",
              options.root, "'");
    CXR_CHECK(options.min_votes >= 0, "VinDr-CXR: min_votes must be >= 0");
    std::vector<Record> out;
    if (!train.empty()) read_vindr(train, "train", options, out);
    if (!test.empty()) read_vindr(test, "test", options, out);
    return out;
}

}  // namespace cxr::data
