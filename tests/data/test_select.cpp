// Tests for data/select: frontal/PA filtering, patient-disjoint splits (no patient in two splits, the result
// independent of record order, patient fractions as round(f * P) stated in data/select.h, seed dependence,
// errors for bad fractions and missing patient ids) and the summary counts `cxr data inspect` prints, checked
// against counts worked out by hand for small record lists.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/labels.h"
#include "data/select.h"
#include "tensor/error.h"
#include "tests/support/testing.h"

using namespace cxr::data;

namespace {

Record make(const std::string& path, const std::string& patient, View view) {
    Record r;
    r.image_path = path;
    r.patient_id = patient;
    r.view = view;
    return r;
}

// P patients, patient k having 1 + k % 4 images (so images per split differ from patients per split).
std::vector<Record> many_patients(int P) {
    std::vector<Record> out;
    for (int k = 0; k < P; ++k)
        for (int i = 0; i <= k % 4; ++i)
            out.push_back(make("p" + std::to_string(k) + "_" + std::to_string(i) + ".png", "p" + std::to_string(k),
                               View::pa));
    return out;
}

std::map<std::string, std::string> split_by_image(const std::vector<Record>& records) {
    std::map<std::string, std::string> m;
    for (const auto& r : records) m[r.image_path] = r.split;
    return m;
}

std::map<std::string, int> patients_per_split(const std::vector<Record>& records) {
    std::map<std::string, std::set<std::string>> s;
    for (const auto& r : records) s[r.split].insert(r.patient_id);
    std::map<std::string, int> out;
    for (const auto& [k, v] : s) out[k] = (int)v.size();
    return out;
}

}  // namespace

TEST_CASE("select: frontal and PA filtering", "[cpu][select]") {
    const std::vector<Record> records = {make("a", "1", View::pa), make("b", "1", View::ap),
                                         make("c", "1", View::lateral), make("d", "2", View::other),
                                         make("e", "2", View::unknown), make("f", "3", View::pa)};
    const auto frontal = filter_frontal(records);
    REQUIRE(frontal.size() == 3);
    CHECK(frontal[0].image_path == "a");
    CHECK(frontal[1].image_path == "b");
    CHECK(frontal[2].image_path == "f");
    const auto pa = filter_frontal(records, true);
    REQUIRE(pa.size() == 2);
    CHECK(pa[0].image_path == "a");
    CHECK(pa[1].image_path == "f");
    CHECK(filter_frontal({}).empty());
}

TEST_CASE("select: patient-disjoint splits respect the fractions and ignore record order", "[cpu][select]") {
    auto records = many_patients(100);  // 100 patients, 250 images
    REQUIRE(records.size() == 250);
    assign_patient_splits(records, {0.7, 0.1, 0.2}, 7);
    CHECK(patients_in_several_splits(records).empty());
    auto counts = patients_per_split(records);
    CHECK(counts["train"] == 70);  // round(0.7 * 100)
    CHECK(counts["valid"] == 10);
    CHECK(counts["test"] == 20);
    for (const auto& r : records) CHECK((r.split == "train" || r.split == "valid" || r.split == "test"));

    // The same records shuffled (and with stale splits) get the same split per image.
    auto shuffled = many_patients(100);
    std::mt19937 rng(123);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (auto& r : shuffled) r.split = "stale";
    assign_patient_splits(shuffled, {0.7, 0.1, 0.2}, 7);
    CHECK(split_by_image(shuffled) == split_by_image(records));

    // Another seed gives another assignment (same counts).
    auto other = many_patients(100);
    assign_patient_splits(other, {0.7, 0.1, 0.2}, 8);
    CHECK(split_by_image(other) != split_by_image(records));
    CHECK(patients_per_split(other) == counts);
}

TEST_CASE("select: split sizes by round(f * P) for small P and edge fractions", "[cpu][select]") {
    // P = 7: train round(4.9) = 5, valid round(0.7) = 1, test the remaining 1.
    auto seven = many_patients(7);
    assign_patient_splits(seven, {0.7, 0.1, 0.2}, 0);
    auto c = patients_per_split(seven);
    CHECK(c["train"] == 5);
    CHECK(c["valid"] == 1);
    CHECK(c["test"] == 1);
    // P = 10 with 0.5/0.5/0: no test split at all.
    auto ten = many_patients(10);
    assign_patient_splits(ten, {0.5, 0.5, 0.0}, 3);
    c = patients_per_split(ten);
    CHECK(c["train"] == 5);
    CHECK(c["valid"] == 5);
    CHECK(c.count("test") == 0);
    // Everything to test.
    auto all_test = many_patients(5);
    assign_patient_splits(all_test, {0, 0, 1}, 3);
    CHECK(patients_per_split(all_test) == std::map<std::string, int>{{"test", 5}});
    // Empty input is fine.
    std::vector<Record> none;
    assign_patient_splits(none, {0.7, 0.1, 0.2}, 0);
}

