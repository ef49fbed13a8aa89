// Label and demographic harmonisation: the CheXpert label set, the mapping tables from each dataset's finding
// names to it, the age bins and race/ethnicity categories, and the CheXpert uncertainty policies.
//
// LABELS
//   The 14 CheXpert observations (Irvin et al., AAAI 2019), in the column order of CheXpert's train.csv:
//     No Finding, Enlarged Cardiomediastinum, Cardiomegaly, Lung Opacity, Lung Lesion, Edema, Consolidation,
//     Pneumonia, Atelectasis, Pneumothorax, Pleural Effusion, Pleural Other, Fracture, Support Devices.
//   MIMIC-CXR-JPG's mimic-cxr-2.0.0-chexpert.csv uses the same 14 names (alphabetical column order).
//   The 8 labels common to the test sets of the RoentGen-v2 study: Atelectasis, Cardiomegaly, Consolidation,
//   Edema, Effusion (= CheXpert "Pleural Effusion"), Pneumonia, Pneumothorax, No Finding.
//
// MAPPING TABLES (source finding -> CheXpert label). For a dataset that lists the findings it found (NIH,
// PadChest, VinDr), a CheXpert label that appears as a target in the dataset's table is positive when any
// listed finding maps to it and negative otherwise; a CheXpert label with no source in the table stays unknown
// (the dataset does not look for it). Every listed finding is also kept verbatim in Record::source_findings.
//   NIH ChestX-ray14 (Wang et al., CVPR 2017; Finding Labels, '|'-separated):
//     Atelectasis->Atelectasis, Cardiomegaly->Cardiomegaly, Consolidation->Consolidation, Edema->Edema,
//     Effusion->Pleural Effusion, Pneumonia->Pneumonia, Pneumothorax->Pneumothorax, No Finding->No Finding,
//     Nodule->Lung Lesion, Mass->Lung Lesion, Infiltration->Lung Opacity (a loose match: CheXpert's Lung Opacity
//     is broader), Pleural_Thickening->Pleural Other. Emphysema, Fibrosis and Hernia have no CheXpert counterpart
//     (kept in source_findings only). Enlarged Cardiomediastinum, Fracture, Support Devices: unknown.
//   PadChest (Bustos et al., Med. Image Anal. 2020; Labels, a Python-style list of lower-case UMLS-based terms):
//     normal->No Finding; cardiomegaly->Cardiomegaly; pleural effusion, loculated pleural effusion,
//     loculated fissural effusion, hydropneumothorax->Pleural Effusion; pneumothorax, hydropneumothorax->
//     Pneumothorax; atelectasis, laminar atelectasis, lobar atelectasis, segmental atelectasis, round atelectasis,
//     total atelectasis->Atelectasis; consolidation->Consolidation; pneumonia, atypical pneumonia->Pneumonia;
//     pulmonary edema->Edema; nodule, multiple nodules, mass, pulmonary mass->Lung Lesion; infiltrates,
//     alveolar pattern, interstitial pattern, ground glass pattern->Lung Opacity; pleural thickening, apical
//     pleural thickening, calcified pleural thickening->Pleural Other; fracture, rib fracture, clavicle fracture,
//     vertebral fracture, humeral fracture->Fracture; mediastinal enlargement->Enlarged Cardiomediastinum;
//     pacemaker, dual chamber device, single chamber device, electrical device, NSG tube, endotracheal tube,
//     tracheostomy tube, chest drain tube, central venous catheter, central venous catheter via jugular vein,
//     central venous catheter via subclavian vein, central venous catheter via umbilical vein->Support Devices.
//     Matching ignores case and surrounding spaces.
//   VinDr-CXR (Nguyen et al., Sci. Data 2022; image_labels_*.csv, one 0/1 column per finding):
//     No finding->No Finding, Cardiomegaly->Cardiomegaly, Atelectasis->Atelectasis, Consolidation->
//     Consolidation, Edema->Edema, Pleural effusion->Pleural Effusion, Pneumonia->Pneumonia, Pneumothorax->
//     Pneumothorax, Nodule/Mass->Lung Lesion, Lung tumor->Lung Lesion, Lung Opacity->Lung Opacity,
//     Infiltration->Lung Opacity, Pleural thickening->Pleural Other, Rib fracture->Fracture, Clavicle fracture->
//     Fracture. Enlarged Cardiomediastinum and Support Devices: unknown.
//
// AGE BINS: "18-40", "40-60", "60-80", "80+" as [18, 40), [40, 60), [60, 80), [80, inf) — the same rule as
//   metrics/fairness.h; ages below 18 and unknown ages fall in no bin ("").
//
// RACE/ETHNICITY (categories Asian, Black, Hispanic, White, other/unknown):
//   MIMIC-IV admissions.csv, v1 column `ethnicity` and v2 column `race` (upper-case strings, compared without
//   regard to case): a value starting with "WHITE" (WHITE, WHITE - OTHER EUROPEAN, WHITE - RUSSIAN, WHITE -
//   BRAZILIAN, ...) -> White; starting with "BLACK" (BLACK/AFRICAN AMERICAN, BLACK/CAPE VERDEAN, BLACK/AFRICAN,
//   BLACK/CARIBBEAN ISLAND) -> Black; starting with "ASIAN" (ASIAN, ASIAN - CHINESE, ASIAN - SOUTH EAST ASIAN,
//   ...) -> Asian; starting with "HISPANIC" or containing "LATINO" (HISPANIC/LATINO, HISPANIC OR LATINO,
//   HISPANIC/LATINO - PUERTO RICAN, ...) or equal to "SOUTH AMERICAN" -> Hispanic; anything else (OTHER,
//   UNKNOWN, UNABLE TO OBTAIN, PATIENT DECLINED TO ANSWER, AMERICAN INDIAN/ALASKA NATIVE, NATIVE HAWAIIAN OR
//   OTHER PACIFIC ISLANDER, MULTIPLE RACE/ETHNICITY, PORTUGUESE, blank) -> other/unknown.
//   CheXpert demographics (the CHEXPERT DEMO sheet exported to CSV: PATIENT, GENDER, AGE_AT_CXR, PRIMARY_RACE,
//   ETHNICITY): Hispanic when ETHNICITY is "Hispanic/Latino" or PRIMARY_RACE names Hispanic without "non-"
//   ("White, Hispanic", "Other, Hispanic"); otherwise PRIMARY_RACE starting with "White" -> White, starting with
//   "Black" -> Black, containing "Asian" -> Asian ("Asian", "Asian, non-Hispanic", "Asian - Historical Conv");
//   anything else (Other, Unknown, Patient Refused, Native Hawaiian or Other Pacific Islander, American Indian or
//   Alaska Native, Race and Ethnicity Unknown, blank) -> other/unknown. Hispanic ethnicity takes precedence, as
//   in MIMIC where HISPANIC/LATINO is one of the race values.
//   Manifest CSV: the category names themselves (Asian, Black, Hispanic, White; anything else, blank included,
//   -> other/unknown).
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "data/record.h"

