// Tests of metrics/fairness.h and metrics/predictions.h: the predictions CSV written by Python's csv module
// (tests/fixtures/metrics_predictions.csv) is read and its per-subgroup macro AUROC, underdiagnosis rate (FPR of the
// binarised No Finding prediction) and gaps (min subgroup size 15) match scikit-learn references computed by
// tests/fixtures/tools/make_metrics_fixtures.py for sex, race, sex x race and sex x age groupings; age bins,
// grouping parsing, the RFC 4180 record parser and the CSV write/read round trip are checked by hand.
#include "tests/metrics/metrics_fixture.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "metrics/fairness.h"
#include "metrics/predictions.h"
#include "tensor/error.h"

using namespace cxr::metrics;
using cxr::testing::fx1;

namespace {

std::string fixture_csv() { return std::string(CXR_SOURCE_DIR) + "/tests/fixtures/metrics_predictions.csv"; }

void check_opt(const std::optional<double>& got, double want) {
    if (std::isnan(want)) {
        CHECK_FALSE(got.has_value());
    } else {
        REQUIRE(got.has_value());
        CHECK(std::fabs(*got - want) <= 1e-9);
    }
}

}  // namespace

TEST_CASE("fairness: subgroup AUROC, underdiagnosis and gaps match scikit-learn", "[cpu][fairness]") {
    const Predictions p = read_predictions_csv(fixture_csv());
    REQUIRE(p.size() == 240);
    REQUIRE(p.label_names == std::vector<std::string>{"Effusion", "Edema", "No Finding"});
    FairnessOptions fo;
    fo.labels = {0, 1, 2};
    fo.no_finding = 2;
    fo.no_finding_threshold = 0.5;
    fo.min_size = 15;
    int checked = 0;
    for (const std::string spec : {"sex", "race", "sex,race", "sex,age"}) {
        const auto attrs = parse_grouping(spec);
        const std::string g = grouping_name(attrs);
        INFO("grouping " << g);
        FairnessEvaluator ev(p, assign_subgroups(p, attrs), fo);
        const FairnessResult r = ev.evaluate();
        REQUIRE_FALSE(r.subgroups.empty());
        for (const auto& s : r.subgroups) {
            INFO("subgroup " << s.name);
            const std::string k = "fair." + g + "." + s.name;
            CHECK(s.n == (int64_t)fx1(k + ".n"));
            check_opt(s.auroc, fx1(k + ".auroc"));
            check_opt(s.fpr_no_finding, fx1(k + ".fpr_no_finding"));
            CHECK(s.in_gaps == (s.n >= 15));
            ++checked;
        }
        check_opt(r.auroc_gap, fx1("fair." + g + ".auroc_gap"));
        check_opt(r.underdiagnosis_gap, fx1("fair." + g + ".underdiagnosis_gap"));
        // All-one weights are the unweighted result.
        const std::vector<double> ones(p.size(), 1.0);
        const FairnessResult rw = ev.evaluate(&ones);
        CHECK(rw.auroc_gap == r.auroc_gap);
        CHECK(rw.underdiagnosis_gap == r.underdiagnosis_gap);
    }
    CHECK(checked > 15);
}

TEST_CASE("fairness: age bins, grouping names and errors", "[cpu][fairness]") {
    CHECK(age_bin(17.9) == "");
    CHECK(age_bin(18) == "18-40");
    CHECK(age_bin(39.99) == "18-40");
    CHECK(age_bin(40) == "40-60");
    CHECK(age_bin(60) == "60-80");
    CHECK(age_bin(80) == "80+");
    CHECK(age_bin(101) == "80+");
    CHECK(grouping_name(parse_grouping("sex,age")) == "sex+age");
    CHECK_THROWS_AS(parse_grouping("sex,gender"), cxr::Error);
    CHECK_THROWS_AS(parse_grouping("sex,sex"), cxr::Error);
    Predictions p = parse_predictions_csv("image_id,A,A:score\nx,1,0.5\n", "mem.csv");
    CHECK_THROWS_AS(assign_subgroups(p, {"race"}), cxr::Error);
}

