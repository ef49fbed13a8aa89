// The study runner (apps/study/study.h): subsets and oversampling, config errors, and a tiny study on phantom
// data that is killed after two runs and restarted — the finished runs are reused, not retrained.
#include "tests/support/testing.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <unistd.h>

#include "apps/study/study.h"
#include "data/phantom.h"

using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;
using nlohmann::json;

namespace {

data::Record person(const std::string& id, data::Sex sex, data::Race race) {
    data::Record r;
    r.image_path = id + ".png";
    r.patient_id = id;
    r.sex = sex;
    r.race = race;
    return r;
}

json manifest(const fs::path& dir, const std::string& split, const std::string& site = "") {
    json s = {{"dataset", "manifest"}, {"root", (dir / "manifest.csv").string()}, {"split", split}};
    if (!site.empty()) s["site"] = site;
    return s;
}

json tiny_study(const fs::path& data) {
    return {{"name", "tiny <study> & co"},
            {"data",
             {{"train", manifest(data / "real", "train")},
              {"valid", manifest(data / "real", "valid")},
              {"tests", json::array({{{"name", "id"}, {"source", manifest(data / "real", "test", "site_0")}},
                                     {{"name", "ood"}, {"source", manifest(data / "real", "test", "site_1")}}})},
              {"synthetic", manifest(data / "syn", "")},
              {"synthetic_stand_in", true}}},
            {"model",
             {{"arch", "resnet18-w4"},
              {"labels", json::array({"No Finding", "Cardiomegaly", "Effusion"})},
              {"image_size", 32},
              {"channels", 1},
              {"mean", json::array({0.5})},
              {"std", json::array({0.25})},
              {"epochs", 1},
              {"batch_size", 16},
              {"lr", 3e-3},
              {"workers", 1}}},
            {"strategies", json::array({{{"name", "real"}, {"kind", "real"}},
                                        {{"name", "syn"}, {"kind", "synthetic"}},
                                        {{"name", "mix"}, {"kind", "mix"}, {"synthetic_amounts", json::array({20})}},
                                        {{"name", "ptft"},
                                         {"kind", "pretrain_finetune"},
                                         {"real_images", json::array({20, 0})}}})},
            {"seeds", json::array({0})},
            {"evaluate", {{"bootstrap", 10}, {"groups", json::array({json::array({"sex"})})}}}};
}

}  // namespace

TEST_CASE("study: subsets are prefixes of one seeded permutation", "[cpu][apps][study]") {
    const auto all = apps::subset_indices(50, 0, 7, 1);
    CHECK(all.size() == 50);
    CHECK(std::set<size_t>(all.begin(), all.end()).size() == 50);
    const auto first10 = apps::subset_indices(50, 10, 7, 1);
    CHECK(std::vector<size_t>(all.begin(), all.begin() + 10) == first10);
    CHECK(apps::subset_indices(50, 10, 8, 1) != first10);  // another seed
    CHECK(apps::subset_indices(50, 10, 7, 2) != first10);  // another set
    CHECK(apps::subset_indices(50, 80, 7, 1).size() == 50);
}

TEST_CASE("study: oversampling balances an attribute", "[cpu][apps][study]") {
    std::vector<data::Record> r;
    for (int i = 0; i < 9; ++i) r.push_back(person("w" + std::to_string(i), data::Sex::female, data::Race::white));
    for (int i = 0; i < 2; ++i) r.push_back(person("b" + std::to_string(i), data::Sex::male, data::Race::black));
    r.push_back(person("u0", data::Sex::unknown, data::Race::other_unknown));
    const auto o = apps::oversample(r, {"race"}, 3);
    std::map<std::string, int> count;
    for (const auto& x : o) ++count[apps::attribute_key(x, {"race"})];
    CHECK(count["White"] == 9);
    CHECK(count["Black"] == 9);
    CHECK(count["?"] == 9);  // unknown values form their own group
    CHECK(o.size() == 27);
    std::map<std::string, int> copies;  // the two Black patients are repeated as evenly as possible (5 + 4)
    for (const auto& x : o)
        if (x.race == data::Race::black) ++copies[x.patient_id];
    CHECK(std::abs(copies["b0"] - copies["b1"]) <= 1);
    CHECK(apps::attribute_key(r[0], {"sex", "race"}) == "F+White");
    CHECK_THROWS_WITH(apps::attribute_key(r[0], {"height"}), Catch::Contains("height"));
}

TEST_CASE("study: config errors name the key", "[cpu][apps][study]") {
    const json base = tiny_study("/nonexistent");
    auto with = [&](const std::function<void(json&)>& edit) {
        json j = base;
        edit(j);
        return j;
    };
    CHECK_NOTHROW(apps::StudyConfig::from_json(base));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["colour"] = 1; })),
                      Catch::Contains("\"colour\""));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["strategies"][1]["kind"] = "magic"; })),
                      Catch::Contains("strategies[1].kind"));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["strategies"][2].erase("synthetic_amounts"); })),
                      Catch::Contains("synthetic_amounts"));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["baseline"] = "syn"; })),
                      Catch::Contains("baseline"));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["data"].erase("synthetic"); })),
                      Catch::Contains("data.synthetic"));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["strategies"][0]["train"] = {{"lr", -1}}; })),
                      Catch::Contains("strategies[0].train"));
    CHECK_THROWS_WITH(apps::StudyConfig::from_json(with([](json& j) { j["strategies"][1]["name"] = "real"; })),
                      Catch::Contains("unique"));
    // the resolved config reads back to itself
    const auto c = apps::StudyConfig::from_json(base);
    CHECK(apps::StudyConfig::from_json(c.to_json()).to_json() == c.to_json());
}

