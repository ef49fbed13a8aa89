// The synthetic-set builder (apps/synth/synthesize.h) with mock callbacks: the acceptance rule by hand, the seed
// rule, the retry loop (a mock QC rejects chosen attempts: seeds drawn, attempts recorded, keep/drop on failure,
// acceptance rates overall and per sex×race subgroup), batch invariance, resume after a simulated kill (identical
// files), a refused resume with another config, the manifest (the prompt's demographics, the source's labels and
// split), config and classifier errors; then one end-to-end `cxr synthesize` run with the tiny diffusers pipeline
// tests/fixtures/sd_tiny (16×16) and a demographic classifier trained for one epoch on phantom images. That run
// proves the wiring only: the tiny models' QC decisions are meaningless.
#include "tests/support/testing.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "apps/commands.h"
#include "apps/synth/synthesize.h"
#include "apps/train/classifier_trainer.h"
#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/labels.h"
#include "data/phantom.h"
#include "data/prompts.h"
#include "diffusion/pipeline.h"
#include "metrics/fairness.h"
#include "metrics/predictions.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/reduce.h"


using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;
using nlohmann::json;

namespace {

// Three source records; the third has no age and is skipped by the expansion.
std::vector<data::Record> sources() {
    std::vector<data::Record> s(3);
    const char* reports[] = {"No acute cardiopulmonary process.", "Small left pleural effusion. Cardiomegaly.",
                             "Clear lungs."};
    for (size_t i = 0; i < s.size(); ++i) {
        s[i].image_path = "/nonexistent/src" + std::to_string(i) + ".png";
        s[i].patient_id = "p" + std::to_string(i);
        s[i].report = reports[i];
        s[i].sex = data::Sex::male;
        s[i].race = data::Race::white;
        s[i].view = data::View::pa;
    }
    s[0].age = 35;
    s[0].split = "valid";
    s[0].labels[static_cast<size_t>(data::label_index("No Finding"))] = data::LabelValue::positive;
    s[1].age = 77;
    s[1].split = "";  // -> "train"
    s[1].labels[static_cast<size_t>(data::label_index("Pleural Effusion"))] = data::LabelValue::positive;
    s[1].labels[static_cast<size_t>(data::label_index("Cardiomegaly"))] = data::LabelValue::positive;
    return s;
}

apps::SynthesisConfig base_config(const std::string& out) {
    apps::SynthesisConfig c;
    c.out = out;
    c.seed = 100;
    c.images_per_prompt = 2;
    c.max_retries = 2;
    c.qc.attributes = {"sex", "race", "age"};
    c.qc.classifier = "mock";
    return c;
}

// A deterministic 8×8 gray image from the seed alone (as the pipeline's image depends only on prompt and seed).
tensor::Tensor mock_image(uint64_t seed) {
    std::vector<float> px(64);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>((seed * 37 + i * 11) % 256) / 255.0f;
    return tensor::from_vector(px, {1, 8, 8});
}

struct MockGenerator {
    std::vector<apps::ImageRequest> seen;
    int64_t fail_after = -1;  // throw once this many requests were served (a simulated kill)
    apps::ImageGenerator fn() {
        return [this](const std::vector<apps::ImageRequest>& reqs) {
            std::vector<tensor::Tensor> out;
            for (const auto& r : reqs) {
                if (fail_after >= 0 && static_cast<int64_t>(seen.size()) >= fail_after)
                    throw std::runtime_error("simulated kill");
                seen.push_back(r);
                out.push_back(mock_image(r.seed));
            }
            return out;
        };
    }
};

// Probabilities that agree with the prompt, except that attempts a < reject[(item, copy)] get the other sex and,
// for odd items, also the wrong race.
apps::QcCallback mock_qc(const std::vector<data::PromptItem>& items,
                         std::map<std::pair<int64_t, int64_t>, int64_t> reject) {
    return [items, reject](const std::vector<tensor::Tensor>& images, const std::vector<apps::ImageRequest>& reqs) {
        REQUIRE(images.size() == reqs.size());
        std::vector<apps::DemographicProbabilities> out;
        for (const auto& r : reqs) {
            const data::PromptItem& it = items.at(static_cast<size_t>(r.item));
            const auto f = reject.find({r.item, r.copy});
            const bool bad = f != reject.end() && r.attempt < f->second;
            apps::DemographicProbabilities p;
            const bool female = it.sex == data::Sex::female;
            p.female = (female != bad) ? 0.8 : 0.2;
            std::array<double, 4> race{0.1, 0.1, 0.1, 0.1};
            const int slot = static_cast<int>(it.race);  // Asian, Black, Hispanic, White
            race[static_cast<size_t>(bad && r.item % 2 == 1 ? (slot + 1) % 4 : slot)] = 0.9;
            p.race = race;
            std::array<double, 4> age{0.2, 0.2, 0.2, 0.2};
            const std::string bin = metrics::age_bin(it.age);
            const int ab = bin == "18-40" ? 0 : bin == "40-60" ? 1 : bin == "60-80" ? 2 : 3;
            age[static_cast<size_t>(ab)] = 0.7;
            p.age = age;
            out.push_back(p);
        }
        return out;
    };
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<json> jsonl(const std::string& path) {
    std::vector<json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(json::parse(line));
    std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
        return std::make_pair(a["item"].get<int64_t>(), a["copy"].get<int64_t>()) <
               std::make_pair(b["item"].get<int64_t>(), b["copy"].get<int64_t>());
    });
    return out;
}

