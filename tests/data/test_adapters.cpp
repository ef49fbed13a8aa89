// Tests for the dataset adapters (data/adapters/*): NIH ChestX-ray14 (splits.csv and the official split lists),
// CheXpert (labels, uncertainty policies, the demographics join, path resolution), CheXpert Plus (column
// mapping), MIMIC-CXR-JPG with MIMIC-IV patients/admissions (v1 `ethnicity` and v2 `race`, study labels copied
// to images, .csv.gz), PadChest (list-as-text labels, age from birth year), VinDr-CXR (reader votes), the generic
// manifest (write -> read round trip), dispatch by kind, and errors for corrupt or truncated inputs.
//
// Input files use the published column headers, either committed under tests/fixtures/datasets/ or written by
// the tests into a temporary folder. Every expected value is worked out by hand from those rows and the rules in
// data/adapters/adapters.h and data/labels.h. The [real-data] case reads ../shared/data/nih1000 as it is and
// checks the counts stated in that folder's README.md.
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "data/adapters/adapters.h"
#include "data/labels.h"
#include "data/select.h"
#include "tensor/error.h"
#include "tests/support/testing.h"

using namespace cxr::data;
namespace fs = std::filesystem;

using cxr::testing::error_of;

namespace {

const std::string kFixtures = std::string(CXR_SOURCE_DIR) + "/tests/fixtures/datasets/";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A fresh, empty folder for one test.
fs::path temp_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("cxr_test_adapters_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

void write_gz(const fs::path& p, const std::string& text) {
    gzFile g = gzopen(p.string().c_str(), "wb");
    REQUIRE(g != nullptr);
    REQUIRE(gzwrite(g, text.data(), (unsigned)text.size()) == (int)text.size());
    REQUIRE(gzclose(g) == Z_OK);
}

LabelValue label(const Record& r, const char* name) {
    const int i = label_index(name);
    REQUIRE(i >= 0);
    return r.labels[i];
}

// Labels given by name; every other label must be unknown.
void check_labels(const Record& r, const std::map<std::string, LabelValue>& expected) {
    for (int i = 0; i < kNumChexpertLabels; ++i) {
        const std::string& n = chexpert_labels()[i];
        auto it = expected.find(n);
        INFO(r.image_path << " label " << n);
        CHECK(r.labels[i] == (it == expected.end() ? LabelValue::unknown : it->second));
    }
}

std::string norm(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

constexpr LabelValue P = LabelValue::positive, N = LabelValue::negative, U = LabelValue::uncertain;

const char* kNihHeader =
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n";

const char* kChexpertHeader =
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,"
    "Support Devices\n";

// NIH-mapped labels of an image whose findings map to `positives` (NIH looks for 11 CheXpert labels).
std::map<std::string, LabelValue> nih_labels(const std::set<std::string>& positives) {
    std::map<std::string, LabelValue> m;
    for (const char* n : {"No Finding", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation",
                          "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other"})
        m[n] = positives.count(n) ? P : N;
    return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------- NIH

TEST_CASE("adapters: NIH Data_Entry_2017 with splits.csv", "[cpu][adapters]") {
    const std::string root = kFixtures + "nih";
    NihOptions o;
    o.root = root;
    const auto r = load_nih(o);
    REQUIRE(r.size() == 5);
    // Row 1: 90000001_000.png,Cardiomegaly,0,9001,57,M,PA,... (invented rows in the published layout)
    CHECK(r[0].image_path == root + "/90000001_000.png");  // no images/ folder: images in root
    CHECK(r[0].patient_id == "9001");
    CHECK(r[0].study_id == "90000001_000");
    CHECK(r[0].split == "train");
    CHECK(r[0].view == View::pa);
    CHECK(r[0].sex == Sex::male);
    CHECK(r[0].age == 57);
    CHECK(r[0].race == Race::other_unknown);
    CHECK(r[0].dataset == "nih");
    CHECK(r[0].site == "nih");
    check_labels(r[0], nih_labels({"Cardiomegaly"}));
    // Row 2: Cardiomegaly|Emphysema; Emphysema has no CheXpert label and is kept verbatim.
    CHECK(r[1].source_findings == std::vector<std::string>{"Cardiomegaly", "Emphysema"});
    check_labels(r[1], nih_labels({"Cardiomegaly"}));
    CHECK(r[1].age == 58);
    // Row 3: No Finding, valid (splits.csv has CRLF line ends).
    CHECK(r[2].split == "valid");
    CHECK(r[2].age == 80);
    check_labels(r[2], nih_labels({"No Finding"}));
    // Row 4: Effusion|Infiltration|Mass|Nodule, F, 33, AP, test.
    CHECK(r[3].split == "test");
    CHECK(r[3].view == View::ap);
    CHECK(r[3].sex == Sex::female);
    CHECK(r[3].age == 33);
    check_labels(r[3], nih_labels({"Pleural Effusion", "Lung Opacity", "Lung Lesion"}));
    // Row 5: Hernia only, absent from splits.csv: no split; every mapped label negative (No Finding too).
    CHECK(r[4].split == "");
    CHECK(r[4].age == 17);
    check_labels(r[4], nih_labels({}));
    CHECK(r[4].source_findings == std::vector<std::string>{"Hernia"});
}

TEST_CASE("adapters: NIH official train_val_list.txt / test_list.txt", "[cpu][adapters]") {
    NihOptions o;
    o.root = kFixtures + "nih_lists";
    const auto r = load_nih(o);
    REQUIRE(r.size() == 5);
    const std::vector<std::string> want = {"train", "train", "train", "test", "test"};
    for (size_t i = 0; i < r.size(); ++i) CHECK(r[i].split == want[i]);
    // An explicitly named list that does not exist is an error naming it.
    o.test_list = kFixtures + "nih_lists/no_such_list.txt";
    CHECK(contains(error_of([&] { load_nih(o); }), "no_such_list.txt"));
}

TEST_CASE("adapters: NIH images/ folder, old 058Y ages and bad rows", "[cpu][adapters]") {
    const fs::path d = temp_dir("nih_images");
    fs::create_directories(d / "images");
    write_file(d / "Data_Entry_2017.csv", std::string(kNihHeader) +
                                              "90000005_000.png,Pneumonia,0,5,058Y,F,AP,2048,2500,0.168,0.168\n");
    NihOptions o;
    o.root = d.string();
    auto r = load_nih(o);
    REQUIRE(r.size() == 1);
    CHECK(r[0].image_path == (d / "images" / "90000005_000.png").string());
    CHECK(r[0].age == 58);
    CHECK(r[0].split == "");
    check_labels(r[0], nih_labels({"Pneumonia"}));

    SECTION("age that is not a number names file:line") {
        write_file(d / "Data_Entry_2017.csv",
                   std::string(kNihHeader) + "90000005_000.png,Pneumonia,0,5,58,F,AP,2048,2500,0.168,0.168\n" +
                       "90000006_000.png,Pneumonia,0,6,old,F,AP,2048,2500,0.168,0.168\n");
        const std::string msg = error_of([&] { load_nih(o); });
        CHECK(contains(msg, "Data_Entry_2017.csv:3"));
        CHECK(contains(msg, "Patient Age 'old'"));
    }
    SECTION("truncated row (file cut in the middle of a record)") {
        write_file(d / "Data_Entry_2017.csv",
                   std::string(kNihHeader) + "90000005_000.png,Pneumonia,0,5,58,F,AP,2048,2500,0.168,0.168\n" +
                       "90000006_000.png,Pneumonia,0,6,5");
        const std::string msg = error_of([&] { load_nih(o); });
        CHECK(contains(msg, "Data_Entry_2017.csv:3"));
    }
    SECTION("row with too many fields") {
        write_file(d / "Data_Entry_2017.csv", std::string(kNihHeader) +
                                                  "90000005_000.png,Pneumonia,0,5,58,F,AP,2048,2500,0.168,0.168,9\n");
        CHECK(contains(error_of([&] { load_nih(o); }), "Data_Entry_2017.csv:2"));
    }
    SECTION("quoted field left open at the end of the file") {
        write_file(d / "Data_Entry_2017.csv",
                   std::string(kNihHeader) + "90000005_000.png,\"Pneumonia,0,5,58,F,AP,2048,2500,0.168,0.168\n");
        CHECK(contains(error_of([&] { load_nih(o); }), "Data_Entry_2017.csv:2"));
    }
    SECTION("missing required column names it") {
        write_file(d / "Data_Entry_2017.csv", "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,"
                                              "View Position\n90000005_000.png,Pneumonia,0,5,58,AP\n");
        const std::string msg = error_of([&] { load_nih(o); });
        CHECK(contains(msg, "no column 'Patient Gender'"));
        CHECK(contains(msg, "Data_Entry_2017.csv"));
    }
    SECTION("empty patient id") {
        write_file(d / "Data_Entry_2017.csv", std::string(kNihHeader) +
                                                  "90000005_000.png,Pneumonia,0,,58,F,AP,2048,2500,0.168,0.168\n");
        CHECK(contains(error_of([&] { load_nih(o); }), "Data_Entry_2017.csv:2: empty Patient ID"));
    }
    SECTION("empty file and a folder without the entry CSV") {
        write_file(d / "Data_Entry_2017.csv", "");
        CHECK(contains(error_of([&] { load_nih(o); }), "empty file"));
        fs::remove(d / "Data_Entry_2017.csv");
        CHECK(contains(error_of([&] { load_nih(o); }), "no Data_Entry_2017*.csv"));
    }
}

TEST_CASE("adapters: NIH nih1000 read as it is", "[cpu][adapters][real-data]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const std::string root = cxr::testing::real_data_dir() + "/nih1000";
    const auto r = load_dataset("nih", root);
    REQUIRE(r.size() == 1000);
    const DatasetSummary s = summarize(r);
    CHECK(s.images == 1000);
    CHECK(s.patients == 264);
    CHECK(s.by_split == std::map<std::string, int64_t>{{"train", 700}, {"valid", 100}, {"test", 200}});
    CHECK(s.by_view == std::map<std::string, int64_t>{{"PA", 637}, {"AP", 363}});
    CHECK(s.age_min == 24);
    CHECK(s.age_max == 94);
    // Sex and age-bin counts below were tallied from the CSV with Python's csv module (an independent reader).
    CHECK(s.by_sex == std::map<std::string, int64_t>{{"F", 509}, {"M", 491}});
    CHECK(s.by_age_bin ==
          std::map<std::string, int64_t>{{"18-40", 39}, {"40-60", 431}, {"60-80", 468}, {"80+", 62}});
    // Finding counts as stated in ../shared/data/README.md.
    const std::map<std::string, int64_t> findings = {
        {"No Finding", 499},  {"Effusion", 170},     {"Infiltration", 162},      {"Atelectasis", 95},
        {"Cardiomegaly", 83}, {"Consolidation", 42}, {"Pneumothorax", 40},       {"Nodule", 39},
        {"Emphysema", 37},    {"Mass", 35},          {"Fibrosis", 32},           {"Edema", 31},
        {"Pleural_Thickening", 29}, {"Pneumonia", 11}, {"Hernia", 9}};
    CHECK(s.source_findings == findings);
    // Harmonised: positives of the labels that map one to one equal the NIH counts.
    CHECK(s.labels.at("Pleural Effusion")[1] == 170);
    CHECK(s.labels.at("No Finding")[1] == 499);
    CHECK(s.labels.at("No Finding")[0] == 501);
    CHECK(s.labels.at("Cardiomegaly")[1] == 83);
    CHECK(s.labels.at("Fracture")[3] == 1000);  // NIH does not label fractures
    CHECK(patients_in_several_splits(r).empty());  // the published split is patient-disjoint
    int missing = 0;
    for (const auto& rec : r) missing += fs::is_regular_file(rec.image_path) ? 0 : 1;
    CHECK(missing == 0);
}

// ---------------------------------------------------------------------------------------------------- CheXpert

TEST_CASE("adapters: CheXpert train/valid with the demographics join", "[cpu][adapters]") {
    const std::string root = kFixtures + "chexpert";
    ChexpertOptions o;
    o.root = root;
    o.demographics_csv = root + "/demographics.csv";
    const auto r = load_chexpert(o);
    REQUIRE(r.size() == 8);  // 6 train rows, 2 valid rows
    // Root's folder is "chexpert", not "CheXpert-v1.0-small": the image is root/<Path>.
    CHECK(r[0].image_path == root + "/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg");
    CHECK(r[0].patient_id == "patient00001");
    CHECK(r[0].study_id == "patient00001/study1");
    CHECK(r[0].split == "train");
    CHECK(r[0].view == View::ap);
    CHECK(r[0].sex == Sex::female);
    CHECK(r[0].age == 68);
    CHECK(r[0].race == Race::white);  // "White, non-Hispanic" / Non-Hispanic/Non-Latino
    CHECK(r[0].race_source == "White, non-Hispanic / Non-Hispanic/Non-Latino");
    CHECK(r[0].dataset == "chexpert");
    check_labels(r[0], {{"No Finding", P}, {"Pneumothorax", N}, {"Support Devices", P}});
    // Row 2: ,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,
    CHECK(r[1].study_id == "patient00002/study2");
    CHECK(r[1].age == 87);
    CHECK(r[1].race == Race::black);
    const std::map<std::string, LabelValue> row2 = {{"Cardiomegaly", U}, {"Lung Opacity", P}, {"Edema", U},
                                                    {"Consolidation", U}, {"Atelectasis", U},
                                                    {"Pleural Effusion", U}, {"Fracture", P}};
    check_labels(r[1], row2);
    // Row 4: the lateral view of patient00002/study1.
    CHECK(r[3].view == View::lateral);
    CHECK(!r[3].is_frontal());
    // Row 5: patient00003, Edema 1.0, Pneumothorax 0.0, Hispanic ("Other, Hispanic" / Hispanic/Latino).
    check_labels(r[4], {{"Edema", P}, {"Pneumothorax", N}});
    CHECK(r[4].race == Race::hispanic);
    CHECK(r[4].sex == Sex::male);
    // Row 6: Sex "Unknown" in train.csv, filled from the sheet (Female); PA; Asian.
    CHECK(r[5].sex == Sex::female);
    CHECK(r[5].view == View::pa);
    CHECK(r[5].race == Race::asian);
    // valid.csv
    CHECK(r[6].split == "valid");
    CHECK(r[6].patient_id == "patient64541");
    CHECK(r[6].race == Race::other_unknown);  // Unknown / Unknown
    CHECK(r[6].race_source == "Unknown / Unknown");
    CHECK(label(r[6], "Enlarged Cardiomediastinum") == P);
    CHECK(label(r[6], "No Finding") == N);
    CHECK(r[7].patient_id == "patient64542");  // not in the sheet
    CHECK(r[7].race == Race::other_unknown);
    CHECK(r[7].race_source == "");
    CHECK(r[7].view == View::pa);

    // Without the sheet: no race, and the Unknown sex stays unknown.
    ChexpertOptions plain;
    plain.root = root;
    const auto q = load_chexpert(plain);
    CHECK(q[5].sex == Sex::unknown);
    CHECK(q[0].race == Race::other_unknown);
}

TEST_CASE("adapters: CheXpert uncertainty policies U-zeros, U-ones, ignore", "[cpu][adapters]") {
    ChexpertOptions o;
    o.root = kFixtures + "chexpert";
    o.csvs = {kFixtures + "chexpert/train.csv"};
    const std::vector<std::pair<UncertaintyPolicy, LabelValue>> cases = {
        {UncertaintyPolicy::keep, U}, {UncertaintyPolicy::zeros, N}, {UncertaintyPolicy::ones, P},
        {UncertaintyPolicy::ignore, LabelValue::unknown}};
    for (const auto& [policy, u] : cases) {
        o.uncertainty = policy;
        const auto r = load_chexpert(o);
        REQUIRE(r.size() == 6);
        std::map<std::string, LabelValue> want = {{"Lung Opacity", P}, {"Fracture", P}};
        for (const char* n : {"Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion"})
            if (u != LabelValue::unknown) want[n] = u;
        check_labels(r[1], want);
    }
    // The same through the dispatcher's option.
    const auto z = load_dataset("chexpert", kFixtures + "chexpert", {{"uncertainty", "U-Ones"}});
    CHECK(label(z[1], "Edema") == P);
    CHECK(contains(error_of([] { load_dataset("chexpert", kFixtures + "chexpert", {{"uncertainty", "half"}}); }),
                   "half"));
}

TEST_CASE("adapters: CheXpert paths that start with root's folder name", "[cpu][adapters]") {
    const fs::path top = temp_dir("chexpert_root");
    const fs::path root = top / "CheXpert-v1.0-small";
    write_file(root / "valid.csv", std::string(kChexpertHeader) +
                                       "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg,Male,73,"
                                       "Frontal,AP,0.0,1.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n");
    for (const std::string& given : {root.string(), root.string() + "/"}) {
        INFO(given);
        ChexpertOptions o;
        o.root = given;
        const auto r = load_chexpert(o);
        REQUIRE(r.size() == 1);
        CHECK(norm(r[0].image_path) == norm((root / "valid/patient64541/study1/view1_frontal.jpg").string()));
        CHECK(r[0].split == "valid");
    }
}

TEST_CASE("adapters: CheXpert bad inputs", "[cpu][adapters]") {
    const fs::path d = temp_dir("chexpert_bad");
    ChexpertOptions o;
    o.root = d.string();
    SECTION("bad label cell names file:line and column") {
        write_file(d / "train.csv", std::string(kChexpertHeader) +
                                        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,"
                                        "Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0\n"
                                        "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Female,68,"
                                        "Frontal,AP,,,,,,2.0,,,,,,,,\n");
        const std::string msg = error_of([&] { load_chexpert(o); });
        CHECK(contains(msg, "train.csv:3"));
        CHECK(contains(msg, "column 'Edema'"));
        CHECK(contains(msg, "'2.0'"));
    }
    SECTION("missing label column names it") {
        std::string header = kChexpertHeader;
        header.replace(header.find(",Pleural Other"), 14, "");
        write_file(d / "train.csv", header);
        CHECK(contains(error_of([&] { load_chexpert(o); }), "no column 'Pleural Other'"));
    }
    SECTION("truncated row") {
        write_file(d / "train.csv", std::string(kChexpertHeader) +
                                        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,"
                                        "Frontal,AP,1.0,");
        CHECK(contains(error_of([&] { load_chexpert(o); }), "train.csv:2"));
    }
    SECTION("a path without a patient folder") {
        write_file(d / "train.csv", std::string(kChexpertHeader) +
                                        "images/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0\n");
        CHECK(contains(error_of([&] { load_chexpert(o); }), "names no patientNNNNN folder"));
    }
    SECTION("age that is not a number") {
        write_file(d / "train.csv", std::string(kChexpertHeader) +
                                        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,"
                                        "sixty,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0\n");
        CHECK(contains(error_of([&] { load_chexpert(o); }), "train.csv:2"));
    }
    SECTION("demographics sheet without PRIMARY_RACE") {
        write_file(d / "train.csv", kChexpertHeader);
        write_file(d / "demo.csv", "PATIENT,GENDER,AGE_AT_CXR\npatient00001,Female,68\n");
        o.demographics_csv = (d / "demo.csv").string();
        CHECK(contains(error_of([&] { load_chexpert(o); }), "no column 'PRIMARY_RACE'"));
    }
    SECTION("no train.csv or valid.csv") {
        CHECK(contains(error_of([&] { load_chexpert(o); }), "neither train.csv nor valid.csv"));
    }
}

TEST_CASE("adapters: CheXpert Plus through the column mapping", "[cpu][adapters]") {
    const fs::path d = temp_dir("chexpert_plus");
    // Columns of df_chexpert_plus_240401.csv (a subset, in the published order), two rows written by hand.
    const std::string header =
        "path_to_image,path_to_dcm,frontal_lateral,ap_pa,deid_patient_id,patient_report_date_order,report,"
        "section_impression,age,sex,race,ethnicity,interpreter_needed,insurance_type,recent_bmi,deceased,split\n";
    write_file(d / "df_chexpert_plus_240401.csv",
               header +
                   "train/patient42142/study5/view1_frontal.jpg,train/patient42142/study5/view1_frontal.dcm,Frontal,"
                   "PA,patient42142,5,\"NARRATIVE: chest.\nIMPRESSION: 1. No acute process.\",1. No acute process.,"
                   "61,Male,White,Non-Hispanic/Non-Latino,No,Medicare,24.1,No,train\n"
                   "valid/patient64541/study1/view2_lateral.jpg,valid/patient64541/study1/view2_lateral.dcm,Lateral,"
                   ",patient64541,1,\"IMPRESSION: Stable cardiomegaly, small effusion.\",\"Stable cardiomegaly, "
                   "small effusion.\",73,Female,Asian,Hispanic/Latino,No,Private,,No,valid\n");
    const auto r = load_dataset("chexpert-plus", d.string());
    REQUIRE(r.size() == 2);
    CHECK(r[0].image_path == (d / "train/patient42142/study5/view1_frontal.jpg").string());
    CHECK(r[0].patient_id == "patient42142");
    CHECK(r[0].study_id == "patient42142/study5");
    CHECK(r[0].split == "train");
    CHECK(r[0].view == View::pa);
    CHECK(r[0].sex == Sex::male);
    CHECK(r[0].age == 61);
    CHECK(r[0].race == Race::white);
    CHECK(r[0].report == "1. No acute process.");
    CHECK(r[0].dataset == "chexpert-plus");
    check_labels(r[0], {});  // labels are published in separate files: unknown here
    CHECK(r[1].split == "valid");
    CHECK(r[1].view == View::lateral);
    CHECK(r[1].sex == Sex::female);
    CHECK(r[1].race == Race::hispanic);  // Hispanic/Latino ethnicity takes precedence
    CHECK(r[1].report == "Stable cardiomegaly, small effusion.");

    // Labels joined into the CSV under their CheXpert names are read.
    write_file(d / "joined.csv", "path_to_image,deid_patient_id,sex,age,frontal_lateral,ap_pa,race,ethnicity,"
                                 "section_impression,split,Cardiomegaly,Pleural Effusion\n"
                                 "valid/patient64541/study1/view1_frontal.jpg,patient64541,Female,73,Frontal,AP,"
                                 "Asian,Non-Hispanic/Non-Latino,x,valid,1.0,-1.0\n");
    const auto j = load_dataset("chexpert-plus", d.string(), {{"csv", (d / "joined.csv").string()}});
    REQUIRE(j.size() == 1);
    check_labels(j[0], {{"Cardiomegaly", P}, {"Pleural Effusion", U}});
    CHECK(j[0].race == Race::asian);
    // A mapped column that is absent is named.
    write_file(d / "bad.csv", "path_to_image,deid_patient_id\ntrain/patient1/study1/view1_frontal.jpg,patient1\n");
    CHECK(contains(error_of([&] { load_dataset("chexpert-plus", d.string(), {{"csv", (d / "bad.csv").string()}}); }),
                   "no column 'sex'"));
}

// ---------------------------------------------------------------------------------------------------- MIMIC

namespace {

const char* kMimicMetadata =
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,StudyTime,"
    "ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning\n"
    "d1,10000032,50414267,CHEST (PA AND LAT),PA,3056,2544,21800506,213014.531,CHEST (PA AND LAT),postero-anterior,"
    "Erect\n"
    "d2,10000032,50414267,CHEST (PA AND LAT),LATERAL,3056,2544,21800506,213014.531,CHEST (PA AND LAT),lateral,Erect\n"
    "d3,10000032,53189527,CHEST (PORTABLE AP),AP,2705,2539,21800626,165500.312,CHEST (PORTABLE AP),"
    "antero-posterior,Erect\n"
    "d4,10000764,57375967,CHEST (PORTABLE AP),AP,3056,2544,21321015,91131.015,CHEST (PORTABLE AP),"
    "antero-posterior,\n"
    "d5,10000898,50771383,CHEST (PA AND LAT),PA,3056,2544,21870613,103406.015,CHEST (PA AND LAT),"
    "postero-anterior,Erect\n";

// mimic-cxr-2.0.0-chexpert.csv: the 14 labels in the file's alphabetical column order.
const char* kMimicChexpert =
    "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,"
    "Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,Support Devices\n"
    "10000032,50414267,,,,,,,,,1.0,,,,,\n"
    "10000032,53189527,,,,-1.0,,,,,,1.0,,,0.0,\n"
    "10000764,57375967,,,1.0,,,,,,,,,-1.0,,\n";

const char* kMimicSplit =
    "dicom_id,study_id,subject_id,split\n"
    "d1,50414267,10000032,train\nd2,50414267,10000032,train\nd3,53189527,10000032,validate\n"
    "d4,57375967,10000764,test\nd5,50771383,10000898,train\n";

const char* kMimicPatients =
    "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod\n"
    "10000032,F,52,2180,2014 - 2016,2180-09-09\n"
    "10000764,M,86,2130,2014 - 2016,\n";

// MIMIC-IV v2 hosp/admissions.csv (column `race`).
const char* kAdmissionsV2 =
    "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admit_provider_id,admission_location,"
    "discharge_location,insurance,language,marital_status,race,edregtime,edouttime,hospital_expire_flag\n"
    "10000032,22595853,2180-05-06 22:23:00,2180-05-07 17:15:00,,URGENT,P874LG,TRANSFER FROM HOSPITAL,HOME,Other,"
    "ENGLISH,WIDOWED,WHITE,2180-05-06 19:17:00,2180-05-06 23:30:00,0\n"
    "10000032,22841357,2180-06-26 18:27:00,2180-06-27 18:49:00,,EW EMER.,P09Q6Y,EMERGENCY ROOM,HOME,Medicaid,"
    "ENGLISH,WIDOWED,UNKNOWN,2180-06-26 15:54:00,2180-06-26 21:31:00,0\n"
    "10000764,27897940,2132-10-14 23:31:00,2132-10-19 16:30:00,,OBSERVATION ADMIT,P4Z4PW,EMERGENCY ROOM,HOME,"
    "Other,ENGLISH,MARRIED,WHITE - OTHER EUROPEAN,2132-10-14 19:59:00,2132-10-15 00:34:00,0\n"
    "10000764,27897941,2132-11-14 23:31:00,2132-11-19 16:30:00,,OBSERVATION ADMIT,P4Z4PW,EMERGENCY ROOM,HOME,"
    "Other,ENGLISH,MARRIED,BLACK/AFRICAN AMERICAN,,,0\n";

// MIMIC-IV v1 core/admissions.csv (column `ethnicity`).
const char* kAdmissionsV1 =
    "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admission_location,discharge_location,"
    "insurance,language,marital_status,ethnicity,edregtime,edouttime,hospital_expire_flag\n"
    "10000032,22595853,2180-05-06 22:23:00,2180-05-07 17:15:00,,URGENT,TRANSFER FROM HOSPITAL,HOME,Other,ENGLISH,"
    "WIDOWED,HISPANIC/LATINO,2180-05-06 19:17:00,2180-05-06 23:30:00,0\n"
    "10000764,27897940,2132-10-14 23:31:00,2132-10-19 16:30:00,,OBSERVATION ADMIT,EMERGENCY ROOM,HOME,Other,"
    "ENGLISH,MARRIED,ASIAN,2132-10-14 19:59:00,2132-10-15 00:34:00,0\n";

fs::path mimic_root(const std::string& name) {
    const fs::path d = temp_dir(name);
    write_gz(d / "mimic-cxr-2.0.0-metadata.csv.gz", kMimicMetadata);  // shipped gzipped
    write_gz(d / "mimic-cxr-2.0.0-chexpert.csv.gz", kMimicChexpert);
    write_file(d / "mimic-cxr-2.0.0-split.csv", kMimicSplit);
    write_file(d / "patients.csv", kMimicPatients);
    return d;
}

}  // namespace

TEST_CASE("adapters: MIMIC-CXR-JPG with MIMIC-IV v2 race", "[cpu][adapters]") {
    const fs::path d = mimic_root("mimic_v2");
    write_gz(d / "admissions.csv.gz", kAdmissionsV2);
    MimicOptions o;
    o.root = d.string();
    const auto r = load_mimic(o);
    REQUIRE(r.size() == 5);
    CHECK(r[0].image_path == (d / "files/p10/p10000032/s50414267/d1.jpg").string());
    CHECK(r[0].patient_id == "10000032");
    CHECK(r[0].study_id == "50414267");
    CHECK(r[0].split == "train");
    CHECK(r[0].view == View::pa);
    CHECK(r[0].sex == Sex::female);
    CHECK(r[0].age == 52);  // anchor_age 52 + (2180 - anchor_year 2180)
    CHECK(r[0].race == Race::white);  // WHITE and UNKNOWN: the one known category
    CHECK(r[0].race_source == "UNKNOWN|WHITE");
    CHECK(r[0].dataset == "mimic");
    check_labels(r[0], {{"No Finding", P}});
    // Study labels are copied onto every image of the study (the lateral d2 too).
    CHECK(r[1].view == View::lateral);
    check_labels(r[1], {{"No Finding", P}});
    // d3: another study of the same patient; split "validate" -> "valid".
    CHECK(r[2].split == "valid");
    CHECK(r[2].view == View::ap);
    check_labels(r[2], {{"Edema", U}, {"Pleural Effusion", P}, {"Pneumothorax", N}});
    // d4: male, anchor_age 86 in anchor_year 2130, study in 2132 -> 88; WHITE and BLACK conflict -> other.
    CHECK(r[3].split == "test");
    CHECK(r[3].sex == Sex::male);
    CHECK(r[3].age == 88);
    CHECK(r[3].race == Race::other_unknown);
    CHECK(r[3].race_source == "BLACK/AFRICAN AMERICAN|WHITE - OTHER EUROPEAN");
    check_labels(r[3], {{"Consolidation", P}, {"Pneumonia", U}});
    // d5: study absent from the labels file, subject absent from patients/admissions.
    check_labels(r[4], {});
    CHECK(r[4].sex == Sex::unknown);
    CHECK(!r[4].has_age());
    CHECK(r[4].race == Race::other_unknown);

    // U-ones through the options.
    o.uncertainty = UncertaintyPolicy::ones;
    CHECK(label(load_mimic(o)[2], "Edema") == P);
}

TEST_CASE("adapters: MIMIC-CXR-JPG with MIMIC-IV v1 ethnicity", "[cpu][adapters]") {
    const fs::path d = mimic_root("mimic_v1");
    write_file(d / "adm_v1.csv", kAdmissionsV1);
    const auto r = load_dataset("mimic", d.string(), {{"admissions", (d / "adm_v1.csv").string()}});
    REQUIRE(r.size() == 5);
    CHECK(r[0].race == Race::hispanic);
    CHECK(r[0].race_source == "HISPANIC/LATINO");
    CHECK(r[3].race == Race::asian);
    CHECK(r[4].race == Race::other_unknown);
}

TEST_CASE("adapters: MIMIC-CXR-JPG bad inputs", "[cpu][adapters]") {
    const fs::path d = mimic_root("mimic_bad");
    MimicOptions o;
    o.root = d.string();
    SECTION("admissions without race or ethnicity") {
        write_file(d / "admissions.csv", "subject_id,hadm_id,language\n10000032,1,ENGLISH\n");
        CHECK(contains(error_of([&] { load_mimic(o); }), "neither a 'race'"));
    }
    SECTION("StudyDate not YYYYMMDD") {
        std::string meta = kMimicMetadata;
        meta.replace(meta.find("21800626"), 8, "2180-6-2");
        write_gz(d / "mimic-cxr-2.0.0-metadata.csv.gz", meta);
        const std::string msg = error_of([&] { load_mimic(o); });
        CHECK(contains(msg, "mimic-cxr-2.0.0-metadata.csv.gz:4"));
        CHECK(contains(msg, "StudyDate '2180-6-2'"));
    }
    SECTION("bad label cell") {
        std::string lab = kMimicChexpert;
        lab.replace(lab.find("-1.0,,"), 4, "0.7x");
        write_gz(d / "mimic-cxr-2.0.0-chexpert.csv.gz", lab);
        const std::string msg = error_of([&] { load_mimic(o); });
        CHECK(contains(msg, "mimic-cxr-2.0.0-chexpert.csv.gz:3"));
        CHECK(contains(msg, "column 'Edema'"));
    }
    SECTION("truncated gzip") {
        const fs::path p = d / "mimic-cxr-2.0.0-metadata.csv.gz";
        std::ifstream in(p, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        in.close();
        write_file(p, bytes.substr(0, bytes.size() / 2));
        CHECK(contains(error_of([&] { load_mimic(o); }), "mimic-cxr-2.0.0-metadata.csv.gz"));
    }
    SECTION("missing metadata file and missing column") {
        write_file(d / "mimic-cxr-2.0.0-split.csv", "dicom_id,study_id,subject_id\nd1,1,2\n");
        CHECK(contains(error_of([&] { load_mimic(o); }), "no column 'split'"));
        fs::remove(d / "mimic-cxr-2.0.0-metadata.csv.gz");
        CHECK(contains(error_of([&] { load_mimic(o); }), "no mimic-cxr-2.0.0-metadata.csv"));
    }
}

// ---------------------------------------------------------------------------------------------------- PadChest

namespace {

// PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv header, as published.
const std::vector<std::string> kPadchestColumns = {
    "ImageID", "ImageDir", "StudyDate_DICOM", "StudyID", "PatientID", "PatientBirth", "PatientSex_DICOM",
    "ViewPosition_DICOM", "Projection", "MethodProjection", "Pediatric", "Modality_DICOM", "Manufacturer_DICOM",
    "PhotometricInterpretation_DICOM", "PixelRepresentation_DICOM", "PixelAspectRatio_DICOM",
    "SpatialResolution_DICOM", "BitsStored_DICOM", "WindowCenter_DICOM", "WindowWidth_DICOM", "Rows_DICOM",
    "Columns_DICOM", "XRayTubeCurrent_DICOM", "Exposure_DICOM", "ExposureInuAs_DICOM", "ExposureTime",
    "RelativeXRayExposure_DICOM", "ReportID", "Report", "MethodLabel", "Labels", "Localizations",
    "LabelsLocalizationsBySentence", "labelCUIS", "LocalizationsCUIS"};

std::string quoted(const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

std::string padchest_row(const std::map<std::string, std::string>& values) {
    std::string row;
    for (size_t i = 0; i < kPadchestColumns.size(); ++i) {
        auto it = values.find(kPadchestColumns[i]);
        row += (i ? "," : "") + (it == values.end() ? std::string() : quoted(it->second));
    }
    return row + "\n";
}

std::string padchest_header() {
    std::string h;
    for (size_t i = 0; i < kPadchestColumns.size(); ++i) h += (i ? "," : "") + kPadchestColumns[i];
    return h + "\n";
}

}  // namespace

TEST_CASE("adapters: PadChest list-as-text labels and age from the birth year", "[cpu][adapters]") {
    const fs::path d = temp_dir("padchest");
    const std::string csv = padchest_header() +
                            padchest_row({{"ImageID", "216840111366964012819207061112010307142602253_04-014-084.png"},
                                          {"ImageDir", "0"},
                                          {"StudyDate_DICOM", "20140915"},
                                          {"StudyID", "s1"},
                                          {"PatientID", "p1"},
                                          {"PatientBirth", "1948.0"},
                                          {"PatientSex_DICOM", "M"},
                                          {"Projection", "PA"},
                                          {"Report", "sin hallazgos"},
                                          {"MethodLabel", "Physician"},
                                          {"Labels", "['normal']"}}) +
                            padchest_row({{"ImageID", "b.png"},
                                          {"ImageDir", "12"},
                                          {"StudyDate_DICOM", "20150102"},
                                          {"StudyID", "s2"},
                                          {"PatientID", "p2"},
                                          {"PatientBirth", "1930"},
                                          {"PatientSex_DICOM", "F"},
                                          {"Projection", "L"},
                                          {"Labels", "['pleural effusion', ' cardiomegaly', 'pacemaker']"}}) +
                            padchest_row({{"ImageID", "c.png"},
                                          {"ImageDir", "12"},
                                          {"StudyDate_DICOM", "20150102"},
                                          {"StudyID", "s3"},
                                          {"PatientID", "p3"},
                                          {"PatientBirth", "None"},
                                          {"Projection", "AP_horizontal"},
                                          {"Labels", ""}}) +
                            padchest_row({{"ImageID", "d.png"},
                                          {"ImageDir", "3"},
                                          {"StudyDate_DICOM", "20120601"},
                                          {"StudyID", "s4"},
                                          {"PatientID", "p4"},
                                          {"PatientBirth", "1960"},
                                          {"PatientSex_DICOM", "F"},
                                          {"Projection", "COSTAL"},
                                          {"Labels", "['COPD signs', 'unchanged']"}});
    write_file(d / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv", csv);
    PadchestOptions o;
    o.root = d.string();
    const auto r = load_padchest(o);
    REQUIRE(r.size() == 4);
    CHECK(r[0].image_path == (d / "0" / "216840111366964012819207061112010307142602253_04-014-084.png").string());
    CHECK(r[0].patient_id == "p1");
    CHECK(r[0].study_id == "s1");
    CHECK(r[0].age == 66);  // 2014 - 1948
    CHECK(r[0].sex == Sex::male);
    CHECK(r[0].view == View::pa);
    CHECK(r[0].report == "sin hallazgos");
    CHECK(r[0].split == "");
    CHECK(r[0].dataset == "padchest");
    CHECK(label(r[0], "No Finding") == P);
    CHECK(label(r[0], "Cardiomegaly") == N);
    CHECK(label(r[0], "Support Devices") == N);
    // Row 2: effusion, cardiomegaly (leading space in the list), pacemaker; 2015 - 1930 = 85; lateral.
    CHECK(r[1].age == 85);
    CHECK(r[1].view == View::lateral);
    CHECK(r[1].source_findings == std::vector<std::string>{"pleural effusion", "cardiomegaly", "pacemaker"});
    CHECK(label(r[1], "Pleural Effusion") == P);
    CHECK(label(r[1], "Cardiomegaly") == P);
    CHECK(label(r[1], "Support Devices") == P);
    CHECK(label(r[1], "No Finding") == N);
    CHECK(label(r[1], "Edema") == N);
    // Row 3: no labels (unlabelled row) and birth year "None": labels unknown, age unknown; AP supine.
    check_labels(r[2], {});
    CHECK(!r[2].has_age());
    CHECK(r[2].view == View::ap);
    CHECK(r[2].sex == Sex::unknown);
    // Row 4: findings without a CheXpert counterpart: every mapped label negative.
    CHECK(label(r[3], "No Finding") == N);
    CHECK(label(r[3], "Cardiomegaly") == N);
    CHECK(r[3].view == View::other);
    CHECK(r[3].age == 52);

    o.use_image_dir = false;
    CHECK(load_padchest(o)[1].image_path == (d / "b.png").string());

    SECTION("bad birth year and bad date name file:line") {
        write_file(d / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",
                   padchest_header() + padchest_row({{"ImageID", "a.png"},
                                                     {"StudyDate_DICOM", "20140915"},
                                                     {"PatientBirth", "19x8"}}));
        std::string msg = error_of([&] { load_padchest(o); });
        CHECK(contains(msg, "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv:2"));
        CHECK(contains(msg, "PatientBirth '19x8'"));
        write_file(d / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",
                   padchest_header() + padchest_row({{"ImageID", "a.png"},
                                                     {"StudyDate_DICOM", "2014"},
                                                     {"PatientBirth", "1948"}}));
        msg = error_of([&] { load_padchest(o); });
        CHECK(contains(msg, "StudyDate_DICOM '2014'"));
    }
    SECTION("missing Labels column") {
        write_file(d / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",
                   "ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,Projection\n");
        CHECK(contains(error_of([&] { load_padchest(o); }), "no column 'Labels'"));
    }
}

// ---------------------------------------------------------------------------------------------------- VinDr

namespace {

const char* kVindrFindings =
    "Aortic enlargement,Atelectasis,Calcification,Cardiomegaly,Clavicle fracture,Consolidation,Edema,Emphysema,"
    "Enlarged PA,ILD,Infiltration,Lung Opacity,Lung cavity,Lung cyst,Mediastinal shift,Nodule/Mass,"
    "Pleural effusion,Pleural thickening,Pneumothorax,Pulmonary fibrosis,Rib fracture,Other lesion,COPD,"
    "Lung tumor,Pneumonia,Tuberculosis,Other diseases,No finding";

// A 0/1 row with ones at the named findings.
std::string vindr_cells(const std::set<std::string>& ones) {
    std::string row;
    for (const auto& name : split_string(kVindrFindings, ',')) row += std::string(",") + (ones.count(name) ? "1" : "0");
    return row;
}

}  // namespace

TEST_CASE("adapters: VinDr-CXR reader votes", "[cpu][adapters]") {
    const fs::path d = temp_dir("vindr");
    write_file(d / "image_labels_train.csv", std::string("image_id,rad_id,") + kVindrFindings + "\n" +
                                                 "imgA,R8" + vindr_cells({"Cardiomegaly", "Aortic enlargement"}) +
                                                 "\n" +
                                                 "imgA,R9" + vindr_cells({"Cardiomegaly"}) + "\n" +
                                                 "imgA,R10" + vindr_cells({"Pleural effusion"}) + "\n" +
                                                 "imgB,R8" + vindr_cells({"No finding"}) + "\n" +
                                                 "imgB,R9" + vindr_cells({"No finding"}) + "\n" +
                                                 "imgB,R10" + vindr_cells({"No finding"}) + "\n");
    write_file(d / "image_labels_test.csv", std::string("image_id,") + kVindrFindings + "\n" + "imgC" +
                                                vindr_cells({"Rib fracture", "Nodule/Mass"}) + "\n");
    VindrOptions o;
    o.root = d.string();
    auto r = load_vindr(o);
    REQUIRE(r.size() == 3);
    CHECK(r[0].image_path == (d / "train/imgA.dicom").string());
    CHECK(r[0].patient_id == "imgA");
    CHECK(r[0].split == "train");
    CHECK(r[0].view == View::pa);
    CHECK(r[0].dataset == "vindr");
    // Majority of 3 readers = 2 votes: Cardiomegaly (2) yes, Pleural effusion (1) and Aortic enlargement (1) no.
    CHECK(label(r[0], "Cardiomegaly") == P);
    CHECK(label(r[0], "Pleural Effusion") == N);
    CHECK(label(r[0], "No Finding") == N);
    CHECK(label(r[0], "Support Devices") == LabelValue::unknown);
    CHECK(r[0].source_findings == std::vector<std::string>{"Cardiomegaly"});
    CHECK(label(r[1], "No Finding") == P);
    CHECK(r[2].split == "test");
    CHECK(r[2].image_path == (d / "test/imgC.dicom").string());
    CHECK(label(r[2], "Fracture") == P);
    CHECK(label(r[2], "Lung Lesion") == P);
    // One vote is enough with min_votes = 1.
    r = load_dataset("vindr", d.string(), {{"min-votes", "1"}});
    CHECK(label(r[0], "Pleural Effusion") == P);
    CHECK(r[0].source_findings ==
          std::vector<std::string>{"Aortic enlargement", "Cardiomegaly", "Pleural effusion"});
    CHECK(contains(error_of([&] { load_dataset("vindr", d.string(), {{"min-votes", "two"}}); }), "min-votes"));

    // A vote that is not 0/1 names the file, line and column.
    write_file(d / "image_labels_test.csv", std::string("image_id,") + kVindrFindings + "\n" + "imgC" +
                                                vindr_cells({}) + "\n" + "imgD,2" + vindr_cells({}).substr(2) + "\n");
    const std::string msg = error_of([&] { load_vindr(o); });
    CHECK(contains(msg, "image_labels_test.csv:3"));
    CHECK(contains(msg, "Aortic enlargement"));
}

// ---------------------------------------------------------------------------------------------------- manifest

TEST_CASE("adapters: generic manifest write -> read round trip", "[cpu][adapters]") {
    const fs::path d = temp_dir("manifest");
    std::vector<Record> in(3);
    in[0].image_path = (d / "images" / "a.png").string();
    in[0].patient_id = "p1";
    in[0].study_id = "s1";
    in[0].split = "train";
    in[0].view = View::pa;
    in[0].sex = Sex::female;
    in[0].age = 57.3;  // not a whole number: must survive exactly
    in[0].race = Race::hispanic;
    in[0].site = "site_0";
    in[0].dataset = "phantom";
    in[0].labels[label_index("Cardiomegaly")] = P;
    in[0].labels[label_index("Edema")] = N;
    in[0].labels[label_index("Pleural Effusion")] = U;
    in[0].source_findings = {"Cardiomegaly", "Emphysema"};
    in[0].report = "Heart, enlarged.\nSmall \"left\" effusion.";
    in[1].image_path = "/elsewhere/b.png";  // outside the manifest's folder: written absolute
    in[1].patient_id = "p2";
    in[1].view = View::lateral;
    in[1].sex = Sex::male;
    in[1].age = 80;
    in[1].race = Race::black;
    in[1].dataset = "nih";
    in[2].image_path = (d / "images" / "c.png").string();
    in[2].patient_id = "p3";  // everything else unknown
    in[2].dataset = "x";
    const fs::path m = d / "manifest.csv";
    write_manifest(m.string(), in);
    CHECK(!fs::exists(m.string() + ".tmp"));

    // The file itself: header as documented, a relative path, the coding 1/0/-1/blank.
    std::ifstream f(m);
    std::string header;
    std::getline(f, header);
    CHECK(header ==
          "path,patient_id,study_id,split,view,sex,age,race,site,dataset,No Finding,Enlarged Cardiomediastinum,"
          "Cardiomegaly,Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
          "Pleural Effusion,Pleural Other,Fracture,Support Devices,findings,report");
    std::string row1;
    std::getline(f, row1);
    CHECK(row1 == "images/a.png,p1,s1,train,PA,F,57.3,Hispanic,site_0,phantom,,,1,,,0,,,,,-1,,,,"
                  "Cardiomegaly|Emphysema,\"Heart, enlarged.");

    const auto out = load_manifest(m.string());
    REQUIRE(out.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        INFO("record " << i);
        CHECK(norm(out[i].image_path) == norm(in[i].image_path));
        CHECK(out[i].patient_id == in[i].patient_id);
        CHECK(out[i].study_id == in[i].study_id);
        CHECK(out[i].split == in[i].split);
        CHECK(out[i].view == in[i].view);
        CHECK(out[i].sex == in[i].sex);
        CHECK((out[i].age == in[i].age || (std::isnan(out[i].age) && std::isnan(in[i].age))));
        CHECK(out[i].race == in[i].race);
        CHECK(out[i].site == in[i].site);
        CHECK(out[i].dataset == in[i].dataset);
        CHECK(out[i].labels == in[i].labels);
        CHECK(out[i].source_findings == in[i].source_findings);
        CHECK(out[i].report == in[i].report);
    }
    CHECK(out[1].image_path == "/elsewhere/b.png");

    // Passing the output folder as base_dir (as the phantom writer does) gives the same file.
    std::ifstream a(m, std::ios::binary);
    const std::string first((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
    write_manifest(m.string(), in, d.string() + "/");
    std::ifstream b(m, std::ios::binary);
    CHECK(std::string((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>()) == first);

    // Through the dispatcher: the folder holding manifest.csv, or the file itself.
    CHECK(load_dataset("manifest", d.string()).size() == 3);
    CHECK(load_dataset("manifest", m.string()).size() == 3);
}

TEST_CASE("adapters: manifest written by hand with a few columns, and its errors", "[cpu][adapters]") {
    const fs::path d = temp_dir("manifest_hand");
    write_file(d / "m.csv", "path,sex,age,race,Effusion,No Finding\nimg/a.png,F,40,Asian,-1,0\n"
                            "/abs/b.png,,,,1,\n");
    auto r = load_manifest((d / "m.csv").string());
    REQUIRE(r.size() == 2);
    CHECK(r[0].image_path == (d / "img/a.png").string());
    CHECK(r[0].sex == Sex::female);
    CHECK(r[0].age == 40);
    CHECK(r[0].race == Race::asian);
    CHECK(r[0].dataset == "manifest");
    CHECK(r[0].patient_id == "");
    check_labels(r[0], {{"Pleural Effusion", U}, {"No Finding", N}});
    CHECK(r[1].image_path == "/abs/b.png");
    check_labels(r[1], {{"Pleural Effusion", P}});
    CHECK(!r[1].has_age());

    SECTION("missing path column") {
        write_file(d / "m.csv", "image,sex\na.png,F\n");
        CHECK(contains(error_of([&] { load_manifest((d / "m.csv").string()); }), "no column 'path'"));
    }
    SECTION("bad label cell") {
        write_file(d / "m.csv", "path,Edema\na.png,1\nb.png,yes\n");
        const std::string msg = error_of([&] { load_manifest((d / "m.csv").string()); });
        CHECK(contains(msg, "m.csv:3"));
        CHECK(contains(msg, "column 'Edema'"));
    }
    SECTION("a label twice") {
        write_file(d / "m.csv", "path,Effusion,Pleural Effusion\na.png,1,1\n");
        CHECK(contains(error_of([&] { load_manifest((d / "m.csv").string()); }), "appears twice"));
    }
    SECTION("empty path, bad age, wrong field count") {
        write_file(d / "m.csv", "path,age\n,40\n");
        CHECK(contains(error_of([&] { load_manifest((d / "m.csv").string()); }), "m.csv:2: empty path"));
        write_file(d / "m.csv", "path,age\na.png,forty\n");
        CHECK(contains(error_of([&] { load_manifest((d / "m.csv").string()); }), "m.csv:2"));
        write_file(d / "m.csv", "path,age\na.png,40,extra\n");
        CHECK(contains(error_of([&] { load_manifest((d / "m.csv").string()); }), "m.csv:2"));
    }
    SECTION("write into a folder that cannot be created") {
        write_file(d / "blocker", "x");
        CHECK_THROWS(write_manifest((d / "blocker" / "m.csv").string(), r));
    }
}

TEST_CASE("adapters: the committed tiny manifest (used by the cli.data.inspect test)", "[cpu][adapters]") {
    const auto r = load_dataset("manifest", kFixtures + "manifest");
    REQUIRE(r.size() == 4);
    const DatasetSummary s = summarize(r);
    CHECK(s.patients == 3);
    CHECK(s.by_split == std::map<std::string, int64_t>{{"train", 2}, {"valid", 1}, {"test", 1}});
    CHECK(s.by_sex == std::map<std::string, int64_t>{{"F", 2}, {"M", 2}});
    CHECK(s.by_race == std::map<std::string, int64_t>{{"White", 2}, {"Black", 1}, {"other/unknown", 1}});
    CHECK(s.labels.at("Cardiomegaly") == std::array<int64_t, 4>{2, 1, 1, 0});
    CHECK(r[0].image_path == kFixtures + "manifest/images/phantom_0.png");
}

// ---------------------------------------------------------------------------------------------------- dispatch

TEST_CASE("adapters: dispatch by kind and its errors", "[cpu][adapters]") {
    CHECK(dataset_kinds() ==
          std::vector<std::string>{"nih", "chexpert", "chexpert-plus", "mimic", "padchest", "vindr", "manifest"});
    std::string msg = error_of([] { load_dataset("openi", kFixtures + "nih"); });
    CHECK(contains(msg, "unknown dataset kind 'openi'"));
    CHECK(contains(msg, "padchest"));
    msg = error_of([] { load_dataset("nih", "/no/such/folder/cxr"); });
    CHECK(contains(msg, "'/no/such/folder/cxr' does not exist"));
    CHECK(contains(error_of([] { load_dataset("nih", ""); }), "root is empty"));
    msg = error_of([] { load_dataset("nih", kFixtures + "nih", {{"demographics", "x.csv"}}); });
    CHECK(contains(msg, "option 'demographics' does not apply to dataset kind 'nih'"));
    // A folder of the wrong kind says what it looked for.
    CHECK(contains(error_of([] { load_dataset("mimic", kFixtures + "nih"); }), "mimic-cxr-2.0.0-metadata.csv"));
    CHECK(contains(error_of([] { load_dataset("padchest", kFixtures + "nih"); }), "no PADCHEST*.csv"));
    CHECK(contains(error_of([] { load_dataset("vindr", kFixtures + "nih"); }), "image_labels_train.csv"));
    CHECK(contains(error_of([] { load_dataset("manifest", kFixtures + "nih"); }), "no manifest.csv"));
    CHECK(contains(error_of([] { load_dataset("chexpert-plus", kFixtures + "nih"); }), "df_chexpert_plus"));
    CHECK(load_dataset("nih", kFixtures + "nih").size() == 5);
}
