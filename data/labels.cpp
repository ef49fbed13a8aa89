// Label and demographic harmonisation (tables and rules documented in data/labels.h).
#include "data/labels.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "tensor/error.h"

namespace cxr::data {

std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace((unsigned char)s[b])) ++b;
    while (e > b && std::isspace((unsigned char)s[e - 1])) --e;
    return s.substr(b, e - b);
}

std::string collapse_whitespace(const std::string& s) {
    std::string out;
    bool space = false;
    for (char c : s) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            space = !out.empty();
        } else {
            if (space) out += ' ';
            space = false;
            out += c;
        }
    }
    return out;
}

std::string to_lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
}

std::vector<std::string> split_string(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
        if (p == std::string::npos) break;
        start = p + 1;
    }
    return out;
}

static bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

const std::array<std::string, kNumChexpertLabels>& chexpert_labels() {
    static const std::array<std::string, kNumChexpertLabels> names = {
        "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
        "Edema",      "Consolidation",              "Pneumonia",    "Atelectasis",  "Pneumothorax",
        "Pleural Effusion", "Pleural Other",        "Fracture",     "Support Devices"};
    return names;
}

int label_index(const std::string& name) {
    const auto& names = chexpert_labels();
    for (int i = 0; i < kNumChexpertLabels; ++i)
        if (names[i] == name) return i;
    if (name == "Effusion") return label_index("Pleural Effusion");
    return -1;
}

const std::vector<std::pair<std::string, int>>& common_labels() {
    static const std::vector<std::pair<std::string, int>> list = {
        {"Atelectasis", label_index("Atelectasis")},   {"Cardiomegaly", label_index("Cardiomegaly")},
        {"Consolidation", label_index("Consolidation")}, {"Edema", label_index("Edema")},
        {"Effusion", label_index("Pleural Effusion")}, {"Pneumonia", label_index("Pneumonia")},
        {"Pneumothorax", label_index("Pneumothorax")}, {"No Finding", label_index("No Finding")}};
    return list;
}

const std::vector<LabelMapping>& nih_label_map() {
    static const std::vector<LabelMapping> t = {
        {"Atelectasis", "Atelectasis"},   {"Cardiomegaly", "Cardiomegaly"}, {"Consolidation", "Consolidation"},
        {"Edema", "Edema"},               {"Effusion", "Pleural Effusion"}, {"Pneumonia", "Pneumonia"},
        {"Pneumothorax", "Pneumothorax"}, {"No Finding", "No Finding"},     {"Nodule", "Lung Lesion"},
        {"Mass", "Lung Lesion"},          {"Infiltration", "Lung Opacity"}, {"Pleural_Thickening", "Pleural Other"}};
    return t;
}

const std::vector<LabelMapping>& padchest_label_map() {
    static const std::vector<LabelMapping> t = {
        {"normal", "No Finding"},
        {"cardiomegaly", "Cardiomegaly"},
        {"pleural effusion", "Pleural Effusion"},
        {"loculated pleural effusion", "Pleural Effusion"},
        {"loculated fissural effusion", "Pleural Effusion"},
        {"hydropneumothorax", "Pleural Effusion"},
        {"pneumothorax", "Pneumothorax"},
        {"hydropneumothorax", "Pneumothorax"},
        {"atelectasis", "Atelectasis"},
        {"laminar atelectasis", "Atelectasis"},
        {"lobar atelectasis", "Atelectasis"},
        {"segmental atelectasis", "Atelectasis"},
        {"round atelectasis", "Atelectasis"},
        {"total atelectasis", "Atelectasis"},
        {"consolidation", "Consolidation"},
        {"pneumonia", "Pneumonia"},
        {"atypical pneumonia", "Pneumonia"},
        {"pulmonary edema", "Edema"},
        {"nodule", "Lung Lesion"},
        {"multiple nodules", "Lung Lesion"},
        {"mass", "Lung Lesion"},
        {"pulmonary mass", "Lung Lesion"},
        {"infiltrates", "Lung Opacity"},
        {"alveolar pattern", "Lung Opacity"},
        {"interstitial pattern", "Lung Opacity"},
        {"ground glass pattern", "Lung Opacity"},
        {"pleural thickening", "Pleural Other"},
        {"apical pleural thickening", "Pleural Other"},
        {"calcified pleural thickening", "Pleural Other"},
        {"fracture", "Fracture"},
        {"rib fracture", "Fracture"},
        {"clavicle fracture", "Fracture"},
        {"vertebral fracture", "Fracture"},
        {"humeral fracture", "Fracture"},
        {"mediastinal enlargement", "Enlarged Cardiomediastinum"},
        {"pacemaker", "Support Devices"},
        {"dual chamber device", "Support Devices"},
        {"single chamber device", "Support Devices"},
        {"electrical device", "Support Devices"},
        {"nsg tube", "Support Devices"},
        {"endotracheal tube", "Support Devices"},
        {"tracheostomy tube", "Support Devices"},
        {"chest drain tube", "Support Devices"},
        {"central venous catheter", "Support Devices"},
        {"central venous catheter via jugular vein", "Support Devices"},
        {"central venous catheter via subclavian vein", "Support Devices"},
        {"central venous catheter via umbilical vein", "Support Devices"}};
    return t;
}