// Every output file except run.json (which holds times and commits), by relative path.
std::map<std::string, std::string> outputs(const std::string& dir) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        const std::string rel = fs::relative(e.path(), dir).string();
        if (rel == "run.json" || rel == "qc.jsonl" || rel == "config.json") continue;
        m[rel] = slurp(e.path().string());
    }
    return m;
}

}  // namespace

TEST_CASE("synthesize: the acceptance rule and the seed rule by hand", "[cpu][apps][synthesize]") {
    data::PromptItem it;
    it.sex = data::Sex::female;
    it.race = data::Race::hispanic;
    it.age = 40;  // bin 40-60
    apps::DemographicProbabilities p;
    p.female = 0.5;  // >= 0.5 counts as female
    p.race = std::array<double, 4>{0.3, 0.2, 0.3, 0.1};   // tie with Asian: accepted
    p.age = std::array<double, 4>{0.6, 0.5, 0.1, 0.0};    // 18-40 beats 40-60: rejected
    auto d = apps::qc_decide(p, it, {"sex", "race"});
    CHECK(d.accepted);
    d = apps::qc_decide(p, it, {"sex", "race", "age"});
    CHECK_FALSE(d.accepted);
    CHECK(d.failed == std::vector<std::string>{"age"});
    p.female = 0.49;
    p.race = std::array<double, 4>{0.3, 0.2, 0.29, 0.1};
    d = apps::qc_decide(p, it, {"race", "sex"});
    CHECK(d.failed == std::vector<std::string>{"race", "sex"});
    it.sex = data::Sex::male;
    CHECK(apps::qc_decide(p, it, {"sex"}).accepted);
    apps::DemographicProbabilities empty;
    CHECK_THROWS_WITH(apps::qc_decide(empty, it, {"race"}), Catch::Contains("no race probabilities"));

    apps::SynthesisConfig c;
    c.seed = 1000;
    c.images_per_prompt = 2;
    c.max_retries = 2;  // 3 attempts per image
    CHECK(apps::attempt_seed(c, 0, 0, 0) == 1000);
    CHECK(apps::attempt_seed(c, 0, 0, 2) == 1002);
    CHECK(apps::attempt_seed(c, 0, 1, 0) == 1003);
    CHECK(apps::attempt_seed(c, 3, 1, 1) == 1000 + (3 * 2 + 1) * 3 + 1);
}

