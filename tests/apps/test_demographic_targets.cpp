// Demographic targets of the classifier trainer (apps/train/classifier_trainer.h): "sex:female", "race:<race>"
// (one-vs-rest over Asian/Black/Hispanic/White) and "age:<bin>" (metrics/fairness.h bins) derived from each record's
// demographics. Checked: the target values of hand-made records against the rules written in the header; a config
// with all nine targets trains on phantom images (which carry sex, race and age) and its predictions CSV has the
// truth and score columns of every target with the records' demographics as truth; unknown names are refused.
#include "tests/support/testing.h"

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "apps/train/classifier_trainer.h"
#include "data/adapters/adapters.h"
#include "data/labels.h"
#include "data/phantom.h"
#include "metrics/fairness.h"
#include "metrics/predictions.h"

using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;
using data::LabelValue;

namespace {

data::Record person(data::Sex sex, data::Race race, double age) {
    data::Record r;
    r.sex = sex;
    r.race = race;
    r.age = age;
    return r;
}

}  // namespace

TEST_CASE("demographic targets: values by hand", "[cpu][apps][trainer][demographics]") {
    using data::Race;
    using data::Sex;
    const data::Record f_black_39 = person(Sex::female, Race::black, 39.9);
    const data::Record m_white_80 = person(Sex::male, Race::white, 80.0);
    const data::Record u_other_17 = person(Sex::unknown, Race::other_unknown, 17.0);
    const data::Record m_hisp_noage = person(Sex::male, Race::hispanic, std::nan(""));

    CHECK(apps::demographic_target("sex:female", f_black_39) == LabelValue::positive);
    CHECK(apps::demographic_target("sex:female", m_white_80) == LabelValue::negative);
    CHECK(apps::demographic_target("sex:female", u_other_17) == LabelValue::unknown);

    CHECK(apps::demographic_target("race:black", f_black_39) == LabelValue::positive);
    CHECK(apps::demographic_target("race:white", f_black_39) == LabelValue::negative);
    CHECK(apps::demographic_target("race:white", m_white_80) == LabelValue::positive);
    CHECK(apps::demographic_target("race:hispanic", m_hisp_noage) == LabelValue::positive);
    CHECK(apps::demographic_target("race:asian", m_hisp_noage) == LabelValue::negative);
    CHECK(apps::demographic_target("race:asian", u_other_17) == LabelValue::unknown);  // other/unknown race

    // bins [18, 40), [40, 60), [60, 80), [80, inf) as metrics::age_bin
    CHECK(apps::demographic_target("age:18-40", f_black_39) == LabelValue::positive);
    CHECK(apps::demographic_target("age:40-60", f_black_39) == LabelValue::negative);
    CHECK(apps::demographic_target("age:80+", m_white_80) == LabelValue::positive);
    CHECK(apps::demographic_target("age:60-80", m_white_80) == LabelValue::negative);
    CHECK(apps::demographic_target("age:18-40", u_other_17) == LabelValue::unknown);   // below 18: no bin
    CHECK(apps::demographic_target("age:40-60", m_hisp_noage) == LabelValue::unknown);  // no age
    CHECK_THROWS_WITH(apps::demographic_target("Cardiomegaly", f_black_39),
                      Catch::Contains("\"Cardiomegaly\" is not a demographic target"));

    // target_records: slot l holds label l (a CheXpert label keeps its value), slots beyond L are unknown
    apps::ClassifierConfig c;
    c.labels = {"race:black", "Cardiomegaly", "age:18-40"};
    data::Record r = f_black_39;
    r.labels[static_cast<size_t>(data::label_index("Cardiomegaly"))] = LabelValue::positive;
    const auto t = apps::target_records(c, {r});
    REQUIRE(t.size() == 1);
    CHECK(t[0].labels[0] == LabelValue::positive);
    CHECK(t[0].labels[1] == LabelValue::positive);
    CHECK(t[0].labels[2] == LabelValue::positive);
    CHECK(t[0].labels[3] == LabelValue::unknown);
    CHECK(apps::target_columns(c) == std::vector<int>{0, 1, 2});
    CHECK(c.label_indices() == std::vector<int>{-1, data::label_index("Cardiomegaly"), -1});
    // a CheXpert-only config is unchanged
    apps::ClassifierConfig chexpert;
    chexpert.labels = {"Effusion"};
    CHECK(apps::target_columns(chexpert) == std::vector<int>{10});
    CHECK(apps::target_records(chexpert, {r})[0].labels == r.labels);
}

