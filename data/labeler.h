// A rule-based report labeler: the 14 CheXpert observations (data/labels.h order) from free-text radiology
// report, in the spirit of the CheXpert labeler (Irvin et al., AAAI 2019: mention extraction, then negation and
// uncertainty classification, then aggregation) but with surface rules only (no parser). Every rule is here.
//
// 1. NORMALISATION. The text is lower-cased; "pericardial effusion" is rewritten "pericardial collection" so that
//    it is not a pleural-effusion mention, and "granulomatous infection" (old, healed) "granulomatous disease" so
//    that it is not a pneumonia mention.
// 2. SENTENCES AND CLAUSES. Sentences end at '!', '?', ';', a line break, or a '.' that is not between two digits
//    ("2.5 cm" stays whole). A sentence is cut into clauses just before each scope breaker:
//      " but ", " however", " although ", " though ", " except ", " aside from ", " apart from ", " otherwise ",
//      ", which ", ", there ", ", with ", " and there ".
//    Negation and uncertainty never reach across a clause or sentence boundary.
// 3. MENTIONS (regular expressions on the clause, word-bounded; a match is a mention of its label):
//    Enlarged Cardiomediastinum: enlarged cardiomediastinum; cardiomediastinal silhouette/contour ... enlarged/
//      widened/prominent; widened/enlarged mediastinum; mediastinal widening/enlargement; mediastinum ... widened/
//      enlarged/prominent.
//    Cardiomegaly: cardiomegaly; cardiac enlargement; enlarged heart/cardiac silhouette; enlargement of the
//      heart/cardiac silhouette; heart/heart size/cardiac silhouette/cardiac shadow/cardiac size ... enlarged
//      (anything but a clause end in between, so "heart is not enlarged" is a mention with an inner negation).
//    Lung Opacity: opacity, opacities, opacification, infiltrate(s)/infiltration/infiltrative, airspace disease/
//      process/density, haziness, ground glass, reticular/reticulonodular (markings, opacities).
//    Lung Lesion: nodule(s), nodular density/opacity, mass(es), lesion(s), tumor, neoplasm, carcinoma, malignancy.
//    Edema: edema, chf, heart failure, vascular/venous/pulmonary congestion, vascular prominence/engorgement.
//    Consolidation: consolidation, consolidative, consolidated.
//    Pneumonia: pneumonia, pneumonic, bronchopneumonia, infection, infectious process.
//    Atelectasis: atelectasis, atelectatic, atelectases, collapse (lobar/lung/lobe collapse, collapse of).
//    Pneumothorax: pneumothorax, pneumothoraces, hydropneumothorax.
//    Pleural Effusion: effusion(s) (pericardial ones excluded by rule 1), hydrothorax, pleural fluid, blunting/
//      blunted costophrenic angle(s) ("costophrenic ... blunt").
//    Pleural Other: pleural thickening, thickening of the pleura, pleural plaque(s), pleural calcification,
//      pleural scarring, fibrothorax, apical cap(s).
//    Fracture: fracture(s), fractured.
//    Support Devices: pacemaker, pacer, defibrillator, aicd, icd, catheter, picc, central line, central venous
//      line, port-a-cath/portacath, (endotracheal, tracheostomy, nasogastric, ng, chest, feeding) tube(s),
//      stent(s), clips, sternotomy wires, valve replacement, prosthetic (...) valve, hardware, device(s),
//      stimulator.
//    EXPLICIT NORMALS (a match gives the label a negative mention directly):
//      Cardiomegaly: normal heart size/heart/cardiac silhouette/cardiac size; heart (size)/cardiac silhouette ...
//        normal / within normal limits / unremarkable.
//      Enlarged Cardiomediastinum: normal cardiomediastinal ...; cardiomediastinal silhouette/contour(s) ...
//        normal / within normal limits / unremarkable.
// 4. CLASSIFYING A MENTION, first rule that applies:
//    a. negated uncertainty anywhere in the clause -> uncertain: "cannot exclude", "cannot be excluded",
//       "can not be excluded", "not excluded", "cannot rule out", "not ruled out", "rule out", "r/o",
//       "difficult to exclude", "not be excluded";
//    b. a negation cue that starts before the mention ends (same clause) -> negative: "no", "not", "without",
//       "negative for", "free of", "clear of", "absence of", "resolution of", "resolved", "nor", "neither",
//       "n't", "removal of";
//    c. a post-negation after the mention (same clause) -> negative: "not seen", "not identified", "not
//       visualized", "not present", "not evident", "not appreciated", "not demonstrated", "absent", "has
//       resolved", "have resolved", "no longer", "been removed";
//    d. an uncertainty cue anywhere in the clause -> uncertain: "may", "might", "could", "possible",
//       "possibly", "probable", "probably", "likely", "suggest", "suggests", "suggestive", "suggesting",
//       "suspicious", "suspect", "suspected", "concerning for", "concern for", "versus", "vs", "question of",
//       "questionable", "equivocal", "differential", "consider", "considered", "borderline", "and/or",
//       "favor", "favored", "represent", "represents", "not clear", "indeterminate";
//    e. otherwise -> positive.
//    Before rules b-d, pseudo-negations are blanked out of the clause so that they are no cue: "no change",
//    "no significant change", "no interval change", "not significantly changed", "without change", "without
//    interval change", "no increase", "no decrease", "not only".
// 5. AGGREGATION per label over its mentions: positive if any mention is positive, else uncertain if any is
//    uncertain, else negative if any is negative, else unknown (not mentioned).
// 6. NO FINDING: positive when no label other than Support Devices is positive or uncertain (mentioned or not,
//    as the CheXpert labeler does); negative otherwise.
//
// MeSH REFERENCE (Indiana University collection, `mesh_major` column, '|'-separated "Term/qualifier/..."):
//   mesh_reference() marks a compared label positive when any code's first term is one of:
//     No Finding: normal; Cardiomegaly: Cardiomegaly; Pleural Effusion: Pleural Effusion, Hydropneumothorax;
//     Atelectasis: Pulmonary Atelectasis; Pneumothorax: Pneumothorax, Hydropneumothorax, Hemopneumothorax;
//     Edema: Pulmonary Edema, Pulmonary Congestion, Heart Failure; Consolidation: Consolidation;
//     Pneumonia: Pneumonia; Lung Opacity: Opacity, Airspace Disease, Infiltrate; Lung Lesion: Nodule, Mass;
//     Fracture: Fractures, Bone; Support Devices: Catheters, Indwelling, Implanted Medical Device, Tube,
//     Inserted, Medical Device, Stents, Surgical Instruments.
//   and negative otherwise (MeSH lists only what is present). Uncertain labeler output counts as positive in
//   the comparison (U-ones), since MeSH indexers code hedged findings too ("Cardiomegaly/borderline").
#pragma once