TEST_CASE("synthesize: the retry loop, keep and drop on failure, acceptance per subgroup", "[cpu][apps][synthesize]") {
    TempDir keep_dir("synth_keep"), drop_dir("synth_drop");
    apps::SynthesisConfig c = base_config(keep_dir.path());
    const auto items = apps::synthesis_prompts(c, sources());
    REQUIRE(items.size() == 16);  // 2 sources with an age × 8 sex×race combinations
    // item 0 copy 0: rejected once; item 1 copy 1: rejected always (3 attempts); item 2 copy 0: rejected twice
    const std::map<std::pair<int64_t, int64_t>, int64_t> reject = {{{0, 0}, 1}, {{1, 1}, 99}, {{2, 0}, 2}};

    MockGenerator gen;
    std::vector<int64_t> progress_done;
    const apps::SynthesisResult r = apps::synthesize(c, sources(), gen.fn(), mock_qc(items, reject),
                                                     [&](const apps::SynthesisProgress& p) {
                                                         progress_done.push_back(p.done);
                                                         CHECK(p.total == 32);
                                                     });
    CHECK(r.images == 32);
    CHECK(r.kept == 32);
    CHECK(r.accepted == 31);
    CHECK(r.qc_failed == 1);
    CHECK(r.attempts == 32 + 1 + 2 + 2);
    CHECK(r.drawn == r.attempts);
    CHECK(progress_done.back() == 32);
    // the seeds drawn: image (i, j) tries seed(i, j, 0), seed(i, j, 1), ... in order
    std::map<std::pair<int64_t, int64_t>, std::vector<uint64_t>> seeds;
    for (const auto& q : gen.seen) {
        CHECK(q.prompt == items[static_cast<size_t>(q.item)].prompt);
        CHECK(q.seed == apps::attempt_seed(c, q.item, q.copy, q.attempt));
        seeds[{q.item, q.copy}].push_back(q.seed);
    }
    CHECK(seeds[{0, 0}] == std::vector<uint64_t>{100, 101});
    CHECK(seeds[{1, 1}] == std::vector<uint64_t>{100 + 9, 110, 111});
    CHECK(seeds[{2, 0}] == std::vector<uint64_t>{112, 113, 114});
    CHECK(seeds[{0, 1}] == std::vector<uint64_t>{103});
    // the kept image is the accepted attempt's (or the last one's)
    const auto lines = jsonl(keep_dir / "qc.jsonl");
    REQUIRE(lines.size() == 32);
    CHECK(lines[0]["seed"] == 101);
    CHECK(lines[0]["attempts"].size() == 2);
    CHECK(lines[0]["attempts"][0]["failed"] == json{"sex"});
    CHECK(lines[0]["attempts"][1]["accepted"] == true);
    CHECK(lines[3]["accepted"] == false);
    CHECK(lines[3]["kept"] == true);
    CHECK(lines[3]["seed"] == 111);
    CHECK(lines[3]["attempts"][2]["failed"] == json{"sex", "race"});  // odd item: race wrong too
    CHECK(lines[3]["attempts"][2]["p_female"].is_number());
    CHECK(lines[3]["attempts"][2]["p_race"].size() == 4);
    CHECK(lines[3]["attempts"][2]["p_age"].contains("60-80"));
    CHECK(lines[4]["seed"] == 114);
    const tensor::Tensor png = data::read_image(keep_dir / "images/000001_01.png");
    CHECK(png.sizes() == tensor::Shape{1, 8, 8});
    const std::vector<float> want = mock_image(111).to_vector<float>(), got = png.to_vector<float>();
    for (size_t i = 0; i < want.size(); ++i) CHECK(std::abs(got[i] - want[i]) < 0.5f / 255.0f + 1e-6f);

    // qc.json: overall and per sex×race subgroup
    const json q = json::parse(slurp(keep_dir / "qc.json"));
    CHECK(q["images"] == 32);
    CHECK(q["accepted"] == 31);
    CHECK(q["qc_failed"] == 1);
    CHECK(q["accepted_first_attempt"] == 29);
    CHECK(q["attempts"] == 37);
    CHECK(q["acceptance_rate"].get<double>() == Approx(31.0 / 32.0));
    CHECK(q["first_attempt_acceptance_rate"].get<double>() == Approx(29.0 / 32.0));
    CHECK(q["attempt_acceptance_rate"].get<double>() == Approx(31.0 / 37.0));
    CHECK(q["failed_checks"]["sex"] == 6);   // 1 + 3 + 2 rejected attempts
    CHECK(q["failed_checks"]["race"] == 3);  // item 1's three attempts
    CHECK(q["complete"] == true);
    REQUIRE(q["failures"].size() == 1);
    CHECK(q["failures"][0]["item"] == 1);
    CHECK(q["failures"][0]["attempts"] == 3);
    REQUIRE(q["by_subgroup"].size() == 8);
    const std::string g1 = data::sex_code(items[1].sex) + "+" + data::race_name(items[1].race);
    const json& s1 = q["by_subgroup"][g1];
    CHECK(s1["images"] == 4);  // 2 sources × 2 copies
    CHECK(s1["qc_failed"] == 1);
    CHECK(s1["acceptance_rate"].get<double>() == Approx(0.75));
    int64_t sum = 0;
    for (const auto& kv : q["by_subgroup"].items()) sum += kv.value()["images"].get<int64_t>();
    CHECK(sum == 32);

    // on_failure "drop": the failed image is not written and not in the manifest
    c.out = drop_dir.path();
    c.qc.on_failure = "drop";
    MockGenerator gen2;
    const apps::SynthesisResult d = apps::synthesize(c, sources(), gen2.fn(), mock_qc(items, reject));
    CHECK(d.kept == 31);
    CHECK(d.dropped == 1);
    CHECK_FALSE(fs::exists(drop_dir / "images/000001_01.png"));
    CHECK(fs::exists(drop_dir / "images/000001_00.png"));
    CHECK(data::load_manifest(drop_dir / "manifest.csv").size() == 31);
    CHECK(jsonl(drop_dir / "qc.jsonl")[3]["path"].is_null());
}