const std::vector<LabelMapping>& vindr_label_map() {
    static const std::vector<LabelMapping> t = {
        {"No finding", "No Finding"},         {"Cardiomegaly", "Cardiomegaly"},
        {"Atelectasis", "Atelectasis"},       {"Consolidation", "Consolidation"},
        {"Edema", "Edema"},                   {"Pleural effusion", "Pleural Effusion"},
        {"Pneumonia", "Pneumonia"},           {"Pneumothorax", "Pneumothorax"},
        {"Nodule/Mass", "Lung Lesion"},       {"Lung tumor", "Lung Lesion"},
        {"Lung Opacity", "Lung Opacity"},     {"Infiltration", "Lung Opacity"},
        {"Pleural thickening", "Pleural Other"}, {"Rib fracture", "Fracture"},
        {"Clavicle fracture", "Fracture"}};
    return t;
}

void apply_findings(const std::vector<std::string>& findings, const std::vector<LabelMapping>& table,
                    bool ignore_case, Record& record) {
    auto norm = [&](const std::string& s) { return ignore_case ? to_lower(trim(s)) : trim(s); };
    for (const auto& m : table) {
        const int idx = label_index(m.chexpert);
        CXR_CHECK(idx >= 0, "label table names an unknown CheXpert label '", m.chexpert, "'");
        if (record.labels[idx] != LabelValue::positive) record.labels[idx] = LabelValue::negative;
    }
    for (const auto& f : findings) {
        const std::string key = norm(f);
        if (key.empty()) continue;
        record.source_findings.push_back(trim(f));
        for (const auto& m : table)
            if (norm(m.source) == key) record.labels[label_index(m.chexpert)] = LabelValue::positive;
    }
}

LabelValue parse_label_cell(const std::string& cell, const std::string& where) {
    const std::string v = trim(cell);
    if (v.empty()) return LabelValue::unknown;
    if (v == "1" || v == "1.0") return LabelValue::positive;
    if (v == "0" || v == "0.0" || v == "-0.0") return LabelValue::negative;
    if (v == "-1" || v == "-1.0") return LabelValue::uncertain;
    CXR_FAIL(where, ": label value '", cell, "' is not one of 1, 0, -1 or blank");
}

std::string label_cell(LabelValue v) {
    switch (v) {
        case LabelValue::positive: return "1";
        case LabelValue::negative: return "0";
        case LabelValue::uncertain: return "-1";
        default: return "";
    }
}

UncertaintyPolicy parse_uncertainty_policy(const std::string& name) {
    std::string n = to_lower(trim(name));
    if (starts_with(n, "u-")) n = n.substr(2);
    if (n == "keep") return UncertaintyPolicy::keep;
    if (n == "zeros") return UncertaintyPolicy::zeros;
    if (n == "ones") return UncertaintyPolicy::ones;
    if (n == "ignore") return UncertaintyPolicy::ignore;
    CXR_FAIL("unknown uncertainty policy '", name, "' (expected keep, zeros, ones or ignore)");
}