TEST_CASE("fairness: small subgroups are reported but excluded from the gaps", "[cpu][fairness]") {
    // Hand case: group F has 4 cases, M has 2; No Finding threshold 0.5.
    // F: No Finding truth 0 cases are f1 (0.7 -> predicted NF), f2 (0.2) -> FPR 1/2. M: m1 (0.9) -> FPR 1.
    const std::string csv =
        "image_id,No Finding,No Finding:score,sex\n"
        "f1,0,0.7,F\nf2,0,0.2,F\nf3,1,0.8,F\nf4,1,0.1,F\n"
        "m1,0,0.9,M\nm2,1,0.95,M\nu1,1,0.3,\n";
    const Predictions p = parse_predictions_csv(csv, "mem.csv");
    FairnessOptions fo;
    fo.labels = {0};
    fo.no_finding = 0;
    fo.min_size = 3;
    FairnessEvaluator ev(p, assign_subgroups(p, {"sex"}), fo);
    CHECK(ev.subgroups().unassigned == 1);
    FairnessResult r = ev.evaluate();
    REQUIRE(r.subgroups.size() == 2);
    CHECK(r.subgroups[0].name == "F");
    CHECK(*r.subgroups[0].fpr_no_finding == 0.5);
    // F AUROC: positives {0.8, 0.1}, negatives {0.7, 0.2}: 0.8 beats both, 0.1 beats none -> 2/4.
    CHECK(*r.subgroups[0].auroc == 0.5);
    CHECK(*r.subgroups[1].fpr_no_finding == 1.0);
    CHECK_FALSE(r.subgroups[1].in_gaps);
    CHECK_FALSE(r.underdiagnosis_gap.has_value());  // only one eligible subgroup
    fo.min_size = 2;
    r = FairnessEvaluator(p, assign_subgroups(p, {"sex"}), fo).evaluate();
    CHECK(*r.underdiagnosis_gap == 0.5);
    CHECK(r.underdiagnosis_max == "M");
    CHECK(*r.auroc_gap == 0.5);  // M: positive 0.95 > negative 0.9 -> 1.0
}

TEST_CASE("predictions: RFC 4180 records, validation errors and the round trip", "[cpu][fairness]") {
    const auto rec = parse_csv_records("\xEF\xBB\xBF" "a,\"b,c\",\"d\"\"e\"\r\n\r\n1,\"x\ny\",3\n", "t.csv");
    REQUIRE(rec.size() == 2);
    CHECK(rec[0] == std::vector<std::string>{"a", "b,c", "d\"e"});
    CHECK(rec[1] == std::vector<std::string>{"1", "x\ny", "3"});
    CHECK_THROWS_AS(parse_csv_records("a,\"b\n", "t.csv"), cxr::Error);
    CHECK_THROWS_AS(parse_csv_records("a,b\"c\n", "t.csv"), cxr::Error);

    auto fails_with = [](const std::string& text, const std::string& part) {
        try {
            parse_predictions_csv(text, "p.csv");
        } catch (const cxr::Error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(part) != std::string::npos);
            return;
        }
        FAIL("no error for: " << text);
    };
    fails_with("image_id,A,A:score\nx,2,0.5\n", "p.csv:2");
    fails_with("image_id,A,A:score\nx,1,0.5\nx,0,0.1\n", "already on line 2");
    fails_with("image_id,A:score\nx,0.5\n", "no truth column");
    fails_with("image_id,A,A:score\nx,1,abc\n", "finite number");
    fails_with("image_id,A,A:score,sex\nx,1,0.5,Q\n", "sex");
    fails_with("image_id,A,A:score\nx,1\n", "fields");

    const Predictions p = read_predictions_csv(fixture_csv());
    const std::string tmp = (std::filesystem::temp_directory_path() / "cxr_test_predictions_roundtrip.csv").string();
    write_predictions_csv(tmp, p);
    const Predictions q = read_predictions_csv(tmp);
    std::remove(tmp.c_str());
    CHECK(q.image_ids == p.image_ids);
    CHECK(q.label_names == p.label_names);
    CHECK(q.truth == p.truth);
    CHECK(q.scores == p.scores);
    CHECK(q.sex == p.sex);
    CHECK(q.age == p.age);
    CHECK(q.race == p.race);
}