TEST_CASE("synthesize: the manifest holds the prompt's demographics and the source's labels and split",
          "[cpu][apps][synthesize]") {
    TempDir dir("synth_manifest");
    apps::SynthesisConfig c = base_config(dir.path());
    c.qc = {};  // no QC: every first attempt is kept
    c.images_per_prompt = 1;
    MockGenerator gen;
    const auto r = apps::synthesize(c, sources(), gen.fn(), {});
    CHECK(r.kept == 16);
    CHECK(r.attempts == 16);
    const auto items = apps::synthesis_prompts(c, sources());
    const auto src = sources();
    const auto m = data::load_manifest(dir / "manifest.csv");
    REQUIRE(m.size() == 16);
    std::set<std::string> combos;
    for (size_t k = 0; k < m.size(); ++k) {
        INFO("row " << k << ": " << m[k].report);
        const auto demo = data::parse_prompt_prefix(m[k].report);
        REQUIRE(demo.has_value());
        CHECK(m[k].report == items[k].prompt);
        CHECK(m[k].sex == demo->sex);
        CHECK(m[k].race == demo->race);
        CHECK(m[k].age == demo->age);
        CHECK(std::abs(m[k].age - src[items[k].source].age) <= 5);
        CHECK(m[k].labels == src[items[k].source].labels);
        CHECK(m[k].split == (items[k].source == 0 ? "valid" : "train"));
        CHECK(m[k].dataset == "synthetic");
        CHECK(m[k].patient_id == "synthetic_p" + std::to_string(items[k].source));
        CHECK(m[k].view == data::View::pa);
        CHECK(fs::path(m[k].image_path).filename() == (k < 10 ? "00000" : "0000") + std::to_string(k) + "_00.png");
        CHECK(fs::exists(m[k].image_path));
        combos.insert(std::to_string(items[k].source) + data::sex_code(m[k].sex) + data::race_name(m[k].race));
    }
    CHECK(combos.size() == 16);  // every source in all 8 sex×race combinations

    // the uniform design: one prompt per source; max_sources caps the sources
    TempDir udir("synth_uniform");
    c.out = udir.path();
    c.design = "uniform";
    c.max_sources = 1;
    const auto u = apps::synthesize(c, sources(), gen.fn(), {});
    CHECK(u.images == 1);
    CHECK(u.expansion.sources == 1);
}

