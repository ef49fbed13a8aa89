// Dataset adapters: each reads one public chest X-ray dataset as it is published (CSV layouts below) into
// cxr::data::Record (data/record.h), harmonised by the tables and rules of data/labels.h.
//
// Paths: every option that names a file may be left empty; the adapter then looks for the dataset's own file
// name in `root` (a gzipped copy, NAME.gz, is accepted wherever the plain file is). Errors are cxr::Error
// naming the file and line (data/csv.h).
//
// NIH ChestX-ray14 (Wang et al., CVPR 2017)
//   Data_Entry_2017*.csv: Image Index, Finding Labels ('|'-separated), Follow-up #, Patient ID, Patient Age,
//   Patient Gender (M/F), View Position (PA/AP), OriginalImage[Width,Height], OriginalImagePixelSpacing[x,y].
//   Splits: a CSV `Image Index,split` (splits.csv), or the official lists train_val_list.txt / test_list.txt
//   (one image name per line; -> "train" / "test"); images without an entry get split "". Images are in
//   root/images/ when that folder exists, else in root. Study id = Image Index without ".png". Site "nih".
// CheXpert (Irvin et al., AAAI 2019)
//   train.csv / valid.csv: Path, Sex (Male/Female/Unknown), Age, Frontal/Lateral, AP/PA, then the 14 labels
//   (1.0, 0.0, -1.0 or blank). Path looks like "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg":
//   patient id = the "patientNNNNN" component, study id = "patientNNNNN/studyM"; the image is root/<Path> when
//   Path's first component is not root's own folder name, else root/../<Path>. Splits: "train" / "valid" by file.
//   Demographics (optional): a CSV export of the CHEXPERT DEMO sheet with columns PATIENT, GENDER, AGE_AT_CXR,
//   PRIMARY_RACE, ETHNICITY; joined on PATIENT; gives race (labels.h rule) and fills sex/age where train.csv has
//   none. Uncertain labels follow `uncertainty` (keep, U-zeros, U-ones, ignore).
//   Sex "Unknown" -> unknown. View: Frontal/Lateral "Lateral" -> lateral; "Frontal" -> by AP/PA (parse_view),
//   other when AP/PA is blank or unrecognised.
// CheXpert Plus (Chambon et al., "CheXpert Plus", arXiv:2405.19538, 2024)
//   The same adapter with a column mapping (ChexpertColumns, chexpert_plus_columns()): kind "chexpert-plus"
//   reads the first df_chexpert_plus*.csv in root (or option csv); patient id from deid_patient_id, race from
//   race/ethnicity (the CheXpert rule), report = section_impression, split from the split column
//   ("validate"/"val" -> "valid").
// MIMIC-CXR-JPG 2.0.0 (Johnson et al., 2019) with MIMIC-IV hosp tables (Johnson et al., Sci. Data 2023)
//   mimic-cxr-2.0.0-metadata.csv: dicom_id, subject_id, study_id, PerformedProcedureStepDescription,
//     ViewPosition, Rows, Columns, StudyDate (YYYYMMDD), StudyTime, ... ;
//   mimic-cxr-2.0.0-chexpert.csv: subject_id, study_id and the 14 labels (study level; copied onto every image
//     of the study; a study absent from the file keeps unknown labels);
//   mimic-cxr-2.0.0-split.csv: dicom_id, study_id, subject_id, split (train/validate/test; validate -> "valid");
//   patients.csv (optional): subject_id, gender, anchor_age, anchor_year, ... ; age at the study =
//     anchor_age + (year of StudyDate - anchor_year) (MIMIC shifts dates consistently per patient);
//   admissions.csv (optional): subject_id, ..., `race` (MIMIC-IV v2) or `ethnicity` (v1). A patient's race is
//     the category of their admissions' values; unknown values are ignored; admissions naming two different
//     known categories give other/unknown (race_source lists the values).
//   Image path: root/files/p<first two digits of subject_id>/p<subject_id>/s<study_id>/<dicom_id>.jpg.
// PadChest (Bustos et al., Med. Image Anal. 2020)
//   PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv: ImageID, ImageDir, StudyDate_DICOM, StudyID,
//   PatientID, PatientBirth (year), PatientSex_DICOM (M/F), ViewPosition_DICOM, Projection (PA, AP,
//   AP_horizontal, L, COSTAL, ...), ..., Report, MethodLabel, Labels ("['normal']", "['cardiomegaly',
//   'pleural effusion']"), ... . Age = year(StudyDate_DICOM) - PatientBirth. View from Projection. Images (16-bit
//   PNG) at root/<ImageDir>/<ImageID> when `use_image_dir`, else root/<ImageID>. Rows without labels keep
//   unknown labels. No split is published (split "").
// VinDr-CXR (Nguyen et al., Sci. Data 2022)
//   image_labels_train.csv: image_id, rad_id, then one 0/1 column per finding (Aortic enlargement, Atelectasis,
//   ..., No finding); three radiologists per training image. image_labels_test.csv: image_id, then the same
//   columns (one consensus row per image). A finding is positive when at least `min_votes` readers marked it
//   (0: a strict majority of the image's readers). Images at root/train/<image_id>.dicom and
//   root/test/<image_id>.dicom. All images are PA (the dataset's stated protocol); no patient ids are published,
//   so patient id = image_id; demographics live only in the DICOM headers (sex/age unknown here).
// Generic manifest: data/README.md ("Generic manifest CSV").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/csv.h"
#include "data/labels.h"
#include "data/record.h"