void apply_uncertainty_policy(Record& record, UncertaintyPolicy policy) {
    if (policy == UncertaintyPolicy::keep) return;
    const LabelValue to = policy == UncertaintyPolicy::zeros  ? LabelValue::negative
                          : policy == UncertaintyPolicy::ones ? LabelValue::positive
                                                              : LabelValue::unknown;
    for (auto& v : record.labels)
        if (v == LabelValue::uncertain) v = to;
}

Sex parse_sex(const std::string& s) {
    const std::string v = to_lower(trim(s));
    if (v == "m" || v == "male") return Sex::male;
    if (v == "f" || v == "female") return Sex::female;
    return Sex::unknown;
}

std::string sex_code(Sex s) { return s == Sex::male ? "M" : s == Sex::female ? "F" : ""; }
std::string sex_word(Sex s) { return s == Sex::male ? "male" : s == Sex::female ? "female" : ""; }

View parse_view(const std::string& s) {
    const std::string v = to_lower(trim(s));
    if (v.empty()) return View::unknown;
    if (v == "pa" || v == "pa_horizontal" || v == "posteroanterior" || v == "postero-anterior") return View::pa;
    if (v == "ap" || v == "ap_horizontal" || v == "ap_vertical" || v == "ap supine" || v == "anteroposterior" ||
        v == "antero-posterior")
        return View::ap;
    if (v == "l" || v == "ll" || v == "rl" || v == "lat" || v == "lateral" || v == "xtable lateral")
        return View::lateral;
    return View::other;
}

std::string view_name(View v) {
    switch (v) {
        case View::pa: return "PA";
        case View::ap: return "AP";
        case View::lateral: return "LAT";
        case View::other: return "other";
        default: return "";
    }
}

std::string age_bin(double age) {
    if (std::isnan(age) || age < 18) return "";
    if (age < 40) return "18-40";
    if (age < 60) return "40-60";
    if (age < 80) return "60-80";
    return "80+";
}

const std::vector<std::string>& age_bins() {
    static const std::vector<std::string> bins = {"18-40", "40-60", "60-80", "80+"};
    return bins;
}

std::string race_name(Race r) {
    switch (r) {
        case Race::asian: return "Asian";
        case Race::black: return "Black";
        case Race::hispanic: return "Hispanic";
        case Race::white: return "White";
        default: return "other/unknown";
    }
}

const std::vector<Race>& known_races() {
    static const std::vector<Race> r = {Race::asian, Race::black, Race::hispanic, Race::white};
    return r;
}

Race race_from_mimic(const std::string& value) {
    std::string v = trim(value);
    for (char& c : v) c = (char)std::toupper((unsigned char)c);
    if (starts_with(v, "WHITE")) return Race::white;
    if (starts_with(v, "BLACK")) return Race::black;
    if (starts_with(v, "ASIAN")) return Race::asian;
    if (starts_with(v, "HISPANIC") || v.find("LATINO") != std::string::npos || v == "SOUTH AMERICAN")
        return Race::hispanic;
    return Race::other_unknown;
}

Race race_from_chexpert(const std::string& primary_race, const std::string& ethnicity) {
    const std::string r = to_lower(trim(primary_race)), e = to_lower(trim(ethnicity));
    if (e == "hispanic/latino" || e == "hispanic" || e == "hispanic or latino") return Race::hispanic;
    if (r.find("hispanic") != std::string::npos && r.find("non-hispanic") == std::string::npos)
        return Race::hispanic;
    if (starts_with(r, "white")) return Race::white;
    if (starts_with(r, "black")) return Race::black;
    if (r.find("asian") != std::string::npos) return Race::asian;
    return Race::other_unknown;
}

Race race_from_name(const std::string& name) {
    const std::string v = to_lower(trim(name));
    if (v == "asian") return Race::asian;
    if (v == "black") return Race::black;
    if (v == "hispanic") return Race::hispanic;
    if (v == "white") return Race::white;
    return Race::other_unknown;
}

}  // namespace cxr::data