TEST_CASE("synthesize: a killed run resumes to identical files; batching changes nothing", "[cpu][apps][synthesize]") {
    TempDir full("synth_full"), killed("synth_killed"), batched("synth_batched");
    apps::SynthesisConfig c = base_config(full.path());
    const auto items = apps::synthesis_prompts(c, sources());
    const std::map<std::pair<int64_t, int64_t>, int64_t> reject = {{{0, 0}, 1}, {{1, 1}, 99}, {{5, 1}, 2}};
    MockGenerator a;
    apps::synthesize(c, sources(), a.fn(), mock_qc(items, reject));

    c.out = killed.path();
    MockGenerator k1;
    k1.fail_after = 9;  // dies after 9 attempts: 6 images finished (item 0 copy 0 and item 1 copy 1 retried)
    CHECK_THROWS_WITH(apps::synthesize(c, sources(), k1.fn(), mock_qc(items, reject)),
                      Catch::Contains("simulated kill"));
    CHECK(jsonl(killed / "qc.jsonl").size() == 6);
    std::ofstream(killed / "qc.jsonl", std::ios::app) << "{\"item\": 7, \"copy\": 0, \"pro";  // a half-written line
    MockGenerator k2;
    const auto r = apps::synthesize(c, sources(), k2.fn(), mock_qc(items, reject));
    CHECK(r.resumed == 6);
    CHECK(r.drawn == static_cast<int64_t>(a.seen.size()) - 9);  // the half-written line's image is drawn again
    CHECK(outputs(full.path()) == outputs(killed.path()));
    CHECK(jsonl(full / "qc.jsonl") == jsonl(killed / "qc.jsonl"));
    // a third run finds everything finished and draws nothing
    MockGenerator k3;
    CHECK(apps::synthesize(c, sources(), k3.fn(), mock_qc(items, reject)).drawn == 0);
    CHECK(outputs(full.path()) == outputs(killed.path()));

    c.out = batched.path();
    c.batch = 5;
    MockGenerator b;
    apps::synthesize(c, sources(), b.fn(), mock_qc(items, reject));
    CHECK(outputs(full.path()) == outputs(batched.path()));
    CHECK(jsonl(full / "qc.jsonl") == jsonl(batched / "qc.jsonl"));

    // another config refuses to resume, naming the key (batch may change)
    c.seed = 7;
    CHECK_THROWS_WITH(apps::synthesize(c, sources(), b.fn(), mock_qc(items, reject)),
                      Catch::Contains("cannot resume") && Catch::Contains("seed (100 -> 7)"));
}

TEST_CASE("synthesize: config and input errors are named", "[cpu][apps][synthesize]") {
    TempDir dir("synth_errors");
    const json good = {{"name", "a run"},
                       {"source", {{"dataset", "manifest"}, {"root", "data/manifest.csv"}}},
                       {"model", "sd"},
                       {"qc", {{"classifier", "clf/best"}, {"attributes", {"sex", "race"}}}}};
    const auto c = apps::SynthesisConfig::from_json(good, "/base");
    CHECK(c.model == "/base/sd");
    CHECK(c.qc.classifier == "/base/clf/best");
    CHECK(c.source.root == "/base/data/manifest.csv");
    CHECK(c.max_retries == 3);
    auto with = [&](const char* key, json v) {
        json j = good;
        j[key] = v;
        return j;
    };
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("colour", 1)), Catch::Contains("unknown key \"colour\""));
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("design", "stratified")), Catch::Contains("design"));
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("max_retries", -1)), Catch::Contains("max_retries"));
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("steps", "many")), Catch::Contains("\"steps\""));
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("qc", {{"attributes", {"sex", "height"}}})),
                      Catch::Contains("unknown qc attribute \"height\""));
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("qc", {{"on_failure", "retry"}})),
                      Catch::Contains("on_failure"));
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(with("qc", {{"threshold", 0.5}})),
                      Catch::Contains("qc.threshold"));
    json nosrc = good;
    nosrc.erase("source");
    CHECK_THROWS_WITH(apps::SynthesisConfig::from_json(nosrc), Catch::Contains("\"source\""));

    // no source with an age
    apps::SynthesisConfig s = base_config(dir.path());
    auto src = sources();
    for (auto& r : src) r.age = std::nan("");
    MockGenerator gen;
    CHECK_THROWS_WITH(apps::synthesize(s, src, gen.fn(), mock_qc({}, {})),
                      Catch::Contains("no prompts") && Catch::Contains("3 have no age"));
    // QC asked for without a callback
    CHECK_THROWS_WITH(apps::synthesize(s, sources(), gen.fn(), {}), Catch::Contains("need a QC callback"));
    // a classifier without the demographic targets the attributes need
    apps::ClassifierConfig clf;
    clf.labels = {"sex:female", "race:asian", "race:black", "Cardiomegaly"};
    CHECK_NOTHROW(apps::check_qc_classifier(clf, {"sex"}, "clf"));
    CHECK_THROWS_WITH(apps::check_qc_classifier(clf, {"sex", "race", "age"}, "clf/best"),
                      Catch::Contains("'clf/best' lacks") && Catch::Contains("race:hispanic, race:white, age:18-40"));
}