namespace cxr::data {

struct NihOptions {
    std::string root;
    std::string entry_csv;       // default: the first Data_Entry_2017*.csv in root
    std::string split_csv;       // default: root/splits.csv when present
    std::string train_val_list;  // default: root/train_val_list.txt when present (and no split CSV)
    std::string test_list;       // default: root/test_list.txt when present (and no split CSV)
    std::string image_dir;       // default: root/images when present, else root
};
std::vector<Record> load_nih(const NihOptions& options);

// Column names the CheXpert adapter reads. The defaults are CheXpert's train.csv/valid.csv; an empty name means
// "not in this file". Label columns are looked up by their CheXpert names; with `labels_required` false a
// missing label column leaves that label unknown (CheXpert Plus publishes its labels in separate files).
struct ChexpertColumns {
    std::string path = "Path";
    std::string sex = "Sex";
    std::string age = "Age";
    std::string frontal_lateral = "Frontal/Lateral";
    std::string ap_pa = "AP/PA";
    std::string patient;    // "": the patientNNNNN component of the path
    std::string race;       // "": race only from the demographics CSV
    std::string ethnicity;  // read together with `race` (labels.h race_from_chexpert)
    std::string report;     // "": no report text
    std::string split;      // "": the split comes from the file name
    bool labels_required = true;
};
// CheXpert Plus (Chambon et al., 2024), df_chexpert_plus_240401.csv: path_to_image, frontal_lateral, ap_pa,
// deid_patient_id, age, sex, race, ethnicity, section_impression, split; the 14 labels only when the user has
// joined them into the CSV under their CheXpert names (otherwise unknown).
ChexpertColumns chexpert_plus_columns();

struct ChexpertOptions {
    std::string root;
    std::vector<std::string> csvs;  // default: root/train.csv and root/valid.csv, those present
    std::string demographics_csv;   // optional
    UncertaintyPolicy uncertainty = UncertaintyPolicy::keep;
    ChexpertColumns columns;        // default: CheXpert's own headers
};
std::vector<Record> load_chexpert(const ChexpertOptions& options);

struct MimicOptions {
    std::string root;
    std::string metadata_csv, chexpert_csv, split_csv;  // defaults: the mimic-cxr-2.0.0-*.csv(.gz) in root
    std::string patients_csv, admissions_csv;           // defaults: root/patients.csv(.gz), admissions.csv(.gz)
    UncertaintyPolicy uncertainty = UncertaintyPolicy::keep;
};
std::vector<Record> load_mimic(const MimicOptions& options);

struct PadchestOptions {
    std::string root;
    std::string csv;  // default: the first PADCHEST*.csv(.gz) in root
    bool use_image_dir = true;
};
std::vector<Record> load_padchest(const PadchestOptions& options);

struct VindrOptions {
    std::string root;
    std::string train_csv, test_csv;  // defaults: root/image_labels_train.csv, root/image_labels_test.csv
    int min_votes = 0;                // 0: strict majority of the image's readers
};
std::vector<Record> load_vindr(const VindrOptions& options);

// Generic manifest (data/README.md). Relative image paths are resolved against the manifest's folder.
std::vector<Record> load_manifest(const std::string& path);
// Writes records as a manifest (atomically: PATH.tmp, then rename; the temporary file is removed on failure).
// Image paths inside the manifest's own folder are written relative to it, all others absolute, so that
// load_manifest reads back the same files. `base_dir` (kept for callers that pass the output folder) must be
// empty or the manifest's folder; any other folder writes every path absolute.
void write_manifest(const std::string& path, const std::vector<Record>& records, const std::string& base_dir = "");

// Dispatch by kind: "nih", "chexpert", "chexpert-plus", "mimic", "padchest", "vindr", "manifest" (root = the
// manifest file or a folder holding manifest.csv). `options` keys (all optional): demographics (chexpert,
// chexpert-plus), uncertainty (chexpert, chexpert-plus, mimic), patients, admissions (mimic), csv
// (chexpert-plus, padchest, manifest), min-votes (vindr); an unknown kind or key throws listing the accepted ones;
// a root that does not exist throws naming it.
std::vector<Record> load_dataset(const std::string& kind, const std::string& root,
                                 const std::map<std::string, std::string>& options = {});
const std::vector<std::string>& dataset_kinds();

namespace detail {
// The file `name` (or name + ".gz") inside `dir`; "" when neither exists.
std::string find_file(const std::string& dir, const std::string& name);
// The first file in `dir` (sorted by name) whose name starts with `prefix` and contains ".csv"; "" if none.
std::string find_prefixed(const std::string& dir, const std::string& prefix);
std::string join_path(const std::string& a, const std::string& b);
// "file:line" of row r of a table.
std::string where(const CsvTable& t, size_t r);
}  // namespace detail

}  // namespace cxr::data
