// Shared pieces of the dataset adapters: file discovery, path joining and dispatch by dataset kind
// (data/adapters/adapters.h).
#include <algorithm>
#include <filesystem>
#include <set>

#include "data/adapters/adapters.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace detail {

std::string find_file(const std::string& dir, const std::string& name) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p)) return p.string();
    if (fs::is_regular_file(p.string() + ".gz")) return p.string() + ".gz";
    return "";
}

std::string find_prefixed(const std::string& dir, const std::string& prefix) {
    if (!fs::is_directory(dir)) return "";
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (e.is_regular_file() && n.rfind(prefix, 0) == 0 && n.find(".csv") != std::string::npos)
            names.push_back(e.path().string());
    }
    std::sort(names.begin(), names.end());
    return names.empty() ? "" : names.front();
}

std::string join_path(const std::string& a, const std::string& b) {
    if (a.empty() || fs::path(b).is_absolute()) return b;
    return (fs::path(a) / b).string();
}

std::string where(const CsvTable& t, size_t r) { return t.source() + ":" + std::to_string(t.line_of(r)); }

}  // namespace detail

const std::vector<std::string>& dataset_kinds() {
    static const std::vector<std::string> k = {"nih",      "chexpert", "chexpert-plus", "mimic",
                                               "padchest", "vindr",    "manifest"};
    return k;
}

std::vector<Record> load_dataset(const std::string& kind, const std::string& root,
                                 const std::map<std::string, std::string>& options) {
    static const std::map<std::string, std::set<std::string>> accepted = {
        {"nih", {}},
        {"chexpert", {"demographics", "uncertainty"}},
        {"chexpert-plus", {"csv", "demographics", "uncertainty"}},
        {"mimic", {"patients", "admissions", "uncertainty"}},
        {"padchest", {"csv"}},
        {"vindr", {"min-votes"}},
        {"manifest", {"csv"}}};
    auto it = accepted.find(kind);
    if (it == accepted.end()) {
        std::string list;
        for (const auto& k : dataset_kinds()) list += (list.empty() ? "" : ", ") + k;
        CXR_FAIL("unknown dataset kind '", kind, "' (expected one of: ", list, ")");
    }
    for (const auto& [key, value] : options) {
        if (!it->second.count(key)) {
            std::string list;
            for (const auto& k : it->second) list += (list.empty() ? "" : ", ") + k;
            CXR_FAIL("option '", key, "' does not apply to dataset kind '", kind, "' (accepted: ",
                     list.empty() ? "none" : list, ")");
        }
    }
    auto opt = [&](const std::string& key) {
        auto o = options.find(key);
        return o == options.end() ? std::string() : o->second;
    };
    CXR_CHECK(!root.empty(), "dataset root is empty");
    CXR_CHECK(fs::exists(root), "dataset root '", root, "' does not exist");
    if (kind == "nih") {
        NihOptions o;
        o.root = root;
        return load_nih(o);
    }
    if (kind == "chexpert") {
        ChexpertOptions o;
        o.root = root;
        o.demographics_csv = opt("demographics");
        if (!opt("uncertainty").empty()) o.uncertainty = parse_uncertainty_policy(opt("uncertainty"));
        return load_chexpert(o);
    }
    if (kind == "chexpert-plus") {
        ChexpertOptions o;
        o.root = root;
        o.columns = chexpert_plus_columns();
        const std::string csv = opt("csv").empty() ? detail::find_prefixed(root, "df_chexpert_plus") : opt("csv");
        CXR_CHECK(!csv.empty(), "CheXpert Plus: no df_chexpert_plus*.csv in '", root, "' (pass it as option csv)");
        o.csvs = {csv};
        o.demographics_csv = opt("demographics");
        if (!opt("uncertainty").empty()) o.uncertainty = parse_uncertainty_policy(opt("uncertainty"));
        auto records = load_chexpert(o);
        for (auto& r : records) r.dataset = r.site = "chexpert-plus";
        return records;
    }
    if (kind == "mimic") {
        MimicOptions o;
        o.root = root;
        o.patients_csv = opt("patients");
        o.admissions_csv = opt("admissions");
        if (!opt("uncertainty").empty()) o.uncertainty = parse_uncertainty_policy(opt("uncertainty"));
        return load_mimic(o);
    }
    if (kind == "padchest") {
        PadchestOptions o;
        o.root = root;
        o.csv = opt("csv");
        return load_padchest(o);
    }
    if (kind == "vindr") {
        VindrOptions o;
        o.root = root;
        const std::string mv = trim(opt("min-votes"));
        if (!mv.empty()) {
            CXR_CHECK(mv.find_first_not_of("0123456789") == std::string::npos && mv.size() <= 6,
                      "option min-votes: '", mv, "' is not a non-negative whole number");
            o.min_votes = std::stoi(mv);
        }
        return load_vindr(o);
    }
    // manifest
    std::string path = opt("csv");
    if (path.empty()) path = fs::is_directory(root) ? detail::find_file(root, "manifest.csv") : root;
    CXR_CHECK(!path.empty(), "no manifest.csv in '", root, "' (pass the manifest file as the root)");
    return load_manifest(path);
}

}  // namespace cxr::data