TEST_CASE("synthesize: end to end with the tiny SD pipeline and a demographic classifier (wiring only)",
          "[cpu][apps][synthesize]") {
    TempDir data_dir("synth_e2e_data"), clf_dir("synth_e2e_clf"), out("synth_e2e_out");
    data::PhantomOptions o;
    o.n = 12;
    o.size = 32;
    o.seed = 9;
    const auto records = data::write_phantom_dataset(data_dir.path(), o);
    // a demographic classifier trained for one epoch (its decisions are meaningless; it proves the wiring)
    apps::ClassifierConfig cc;
    cc.arch = "resnet18-w4";
    cc.labels = apps::demographic_target_names();
    cc.image_size = 16;
    cc.channels = 1;
    cc.mean = {0.5};
    cc.std = {0.25};
    cc.epochs = 1;
    cc.batch_size = 8;
    cc.workers = 0;
    apps::TrainHooks quiet;
    quiet.quiet = true;
    const std::vector<data::Record> train(records.begin(), records.begin() + 8);
    const std::vector<data::Record> valid(records.begin() + 8, records.end());
    const auto tr = apps::train_classifier(cc, train, valid, clf_dir.path(), quiet);

    const json cfg = {{"model", std::string(CXR_SOURCE_DIR) + "/tests/fixtures/sd_tiny"},
                      {"source", {{"dataset", "manifest"}, {"root", data_dir / "manifest.csv"}}},
                      {"design", "uniform"},
                      {"max_sources", 2},
                      {"images_per_prompt", 2},
                      {"steps", 2},
                      {"guidance", 2.0},
                      {"scheduler", "ddim"},
                      {"seed", 5},
                      {"max_retries", 1},
                      {"batch", 3},
                      {"qc", {{"classifier", tr.best_checkpoint}, {"attributes", {"sex", "race", "age"}}}},
                      {"out", out.path()}};
    const std::string cfg_path = out / "synthesize.json";
    std::ofstream(cfg_path) << cfg.dump(2);
    std::vector<std::string> argv_s = {"--config", cfg_path, "--quiet"};
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    REQUIRE(apps::cmd_synthesize(static_cast<int>(argv.size()), argv.data()) == 0);

    const json q = json::parse(slurp(out / "qc.json"));
    CHECK(q["images"] == 4);
    CHECK(q["complete"] == true);
    CHECK(q["attempts"].get<int64_t>() >= 4);
    CHECK(q["attempts"].get<int64_t>() <= 8);
    const auto lines = jsonl(out / "qc.jsonl");
    REQUIRE(lines.size() == 4);
    for (const auto& l : lines) {
        CHECK(l["attempts"][0]["p_female"].get<double>() >= 0.0);
        CHECK(l["attempts"][0]["p_race"].size() == 4);
        CHECK(l["attempts"][0]["p_age"].size() == 4);
    }
    const auto m = data::load_manifest(out / "manifest.csv");
    REQUIRE(m.size() == 4);  // on_failure keep
    for (const auto& r : m) {
        const tensor::Tensor img = data::read_image(r.image_path);
        CHECK(img.sizes() == tensor::Shape{1, 16, 16});
        CHECK(data::parse_prompt_prefix(r.report).has_value());
    }
    // the kept image of item 1, copy 0 is the pipeline's image of its prompt and seed, averaged to gray
    {
        diffusion::PipelineLoadOptions lo;
        lo.scheduler = diffusion::SchedulerKind::ddim;
        auto pipe = diffusion::StableDiffusionPipeline::load(cfg["model"].get<std::string>(), lo);
        diffusion::GenerateOptions g;
        g.prompts = {lines[2]["prompt"].get<std::string>()};
        g.seeds = {lines[2]["seed"].get<uint64_t>()};
        g.num_inference_steps = 2;
        g.guidance_scale = 2.0;
        const tensor::Tensor want = tensor::mean(pipe.generate(g).images, {0, 1});  // [16, 16]
        const tensor::Tensor got = data::read_image(out / lines[2]["path"].get<std::string>());  // [1, 16, 16]
        const auto w = want.contiguous().to_vector<float>(), v = got.contiguous().to_vector<float>();
        REQUIRE(w.size() == v.size());
        for (size_t i = 0; i < w.size(); ++i) CHECK(std::abs(w[i] - v[i]) <= 0.5f / 255.0f + 1e-5f);
    }
    // the QC scored each kept image as the trainer's predict() scores its PNG (same preprocessing and model)
    {
        const apps::ClassifierConfig saved = apps::checkpoint_config(tr.best_checkpoint);
        auto model = apps::load_classifier(tr.best_checkpoint, saved);
        std::vector<data::Record> kept;
        for (const auto& l : lines) {
            data::Record r;
            r.image_path = out / l["path"].get<std::string>();
            kept.push_back(r);
        }
        const metrics::Predictions p = apps::predict(*model, saved, kept);
        for (size_t i = 0; i < lines.size(); ++i) {
            json used;
            for (const auto& a : lines[i]["attempts"])
                if (a["seed"] == lines[i]["seed"]) used = a;
            REQUIRE(used.is_object());
            INFO("image " << i);
            CHECK(p.scores[0][i] == Approx(used["p_female"].get<double>()).margin(1e-5));       // sex:female
            CHECK(p.scores[2][i] == Approx(used["p_race"]["black"].get<double>()).margin(1e-5));  // race:black
            CHECK(p.scores[8][i] == Approx(used["p_age"]["80+"].get<double>()).margin(1e-5));     // age:80+
        }
    }
    // the CLI run again finds every image finished
    const std::string qc_before = slurp(out / "qc.json");
    REQUIRE(apps::cmd_synthesize(static_cast<int>(argv.size()), argv.data()) == 0);
    CHECK(slurp(out / "qc.json") == qc_before);
    CHECK(jsonl(out / "qc.jsonl") == lines);
    // a config without "model" is refused by the CLI
    json nomodel = cfg;
    nomodel.erase("model");
    std::ofstream(cfg_path) << nomodel.dump(2);
    CHECK_THROWS_WITH(apps::cmd_synthesize(static_cast<int>(argv.size()), argv.data()), Catch::Contains("\"model\""));

    // a classifier lacking a target the config checks is refused before generation
    apps::ClassifierConfig sex_only = cc;
    sex_only.labels = {"sex:female"};
    sex_only.epochs = 1;
    TempDir clf2("synth_e2e_clf2");
    const auto tr2 = apps::train_classifier(sex_only, train, valid, clf2.path(), quiet);
    CHECK_THROWS_WITH(apps::make_classifier_qc(tr2.best_checkpoint, {"sex", "race"}, "cpu"),
                      Catch::Contains("lacks the demographic target(s) race:asian"));
}