TEST_CASE("demographic targets: unknown names and too many labels are refused", "[cpu][apps][trainer][demographics]") {
    nlohmann::json j = {{"labels", {"sex:female", "race:martian"}}};
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json(j),
                      Catch::Contains("\"race:martian\" is neither a CheXpert label") &&
                          Catch::Contains("race:hispanic"));
    std::vector<std::string> many = apps::demographic_target_names();  // 9 + 6 CheXpert = 15 > 14 slots
    for (const char* l : {"Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pneumothorax", "No Finding"})
        many.push_back(l);
    nlohmann::json k = {{"labels", many}};
    CHECK_THROWS_WITH(apps::ClassifierConfig::from_json(k), Catch::Contains("at most 14 labels"));
}

TEST_CASE("demographic targets: a demographic classifier trains on phantom images and predicts its columns",
          "[cpu][apps][trainer][demographics]") {
    TempDir data_dir("demo_targets_data"), out("demo_targets_run");
    data::PhantomOptions o;
    o.n = 24;
    o.size = 32;
    o.seed = 5;
    data::write_phantom_dataset(data_dir.path(), o);
    const auto all = data::load_manifest(data_dir / "manifest.csv");
    const std::vector<data::Record> train(all.begin(), all.begin() + 16), valid(all.begin() + 16, all.end());

    apps::ClassifierConfig c;
    c.arch = "resnet18-w4";
    c.labels = apps::demographic_target_names();
    c.image_size = 32;
    c.channels = 1;
    c.mean = {0.5};
    c.std = {0.25};
    c.epochs = 1;
    c.batch_size = 8;
    c.lr = 3e-3;
    c.workers = 0;
    c.seed = 2;
    apps::TrainHooks quiet;
    quiet.quiet = true;
    const apps::TrainResult res = apps::train_classifier(c, train, valid, out.path(), quiet);
    CHECK(res.epochs_run == 1);
    CHECK(res.step_losses.size() == 2);  // 16 images / batch 8
    for (double l : res.step_losses) CHECK(std::isfinite(l));
    // the checkpoint's config keeps the demographic label names, so a loader (the synthesis QC) finds them
    CHECK(apps::checkpoint_config(res.best_checkpoint).label_names() == apps::demographic_target_names());

    auto model = apps::load_classifier(res.best_checkpoint, c);
    const metrics::Predictions p = apps::predict(*model, c, valid);
    const std::string csv = out / "valid_predictions.csv";
    metrics::write_predictions_csv(csv, p);
    std::ifstream in(csv);
    std::string header;
    std::getline(in, header);
    for (const auto& name : apps::demographic_target_names()) {
        INFO(name);
        CHECK(header.find("," + name + ",") != std::string::npos);
        CHECK(header.find("," + name + ":score") != std::string::npos);
    }
    // truth columns follow the records' demographics
    const metrics::Predictions back = metrics::read_predictions_csv(csv);
    REQUIRE(back.label_names == apps::demographic_target_names());
    for (size_t n = 0; n < valid.size(); ++n) {
        const data::Record& r = valid[n];
        INFO("record " << n);
        CHECK(back.truth[0][n] == (r.sex == data::Sex::female ? 1 : 0));
        CHECK(back.truth[1][n] == (r.race == data::Race::asian ? 1 : 0));
        CHECK(back.truth[4][n] == (r.race == data::Race::white ? 1 : 0));
        const std::string bin = metrics::age_bin(r.age);
        CHECK(back.truth[5][n] == (bin == "18-40" ? 1 : 0));
        CHECK(back.truth[8][n] == (bin == "80+" ? 1 : 0));
        for (size_t l = 0; l < back.label_names.size(); ++l) CHECK((back.scores[l][n] >= 0 && back.scores[l][n] <= 1));
    }
}