TEST_CASE("study: a killed study restarts and reuses its finished models", "[cpu][apps][study]") {
    TempDir tmp("resume");
    data::PhantomOptions real;
    real.n = 120;
    real.size = 32;
    real.seed = 5;
    real.prevalence = {0.4, 0.4, 0.2, 0.2, 0.2, 0.2, 0.2};
    data::write_phantom_dataset((fs::path(tmp.path()) / "data/real").string(), real);
    data::PhantomOptions syn = real;
    syn.n = 60;
    syn.seed = 6;
    syn.sites = 1;
    data::write_phantom_dataset((fs::path(tmp.path()) / "data/syn").string(), syn);
    const apps::StudyConfig config = apps::StudyConfig::from_json(tiny_study(fs::path(tmp.path()) / "data"));
    const std::string out = (fs::path(tmp.path()) / "study").string();

    apps::StudyHooks kill;
    kill.quiet = true;
    kill.after_run = [n = 0](const std::string&) mutable { return ++n < 2; };  // killed after the second run
    const apps::StudyResult first = apps::run_study(config, out, kill);
    CHECK_FALSE(first.complete);
    REQUIRE(first.trained.size() == 2);
    CHECK(first.trained[0] == "real/seed0");  // the baseline runs first
    CHECK_FALSE(fs::exists(fs::path(tmp.path()) / "study/metrics.json"));
    std::map<std::string, fs::file_time_type> stamp;
    for (const auto& id : first.trained) {
        std::string d = id;
        std::replace(d.begin(), d.end(), '/', '_');
        stamp[id] = fs::last_write_time(fs::path(tmp.path()) / "study/runs" / d / "done.json");
    }

    apps::StudyHooks quiet;
    quiet.quiet = true;
    const apps::StudyResult second = apps::run_study(config, out, quiet);
    CHECK(second.complete);
    CHECK(second.reused == first.trained);
    // real, syn, mix, the pretraining run and two fine-tuning runs
    CHECK(first.trained.size() + second.trained.size() == 6);
    for (const auto& [id, t] : stamp) {
        std::string d = id;
        std::replace(d.begin(), d.end(), '/', '_');
        CHECK(fs::last_write_time(fs::path(tmp.path()) / "study/runs" / d / "done.json") == t);  // not rewritten
    }
    REQUIRE(fs::exists(second.report));

    std::ifstream in(fs::path(tmp.path()) / "study/metrics.json");
    const json m = json::parse(in);
    CHECK(m["format"] == "cxr-study");
    CHECK(m["runs"].size() == 5);         // the pretraining run is not evaluated
    CHECK(m["summary"].size() == 5 * 2);  // every evaluated variant on both tests
    CHECK(m["sweep"].size() == 2);        // ptft over real_images {20, all}, per test
    CHECK(m["study"]["synthetic_source"]["stand_in"] == true);
    for (const auto& r : m["runs"]) {
        const bool baseline = r["strategy"] == "real";
        for (const auto& t : {"id", "ood"}) {
            INFO(r["id"] << " " << t);
            CHECK(r["tests"][t]["macro"].contains("auroc"));
            CHECK(r["tests"][t].contains("delong") == !baseline);  // compared with the real-only model
        }
    }
    const json& ptft = m["runs"][3];  // plan order: real, syn, mix, (ptft pretraining), ptft_real20, ptft
    CHECK(ptft["id"] == "ptft_real20/seed0");
    CHECK(ptft["real_images"] == 20);
    CHECK(ptft["synthetic_images"] == 0);

    // a different config in the same folder is refused
    json other = tiny_study(fs::path(tmp.path()) / "data");
    other["seeds"] = json::array({1});
    CHECK_THROWS_WITH(apps::run_study(apps::StudyConfig::from_json(other), out, quiet),
                      Catch::Contains("another config"));
}

TEST_CASE("study: a data source can re-split a dataset into patient-disjoint splits", "[cpu][apps][study]") {
    TempDir tmp("resplit");
    data::PhantomOptions o;
    o.n = 80;
    o.size = 32;
    data::write_phantom_dataset(tmp / "ph", o);
    auto source = [&](const std::string& split, double train) {
        return json{{"dataset", "manifest"},
                    {"root", tmp / "ph/manifest.csv"},
                    {"split", split},
                    {"resplit", {{"train", train}, {"valid", 0.25}, {"test", 0.75 - train}, {"seed", 3}}}};
    };
    const auto train = apps::load_source(apps::DataSource::from_json(source("train", 0.5), "t"));
    const auto test = apps::load_source(apps::DataSource::from_json(source("test", 0.5), "t"));
    CHECK(train.size() == 40);  // one image per phantom patient: 80 patients x 0.5
    CHECK(test.size() == 20);
    std::set<std::string> train_patients;
    for (const auto& r : train) train_patients.insert(r.patient_id);
    for (const auto& r : test) CHECK(train_patients.count(r.patient_id) == 0);
    // the same seed gives the same split; the resolved source keeps the rule
    const auto again = apps::load_source(apps::DataSource::from_json(source("train", 0.5), "t"));
    CHECK(again.front().image_path == train.front().image_path);
    CHECK(apps::DataSource::from_json(source("train", 0.5), "t").to_json()["resplit"]["seed"] == 3);
    CHECK_THROWS_WITH(apps::DataSource::from_json(source("train", 0.9), "data.train"), Catch::Contains("data.train.resplit"));
}
