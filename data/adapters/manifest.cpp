// The generic manifest CSV: the format the rest of cxr reads and writes (columns in data/README.md,
// "Generic manifest CSV"). RFC 4180 output (https://www.rfc-editor.org/rfc/rfc4180): a field holding a comma,
// quote, CR or LF is quoted and its quotes doubled.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

std::string quote(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + "\"";
}

std::string format_age(double age) {
    if (std::isnan(age)) return "";
    char buf[32];
    if (age == std::floor(age) && std::fabs(age) < 1e9) {
        std::snprintf(buf, sizeof buf, "%.0f", age);
        return buf;
    }
    // The shortest of %.15g / %.17g that reads back to the same double (exact round trip).
    std::snprintf(buf, sizeof buf, "%.15g", age);
    if (std::strtod(buf, nullptr) != age) std::snprintf(buf, sizeof buf, "%.17g", age);
    return buf;
}

}  // namespace

std::vector<Record> load_manifest(const std::string& path) {
    const CsvTable t = CsvTable::read(path);
    const std::string base = fs::path(path).parent_path().string();
    const size_t c_path = t.column("path");
    auto opt_col = [&](const char* name) { return t.has_column(name) ? (long)t.column(name) : -1L; };
    const long c_pid = opt_col("patient_id"), c_sid = opt_col("study_id"), c_split = opt_col("split"),
               c_view = opt_col("view"), c_sex = opt_col("sex"), c_age = opt_col("age"), c_race = opt_col("race"),
               c_site = opt_col("site"), c_ds = opt_col("dataset"), c_rep = opt_col("report"),
               c_find = opt_col("findings");
    std::vector<long> c_label(kNumChexpertLabels, -1);
    for (size_t c = 0; c < t.num_columns(); ++c) {
        const int idx = label_index(t.header()[c]);
        if (idx < 0) continue;
        CXR_CHECK(c_label[idx] < 0, t.source(), ": label '", chexpert_labels()[idx], "' appears twice in the header");
        c_label[idx] = (long)c;
    }
    std::vector<Record> out;
    out.reserve(t.num_rows());
    for (size_t r = 0; r < t.num_rows(); ++r) {
        Record rec;
        auto get = [&](long c) { return c < 0 ? std::string() : trim(t.at(r, (size_t)c)); };
        const std::string p = get((long)c_path);
        CXR_CHECK(!p.empty(), detail::where(t, r), ": empty path");
        rec.image_path = detail::join_path(base, p);
        rec.patient_id = get(c_pid);
        rec.study_id = get(c_sid);
        rec.split = get(c_split);
        rec.view = parse_view(get(c_view));
        rec.sex = parse_sex(get(c_sex));
        if (!get(c_age).empty()) rec.age = t.get_double(r, (size_t)c_age);
        rec.race_source = get(c_race);
        rec.race = race_from_name(rec.race_source);
        rec.site = get(c_site);
        rec.dataset = c_ds < 0 ? "manifest" : get(c_ds);
        rec.report = c_rep < 0 ? std::string() : t.at(r, (size_t)c_rep);
        for (int i = 0; i < kNumChexpertLabels; ++i)
            if (c_label[i] >= 0)
                rec.labels[i] = parse_label_cell(t.at(r, (size_t)c_label[i]),
                                                 detail::where(t, r) + " column '" + t.header()[c_label[i]] + "'");
        for (const auto& f : split_string(get(c_find), '|'))
            if (!trim(f).empty()) rec.source_findings.push_back(trim(f));
        out.push_back(std::move(rec));
    }
    return out;
}

void write_manifest(const std::string& path, const std::vector<Record>& records, const std::string& base_dir) {
    const fs::path target(path);
    if (target.has_parent_path()) fs::create_directories(target.parent_path());
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary);
        CXR_CHECK(out.good(), "cannot write manifest '", tmp, "'");
        out << "path,patient_id,study_id,split,view,sex,age,race,site,dataset";
        for (const auto& n : chexpert_labels()) out << ',' << quote(n);
        out << ",findings,report\n";
        // Relative paths are read back against the manifest's folder (load_manifest), so every path is written
        // either relative to that folder or absolute.
        const fs::path manifest_dir = fs::absolute(target).lexically_normal().parent_path();
        fs::path base = base_dir.empty() ? manifest_dir : fs::absolute(base_dir).lexically_normal();
        if (base.filename().empty()) base = base.parent_path();  // "dir/" names the same folder as "dir"
        for (const auto& r : records) {
            CXR_CHECK(!r.image_path.empty(), "write_manifest: a record has no image path");
            const fs::path abs = fs::absolute(r.image_path).lexically_normal();
            std::string p = abs.string();
            if (base == manifest_dir) {
                const fs::path rel = abs.lexically_relative(base);
                if (!rel.empty() && rel.native().rfind("..", 0) != 0) p = rel.generic_string();
            }
            std::string findings;
            for (const auto& f : r.source_findings) findings += (findings.empty() ? "" : "|") + f;
            out << quote(p) << ',' << quote(r.patient_id) << ',' << quote(r.study_id) << ',' << quote(r.split) << ','
                << view_name(r.view) << ',' << sex_code(r.sex) << ',' << format_age(r.age) << ','
                << (r.race == Race::other_unknown ? "" : race_name(r.race)) << ',' << quote(r.site) << ','
                << quote(r.dataset);
            for (auto v : r.labels) out << ',' << label_cell(v);
            out << ',' << quote(findings) << ',' << quote(r.report) << '\n';
        }
        out.flush();
        if (!out.good()) {
            out.close();
            std::error_code ignored;
            fs::remove(tmp, ignored);
            CXR_FAIL("error while writing manifest '", tmp, "'");
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        CXR_FAIL("cannot rename '", tmp, "' to '", path, "': ", ec.message());
    }
}

}  // namespace cxr::data