TEST_CASE("select: split errors and leak detection", "[cpu][select]") {
    auto records = many_patients(4);
    CHECK_THROWS_AS(assign_patient_splits(records, {0.7, 0.2, 0.2}, 0), cxr::Error);   // sums to 1.1
    CHECK_THROWS_AS(assign_patient_splits(records, {1.2, -0.2, 0.0}, 0), cxr::Error);  // negative
    records[2].patient_id = "";
    try {
        assign_patient_splits(records, {0.7, 0.1, 0.2}, 0);
        FAIL("no error for a record without patient id");
    } catch (const cxr::Error& e) {
        CHECK(std::string(e.what()).find(records[2].image_path) != std::string::npos);
    }
    // A patient in two splits is reported.
    std::vector<Record> leak = {make("a", "1", View::pa), make("b", "1", View::pa), make("c", "2", View::pa)};
    leak[0].split = "train";
    leak[1].split = "test";
    leak[2].split = "train";
    CHECK(patients_in_several_splits(leak) == std::vector<std::string>{"1"});
}

TEST_CASE("select: summary counts by split, sex, age bin, race, view and label", "[cpu][select]") {
    std::vector<Record> r(4);
    r[0] = make("a", "1", View::pa);
    r[0].split = "train";
    r[0].sex = Sex::male;
    r[0].age = 25;
    r[0].race = Race::white;
    r[0].dataset = "nih";
    r[0].labels[label_index("Cardiomegaly")] = LabelValue::positive;
    r[0].source_findings = {"Cardiomegaly", "Emphysema"};
    r[1] = make("b", "1", View::ap);
    r[1].split = "train";
    r[1].sex = Sex::male;
    r[1].age = 80;
    r[1].race = Race::white;
    r[1].dataset = "nih";
    r[1].labels[label_index("Cardiomegaly")] = LabelValue::uncertain;
    r[2] = make("c", "2", View::lateral);
    r[2].split = "test";
    r[2].sex = Sex::female;
    r[2].age = 12;
    r[2].race = Race::asian;
    r[2].dataset = "nih";
    r[2].labels[label_index("Cardiomegaly")] = LabelValue::negative;
    r[2].source_findings = {"Cardiomegaly"};
    r[3] = make("d", "3", View::unknown);
    r[3].dataset = "mimic";
    const DatasetSummary s = summarize(r);
    CHECK(s.images == 4);
    CHECK(s.patients == 3);
    CHECK(s.by_split == std::map<std::string, int64_t>{{"train", 2}, {"test", 1}, {"unassigned", 1}});
    CHECK(s.by_sex == std::map<std::string, int64_t>{{"M", 2}, {"F", 1}, {"unknown", 1}});
    CHECK(s.by_age_bin == std::map<std::string, int64_t>{{"18-40", 1}, {"80+", 1}, {"<18", 1}, {"unknown", 1}});
    CHECK(s.by_race == std::map<std::string, int64_t>{{"White", 2}, {"Asian", 1}, {"other/unknown", 1}});
    CHECK(s.by_view == std::map<std::string, int64_t>{{"PA", 1}, {"AP", 1}, {"LAT", 1}, {"unknown", 1}});
    CHECK(s.by_dataset == std::map<std::string, int64_t>{{"nih", 3}, {"mimic", 1}});
    // [negative, positive, uncertain, unknown]
    CHECK(s.labels.at("Cardiomegaly") == std::array<int64_t, 4>{1, 1, 1, 1});
    CHECK(s.labels.at("Edema") == std::array<int64_t, 4>{0, 0, 0, 4});
    CHECK(s.labels.size() == 14);
    CHECK(s.source_findings == std::map<std::string, int64_t>{{"Cardiomegaly", 2}, {"Emphysema", 1}});
    CHECK(s.age_min == 12);
    CHECK(s.age_max == 80);
    const DatasetSummary e = summarize({});
    CHECK(e.images == 0);
    CHECK(e.age_min == 0);
    CHECK(e.age_max == 0);
}
