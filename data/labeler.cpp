// The rule-based CheXpert report labeler and its MeSH agreement statistics (every rule in data/labeler.h).
#include "data/labeler.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <regex>

#include "data/labels.h"
#include "tensor/error.h"

namespace cxr::data {

namespace {

struct Phrase {
    int label;
    std::regex re;
    bool explicit_normal;
    std::vector<std::string> keys;  // the regex can only match a clause holding one of these (a fast pre-check)
};

std::regex rx(const std::string& pattern) { return std::regex(pattern, std::regex::ECMAScript | std::regex::optimize); }

// Clause text between phrases: anything but a clause end (clauses hold no '.', ';').
const std::string kGap = "[^.;]*?";

const std::vector<Phrase>& phrases() {
    static const std::vector<Phrase> list = [] {
        std::vector<Phrase> p;
        auto add = [&](const char* label, const std::string& pattern, std::vector<std::string> keys,
                       bool normal = false) {
            const int idx = label_index(label);
            CXR_CHECK(idx >= 0, "labeler: unknown label ", label);
            p.push_back({idx, rx("\\b(?:" + pattern + ")\\b"), normal, std::move(keys)});
        };
        add("Enlarged Cardiomediastinum",
            "enlarged cardiomediastin\\w*|cardiomediastinal (?:silhouette|contour)s?" + kGap +
                "(?:enlarged|widened|prominent)|(?:widened|enlarged) mediastinum|mediastinal (?:widening|enlargement)"
                "|mediastinum" + kGap + "(?:widened|enlarged|prominent)", {"cardiomediastin", "mediastin"});
        add("Enlarged Cardiomediastinum",
            "(?:normal|unremarkable) cardiomediastinal|cardiomediastinal (?:silhouette|contour)s?" + kGap +
                "(?:normal|within normal limits|unremarkable)",
            {"cardiomediastinal"}, true);
        add("Cardiomegaly",
            "cardiomegaly|cardiac enlargement|enlarged (?:heart|cardiac silhouette)|enlargement of the "
            "(?:heart|cardiac silhouette)|(?:heart|cardiac silhouette|cardiac shadow|cardiac size)" + kGap + "enlarged", {"cardiomegaly", "enlarge"});
        add("Cardiomegaly",
            "normal (?:heart size|heart|cardiac silhouette|cardiac size)|(?:heart|cardiac silhouette|cardiac size)" +
                kGap + "(?:normal|within normal limits|unremarkable)",
            {"normal"}, true);
        add("Lung Opacity",
            "opacit(?:y|ies)|opacification|infiltrat(?:e|es|ion|ive)|airspace (?:disease|process|density)|haziness"
            "|ground glass|reticular|reticulonodular", {"opaci", "infiltrat", "airspace", "haziness", "ground glass", "reticul"});
        add("Lung Lesion",
            "nodules?|nodular (?:density|opacity)|mass(?:es)?|lesions?|tumou?r|neoplasm|carcinoma|malignancy", {"nodul", "mass", "lesion", "tumo", "neoplasm", "carcinoma", "malignan"});
        add("Edema",
            "edema|chf|heart failure|(?:vascular|venous|pulmonary) congestion|vascular (?:prominence|engorgement)", {"edema", "chf", "failure", "congestion", "vascular"});
        add("Consolidation", "consolidation|consolidative|consolidated", {"consolidat"});
        add("Pneumonia", "pneumonia|pneumonic|bronchopneumonia|infection|infectious process", {"pneumoni", "infect"});
        add("Atelectasis", "atelectasis|atelectatic|atelectases|(?:lobar|lung|lobe) collapse|collapse of", {"atelecta", "collapse"});
        add("Pneumothorax", "pneumothorax|pneumothoraces|hydropneumothorax", {"pneumothora"});
        add("Pleural Effusion",
            "effusions?|hydrothorax|pleural fluid|blunt(?:ed|ing) (?:of )?(?:the )?(?:\\w+ )?costophrenic|"
            "costophrenic" + kGap + "blunt\\w*", {"effusion", "hydrothorax", "pleural fluid", "costophrenic"});
        add("Pleural Other",
            "pleural thickening|thickening of the pleura|pleural plaques?|pleural calcifications?|pleural scarring"
            "|fibrothorax|apical caps?", {"pleura", "fibrothorax", "apical cap"});
        add("Fracture", "fractures?|fractured", {"fracture"});
        add("Support Devices",
            "pacemaker|pacer|defibrillator|aicd|icd|catheters?|picc|central (?:venous )?line|port-a-cath|portacath"
            "|(?:endotracheal|tracheostomy|nasogastric|ng|chest|feeding) tubes?|stents?|(?:surgical|vascular) clips?"
            "|sternotomy wires?|clips|valve replacement|prosthetic (?:\\w+ )?valve|hardware|devices?|stimulator",
            {"pace", "defibrillator", "icd", "cath", "picc", "line", "tube", "stent", "clip", "wire", "valve", "prosthe", "hardware", "device", "stimulator"});
        return p;
    }();
    return list;
}

const std::regex& negated_uncertainty() {
    static const std::regex r = rx(
        "\\b(?:cannot exclude|cannot be excluded|can not be excluded|not excluded|cannot rule out|not ruled out|rule "
        "out|difficult to exclude|not be excluded)\\b|\\br/o\\b");
    return r;
}
const std::regex& negation_pre() {
    static const std::regex r = rx(
        "\\b(?:no|not|without|negative for|free of|clear of|absence of|resolution of|resolved|nor|neither|removal "
        "of)\\b|n't\\b");
    return r;
}
const std::regex& negation_post() {
    static const std::regex r = rx(
        "\\b(?:not seen|not identified|not visualized|not present|not evident|not appreciated|not demonstrated|absent"
        "|has resolved|have resolved|no longer|been removed)\\b");
    return r;
}
const std::regex& uncertainty() {
    static const std::regex r = rx(
        "\\b(?:may|might|could|possible|possibly|probable|probably|likely|suggest|suggests|suggestive|suggesting"
        "|suspicious|suspect|suspected|concerning for|concern for|versus|vs|question of|questionable|equivocal"
        "|differential|consider|considered|borderline|favor|favored|represent|represents|not clear|indeterminate)\\b"
        "|\\band/or\\b");
    return r;
}
const std::regex& pseudo_negation() {
    static const std::regex r = rx(
        "\\b(?:no significant change|no interval change|no change|not significantly changed|without interval "
        "change|without change|no increase|no decrease|not only)\\b");
    return r;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}


bool any_match(const std::string& s, const std::regex& r) { return std::regex_search(s, r); }

}  // namespace

std::vector<std::vector<std::string>> report_clauses(const std::string& text) {
    std::string t = to_lower(text);
    replace_all(t, "pericardial effusion", "pericardial collection");
    replace_all(t, "granulomatous infection", "granulomatous disease");
    // Sentences.
    std::vector<std::string> sentences;
    std::string cur;
    for (size_t i = 0; i < t.size(); ++i) {
        const char c = t[i];
        const bool decimal = c == '.' && i > 0 && i + 1 < t.size() && std::isdigit((unsigned char)t[i - 1]) &&
                             std::isdigit((unsigned char)t[i + 1]);
        if (c == '!' || c == '?' || c == ';' || c == '\n' || c == '\r' || (c == '.' && !decimal)) {
            sentences.push_back(collapse_whitespace(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    sentences.push_back(collapse_whitespace(cur));
    static const std::vector<std::string> breakers = {" but ",         " however",    " although ", " though ",
                                                      " except ",      " aside from ", " apart from ", " otherwise ",
                                                      ", which ",      ", there ",    ", with ",    " and there "};
    std::vector<std::vector<std::string>> out;
    for (const std::string& s : sentences) {
        if (s.empty()) continue;
        std::vector<size_t> cuts;
        for (const auto& b : breakers)
            for (size_t p = s.find(b); p != std::string::npos; p = s.find(b, p + 1)) cuts.push_back(p);
        std::sort(cuts.begin(), cuts.end());
        std::vector<std::string> clauses;
        size_t start = 0;
        for (size_t p : cuts) {
            if (p <= start) continue;
            clauses.push_back(collapse_whitespace(s.substr(start, p - start)));
            start = p;
        }
        clauses.push_back(collapse_whitespace(s.substr(start)));
        std::vector<std::string> kept;
        for (auto& c : clauses) {
            // A clause starting with ", which" etc. keeps its words, not the comma.
            while (!c.empty() && (c[0] == ',' || c[0] == ' ')) c.erase(0, 1);
            if (!c.empty()) kept.push_back(c);
        }
        if (!kept.empty()) out.push_back(kept);
    }
    return out;
}

LabelerResult label_report(const std::string& text) {
    LabelerResult res;
    res.labels.fill(LabelValue::unknown);
    const auto sentences = report_clauses(text);
    for (size_t si = 0; si < sentences.size(); ++si) {
        for (size_t ci = 0; ci < sentences[si].size(); ++ci) {
            const std::string& clause = sentences[si][ci];
            std::vector<const Phrase*> candidates;
            for (const Phrase& ph : phrases())
                if (std::any_of(ph.keys.begin(), ph.keys.end(),
                                [&](const std::string& k) { return clause.find(k) != std::string::npos; }))
                    candidates.push_back(&ph);
            if (candidates.empty()) continue;
            // Cue text: pseudo-negations blanked (same length, so positions agree with the clause).
            std::string cues = clause;
            for (std::sregex_iterator it(clause.begin(), clause.end(), pseudo_negation()), end; it != end; ++it)
                std::fill(cues.begin() + it->position(), cues.begin() + it->position() + it->length(), '_');
            const bool neg_uncertain = any_match(cues, negated_uncertainty());
            const bool uncertain = any_match(cues, uncertainty());
            std::vector<size_t> neg_starts, post_starts;
            for (std::sregex_iterator it(cues.begin(), cues.end(), negation_pre()), end; it != end; ++it)
                neg_starts.push_back((size_t)it->position());
            for (std::sregex_iterator it(cues.begin(), cues.end(), negation_post()), end; it != end; ++it)
                post_starts.push_back((size_t)it->position());
            for (const Phrase* php : candidates) {
                const Phrase& ph = *php;
                for (std::sregex_iterator it(clause.begin(), clause.end(), ph.re), end; it != end; ++it) {
                    const size_t b = (size_t)it->position(), e = b + (size_t)it->length();
                    LabelMention m;
                    m.label = ph.label;
                    m.phrase = it->str();
                    m.sentence = si;
                    m.clause = ci;
                    if (ph.explicit_normal) {
                        m.value = LabelValue::negative;
                        m.rule = "explicit-normal";
                    } else if (neg_uncertain) {
                        m.value = LabelValue::uncertain;
                        m.rule = "negated-uncertainty";
                    } else if (std::any_of(neg_starts.begin(), neg_starts.end(), [&](size_t p) { return p < e; })) {
                        m.value = LabelValue::negative;
                        m.rule = "negation";
                    } else if (std::any_of(post_starts.begin(), post_starts.end(), [&](size_t p) { return p >= e; })) {
                        m.value = LabelValue::negative;
                        m.rule = "post-negation";
                    } else if (uncertain) {
                        m.value = LabelValue::uncertain;
                        m.rule = "uncertainty";
                    } else {
                        m.value = LabelValue::positive;
                        m.rule = "mention";
                    }
                    res.mentions.push_back(m);
                }
            }
        }
    }
    // Aggregation: positive > uncertain > negative > unknown.
    auto rank = [](LabelValue v) {
        switch (v) {
            case LabelValue::positive: return 3;
            case LabelValue::uncertain: return 2;
            case LabelValue::negative: return 1;
            default: return 0;
        }
    };
    for (const auto& m : res.mentions)
        if (rank(m.value) > rank(res.labels[m.label])) res.labels[m.label] = m.value;
    const int no_finding = label_index("No Finding"), devices = label_index("Support Devices");
    bool finding = false;
    for (int k = 0; k < kNumChexpertLabels; ++k)
        if (k != no_finding && k != devices &&
            (res.labels[k] == LabelValue::positive || res.labels[k] == LabelValue::uncertain))
            finding = true;
    res.labels[no_finding] = finding ? LabelValue::negative : LabelValue::positive;
    return res;
}

namespace {

const std::vector<std::pair<std::string, std::vector<std::string>>>& mesh_table() {
    static const std::vector<std::pair<std::string, std::vector<std::string>>> t = {
        {"No Finding", {"normal"}},
        {"Cardiomegaly", {"Cardiomegaly"}},
        {"Lung Opacity", {"Opacity", "Airspace Disease", "Infiltrate"}},
        {"Lung Lesion", {"Nodule", "Mass"}},
        {"Edema", {"Pulmonary Edema", "Pulmonary Congestion", "Heart Failure"}},
        {"Consolidation", {"Consolidation"}},
        {"Pneumonia", {"Pneumonia"}},
        {"Atelectasis", {"Pulmonary Atelectasis"}},
        {"Pneumothorax", {"Pneumothorax", "Hydropneumothorax", "Hemopneumothorax"}},
        {"Pleural Effusion", {"Pleural Effusion", "Hydropneumothorax"}},
        {"Fracture", {"Fractures, Bone"}},
        {"Support Devices",
         {"Catheters, Indwelling", "Implanted Medical Device", "Tube, Inserted", "Medical Device", "Stents",
          "Surgical Instruments"}},
    };
    return t;
}

}  // namespace

const std::vector<int>& mesh_compared_labels() {
    static const std::vector<int> labels = [] {
        std::vector<int> v;
        for (const auto& [name, codes] : mesh_table()) v.push_back(label_index(name));
        std::sort(v.begin(), v.end());
        return v;
    }();
    return labels;
}

std::array<bool, kNumChexpertLabels> mesh_reference(const std::string& mesh_major) {
    std::array<bool, kNumChexpertLabels> out{};
    for (const std::string& code : split_string(mesh_major, '|')) {
        const std::string term = trim(split_string(code, '/')[0]);
        for (const auto& [name, codes] : mesh_table())
            if (std::find(codes.begin(), codes.end(), term) != codes.end()) out[label_index(name)] = true;
    }
    return out;
}

void Agreement::add(bool labeler, bool reference) {
    ++n;
    if (labeler && reference) ++tp;
    else if (labeler) ++fp;
    else if (reference) ++fn;
    else ++tn;
}

double Agreement::sensitivity() const {
    return tp + fn ? (double)tp / (double)(tp + fn) : std::numeric_limits<double>::quiet_NaN();
}
double Agreement::specificity() const {
    return tn + fp ? (double)tn / (double)(tn + fp) : std::numeric_limits<double>::quiet_NaN();
}
double Agreement::kappa() const {
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    const double N = (double)n;
    const double po = (double)(tp + tn) / N;
    const double pe = ((double)(tp + fp) / N) * ((double)(tp + fn) / N) + ((double)(fn + tn) / N) * ((double)(fp + tn) / N);
    return pe >= 1.0 ? std::numeric_limits<double>::quiet_NaN() : (po - pe) / (1.0 - pe);
}

}  // namespace cxr::data