#include <array>
#include <string>
#include <vector>

#include "data/record.h"

namespace cxr::data {

struct LabelMention {
    int label = -1;            // CheXpert index
    std::string phrase;        // the matched text
    LabelValue value = LabelValue::unknown;
    std::string rule;          // "explicit-normal", "negated-uncertainty", "negation", "post-negation",
                               // "uncertainty" or "mention"
    size_t sentence = 0, clause = 0;
};

struct LabelerResult {
    std::array<LabelValue, kNumChexpertLabels> labels;
    std::vector<LabelMention> mentions;
};

LabelerResult label_report(const std::string& text);
// Clauses of a report by rule 2 (lower-cased), grouped by sentence; exposed for tests.
std::vector<std::vector<std::string>> report_clauses(const std::string& text);

// ---- evaluation against MeSH codes ----
// The labels compared with the MeSH reference (CheXpert indices), in CheXpert order.
const std::vector<int>& mesh_compared_labels();
// Reference positives from a mesh_major string (rule above): one bool per CheXpert label (only compared ones
// can be true).
std::array<bool, kNumChexpertLabels> mesh_reference(const std::string& mesh_major);

struct Agreement {
    int64_t n = 0, tp = 0, fp = 0, fn = 0, tn = 0;  // labeler vs reference
    int64_t labeler_positive() const { return tp + fp; }
    int64_t reference_positive() const { return tp + fn; }
    double sensitivity() const;  // tp / (tp + fn); NaN when no reference positive
    double specificity() const;  // tn / (tn + fp); NaN when no reference negative
    double kappa() const;        // Cohen's kappa: (p_o - p_e) / (1 - p_e); NaN when p_e == 1
    void add(bool labeler, bool reference);
};

}  // namespace cxr::data