namespace cxr::data {

// ---- labels ----
const std::array<std::string, kNumChexpertLabels>& chexpert_labels();
// Index of a CheXpert label by name (exact, or "Effusion" for "Pleural Effusion"); -1 when not a label.
int label_index(const std::string& name);
// The 8 common labels: display names (with "Effusion") and their CheXpert indices.
const std::vector<std::pair<std::string, int>>& common_labels();

// One row of a mapping table.
struct LabelMapping {
    std::string source;    // the dataset's finding name
    std::string chexpert;  // the CheXpert label it maps to
};
const std::vector<LabelMapping>& nih_label_map();
const std::vector<LabelMapping>& padchest_label_map();
const std::vector<LabelMapping>& vindr_label_map();
// Applies a table to a list of findings (see MAPPING TABLES above): sets record.labels for every target of
// the table and appends the findings to record.source_findings. Matching ignores case and surrounding spaces
// when `ignore_case` is true.
void apply_findings(const std::vector<std::string>& findings, const std::vector<LabelMapping>& table,
                    bool ignore_case, Record& record);

// A CheXpert/MIMIC label cell: "" -> unknown, 1/1.0 -> positive, 0/0.0 -> negative, -1/-1.0 -> uncertain.
// Anything else throws naming `where` (file:line and column).
LabelValue parse_label_cell(const std::string& cell, const std::string& where);
std::string label_cell(LabelValue v);  // "1", "0", "-1" or "" (the manifest's coding)

// ---- uncertainty (CheXpert, Irvin et al. 2019 §4: U-Ignore, U-Zeros, U-Ones) ----
enum class UncertaintyPolicy { keep, zeros, ones, ignore };
UncertaintyPolicy parse_uncertainty_policy(const std::string& name);  // keep|zeros|ones|ignore (u-zeros ok)
void apply_uncertainty_policy(Record& record, UncertaintyPolicy policy);

// ---- sex, view ----
Sex parse_sex(const std::string& s);  // M/F, Male/Female (any case); anything else -> unknown
std::string sex_code(Sex s);          // "M", "F" or ""
std::string sex_word(Sex s);          // "male", "female" or "" (prompt wording)
// View by exact name (any case, surrounding spaces ignored): PA, PA_horizontal, posteroanterior -> PA;
// AP, AP_horizontal, AP_vertical, AP supine, anteroposterior -> AP (PadChest and MIMIC spellings);
// L, LL, RL, LAT, LATERAL, XTABLE LATERAL -> lateral; "" -> unknown; anything else (MIMIC's decubitus and
// special views AP AXIAL, AP LLD, PA RLD, LAO, RAO, SWIMMERS; PadChest's COSTAL, EXCLUDE, UNK) -> other, so
// frontal/PA filtering keeps only the standard projections.
View parse_view(const std::string& s);
std::string view_name(View v);          // "PA", "AP", "LAT", "other" or ""

// ---- age ----
std::string age_bin(double age);  // "18-40", "40-60", "60-80", "80+" or ""
const std::vector<std::string>& age_bins();

// ---- race/ethnicity ----
std::string race_name(Race r);  // "Asian", "Black", "Hispanic", "White", "other/unknown"
const std::vector<Race>& known_races();  // Asian, Black, Hispanic, White
Race race_from_mimic(const std::string& value);
Race race_from_chexpert(const std::string& primary_race, const std::string& ethnicity);
Race race_from_name(const std::string& name);  // manifest coding

// Small string helpers shared by the adapters.
std::string trim(const std::string& s);
// Trims and collapses every run of whitespace to one space ("  a \n b " -> "a b").
std::string collapse_whitespace(const std::string& s);
std::string to_lower(std::string s);
std::vector<std::string> split_string(const std::string& s, char sep);

}  // namespace cxr::data
