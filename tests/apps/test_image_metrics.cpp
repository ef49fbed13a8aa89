// Image metrics (apps/eval/image_metrics.h) and `cxr image-metrics`: image-set specs, FID with a tiny randomly
// initialised classifier checkpoint (FID(A, A) = 0, FID(A, B) > 0 and symmetric, noise farther from phantoms than a
// second phantom draw), classifier features equal to the model applied to hand-normalised pixels, the inception:
// path loading a saved state dict and matching fid_features on the written pixels, MS-SSIM diversity of copies and
// of different images, intra-prompt grouping, the scale rule for small images, every error path, and the command's
// JSON.
#include "tests/support/testing.h"

#include <cmath>
#include <filesystem>
#include <optional>
#include <fstream>
#include <numeric>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/eval/image_metrics.h"
#include "metrics/ssim.h"
#include "apps/train/classifier_trainer.h"
#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/phantom.h"
#include "nn/checkpoint.h"
#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/io/tensor_file.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"
#include "vision/inception.h"
#include "vision/models.h"

using namespace cxr;
namespace fs = std::filesystem;
using nlohmann::json;
using tensor::Tensor;

using cxr::testing::error_of;

namespace {

// The scratch folder, made on first use and removed at exit. (A namespace-scope optional defined before the
// cleanup object outlives it; a function-local static would be destroyed first.)
std::optional<fs::path> scratch_dir;

fs::path scratch() {
    if (!scratch_dir) {
        scratch_dir = fs::temp_directory_path() / ("cxr_test_image_metrics_" + std::to_string(::getpid()));
        fs::remove_all(*scratch_dir);
        fs::create_directories(*scratch_dir);
    }
    return *scratch_dir;
}

struct Cleanup {
    ~Cleanup() {
        if (scratch_dir) fs::remove_all(*scratch_dir);
    }
} cleanup_at_exit;

// A phantom dataset (40 images at 32 px) in scratch()/name, written once.
std::string phantom_dir(const std::string& name, uint64_t seed, int sites) {
    const fs::path dir = scratch() / name;
    if (!fs::exists(dir / "manifest.csv")) {
        data::PhantomOptions o;
        o.n = 40;
        o.size = 32;
        o.seed = seed;
        o.sites = sites;
        data::write_phantom_dataset(dir.string(), o);
    }
    return dir.string();
}

// A folder of n uniform-noise gray PNGs at 32 px.
std::string noise_dir() {
    const fs::path dir = scratch() / "noise";
    if (!fs::exists(dir)) {
        fs::create_directories(dir);
        tensor::Generator gen(99);
        for (int i = 0; i < 40; ++i)
            data::write_png((dir / ("noise_" + std::to_string(100 + i) + ".png")).string(),
                            tensor::rand({1, 32, 32}, {}, &gen));
    }
    return dir.string();
}

apps::ClassifierConfig tiny_config() {
    apps::ClassifierConfig c;
    c.arch = "resnet18-w4";
    c.labels = {"No Finding", "Cardiomegaly", "Pleural Effusion"};
    c.image_size = 32;
    c.channels = 1;
    c.mean = {0.5};
    c.std = {0.25};
    c.workers = 1;
    return c;
}

// A randomly initialised tiny classifier saved as the trainer saves its checkpoints (meta {"config": ...}).
std::string tiny_checkpoint() {
    const std::string stem = (scratch() / "ckpt" / "best").string();
    if (!nn::checkpoint_exists(stem)) {
        fs::create_directories(scratch() / "ckpt");
        const apps::ClassifierConfig c = tiny_config();
        tensor::Generator gen(5);
        auto model = vision::make_classifier(c.arch, vision::HeadConfig::linear(3), &gen);
        nn::save_checkpoint(stem, *model, nullptr, json{{"config", c.to_json()}});
    }
    return stem;
}

// u8-exact gray image [1, h, w]: value (a·y + b·x + c) mod 256, divided by 255.
Tensor pattern(int h, int w, int a, int b, int c) {
    std::vector<float> v(static_cast<size_t>(h * w));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            v[static_cast<size_t>(y * w + x)] = static_cast<float>((a * y + b * x + c) % 256) / 255.0f;
    return tensor::from_vector(v, {1, h, w});
}

std::string write_pattern(const fs::path& path, const Tensor& image) {
    fs::create_directories(path.parent_path());
    data::write_png(path.string(), image);
    return path.string();
}


}  // namespace

TEST_CASE("image-metrics: image-set specs (folder, manifest, KIND:ROOT:SPLIT, max images)", "[cpu][image-metrics]") {
    const std::string a = phantom_dir("phantom_a", 1, 1);
    const auto manifest = data::load_manifest(a + "/manifest.csv");
    REQUIRE(manifest.size() == 40);

    const apps::ImageSet folder = apps::parse_image_set(a + "/images");
    REQUIRE(folder.size() == 40);
    for (size_t i = 1; i < folder.records.size(); ++i)
        CHECK(folder.records[i - 1].image_path < folder.records[i].image_path);  // sorted by name

    CHECK(apps::parse_image_set("manifest:" + a + "/manifest.csv").size() == 40);
    CHECK(apps::parse_image_set(a + "/manifest.csv").size() == 40);
    CHECK(apps::parse_image_set("manifest:" + a).size() == 40);  // the folder holding manifest.csv
    const int64_t n_test = std::count_if(manifest.begin(), manifest.end(), [](const data::Record& r) {
        return r.split == "test";
    });
    REQUIRE(n_test > 0);
    const apps::ImageSet test = apps::parse_image_set("manifest:" + a + "/manifest.csv:test");
    CHECK(test.size() == n_test);
    for (const auto& r : test.records) CHECK(r.split == "test");
    CHECK(apps::parse_image_set(a + "/images", 5).size() == 5);
    // the report (prompt) text comes through a manifest, not through a folder
    CHECK(!apps::parse_image_set("manifest:" + a).records[0].report.empty());
}

TEST_CASE("image-metrics: classifier features are the model's on hand-normalised pixels", "[cpu][image-metrics]") {
    const fs::path dir = scratch() / "classifier_pixels";
    const Tensor p0 = pattern(32, 32, 3, 5, 0), p1 = pattern(32, 32, 7, 1, 40);
    write_pattern(dir / "a.png", p0);
    write_pattern(dir / "b.png", p1);
    const std::string stem = tiny_checkpoint();
    auto extractor = apps::make_feature_extractor("classifier:" + stem);
    const apps::ImageSet set = apps::parse_image_set(dir.string());
    const Tensor f = apps::set_features(set, *extractor);  // [2, F]

    // expected: (x − 0.5)/0.25 on the written pixels (the images are already 32 px: no resize), gray repeated to 3
    auto model = vision::make_classifier("resnet18-w4", vision::HeadConfig::linear(3));
    nn::load_checkpoint(stem, *model);
    model->eval();
    tensor::NoGradGuard no_grad;
    const Tensor x = tensor::stack({p0, p1}, 0);  // [2, 1, 32, 32]
    const Tensor expected = model->forward_features(((x - 0.5) / 0.25).expand({2, 3, 32, 32}));
    REQUIRE(f.sizes() == expected.sizes());
    CHECK(extractor->feature_dim() == expected.size(1));
    CXR_EXPECT_CLOSE(f, expected, 1e-5, 1e-5);
}

TEST_CASE("image-metrics: FID with classifier features — zero for a set with itself, symmetric, noise is farther",
          "[cpu][image-metrics]") {
    const apps::ImageSet a = apps::parse_image_set("manifest:" + phantom_dir("phantom_a", 1, 1));
    const apps::ImageSet b = apps::parse_image_set("manifest:" + phantom_dir("phantom_b", 2, 2));
    const apps::ImageSet noise = apps::parse_image_set(noise_dir());
    auto extractor = apps::make_feature_extractor("classifier:" + tiny_checkpoint());

    const apps::FidResult self = apps::fid(a, a, *extractor);
    CHECK(self.n_a == 40);
    CHECK(self.n_b == 40);
    CHECK(self.feature_dim == extractor->feature_dim());
    CHECK(self.extractor == "classifier:" + tiny_checkpoint());
    REQUIRE(self.terms.trace_a > 0);
    CHECK(std::abs(self.fid) <= 1e-6 * (self.terms.trace_a + self.terms.trace_b));
    CHECK(self.terms.mean_term == 0.0);

    const apps::FidResult ab = apps::fid(a, b, *extractor), ba = apps::fid(b, a, *extractor);
    CHECK(ab.fid > 0);
    CHECK(std::abs(ab.fid - ba.fid) <= 1e-9 * ab.fid);
    // the FID terms add up: d² = |Δμ|² + Tr Σa + Tr Σb − 2 Tr((Σa Σb)^½)
    CHECK(ab.fid == Approx(ab.terms.mean_term + ab.terms.trace_a + ab.terms.trace_b -
                           2 * ab.terms.trace_sqrt_product).epsilon(1e-9));

    const apps::FidResult an = apps::fid(a, noise, *extractor);
    WARN("FID(A, A) = " << self.fid << " (traces " << self.terms.trace_a << "), FID(A, B) = " << ab.fid
                        << ", FID(A, noise) = " << an.fid);
    INFO("FID(phantom A, phantom B) = " << ab.fid << ", FID(phantom A, noise) = " << an.fid);
    CHECK(an.fid > 2 * ab.fid);
}

TEST_CASE("image-metrics: the inception: path loads a state dict and equals fid_features on the written pixels",
          "[cpu][image-metrics][slow]") {
    tensor::Generator gen(7);
    auto net = vision::inception_v3_fid(vision::HeadConfig::linear(1008), &gen);
    net->eval();
    const std::string weights = (scratch() / "inception_random.safetensors").string();
    tensor::save_tensor_file(weights, net->state_dict());

    // two gray images of different sizes (each runs on its own): pytorch-fid reads them as RGB in [0, 1]
    const fs::path dir = scratch() / "inception_images";
    const Tensor p0 = pattern(32, 32, 9, 2, 17), p1 = pattern(40, 36, 1, 11, 3);
    write_pattern(dir / "img_0.png", p0);
    write_pattern(dir / "img_1.png", p1);
    auto extractor = apps::make_feature_extractor("inception:" + weights);
    CHECK(extractor->feature_dim() == 2048);
    const Tensor f = apps::set_features(apps::parse_image_set(dir.string()), *extractor);  // [2, 2048]
    REQUIRE(f.sizes() == tensor::Shape{2, 2048});

    tensor::NoGradGuard no_grad;
    const Tensor e0 = net->fid_features(p0.expand({3, 32, 32}).unsqueeze(0));  // [1, 2048]
    const Tensor e1 = net->fid_features(p1.expand({3, 40, 36}).unsqueeze(0));
    // a randomly initialised Inception gives small features (~1e-7: torch's default init shrinks every layer), so
    // the tolerance is relative to their scale; a preprocessing slip (here: no [0, 1] -> [−1, 1]) must exceed it
    const Tensor expected = tensor::cat({e0, e1}, 0);
    const double scale = tensor::max(tensor::abs(expected)).item();
    REQUIRE(scale > 0);
    CXR_EXPECT_CLOSE(f, expected, 1e-4 * scale, 1e-4);
    const Tensor slip = net->fid_features(p0.expand({3, 32, 32}).unsqueeze(0), true, false);
    CHECK_FALSE(cxr::testing::check_close(f.narrow(0, 0, 1), slip, 1e-4 * scale, 1e-4).ok);
    CHECK_FALSE(cxr::testing::check_close(e0, e1, 1e-4 * scale, 1e-4).ok);  // the two images differ
    fs::remove(weights);
}

TEST_CASE("image-metrics: MS-SSIM diversity — copies give 1, different images less", "[cpu][image-metrics]") {
    // scale rule: 5 standard weights from 161 px; fewer, renormalised, below
    const std::vector<double> standard = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};
    CHECK(apps::ms_ssim_scale_weights(256) == standard);
    CHECK(apps::ms_ssim_scale_weights(161) == standard);
    const std::vector<double> w160 = apps::ms_ssim_scale_weights(160);  // 160 is not > 10·2^4
    REQUIRE(w160.size() == 4);
    CHECK(w160[0] == Approx(0.0448 / 0.8668).epsilon(1e-12));
    CHECK(w160[3] == Approx(0.2363 / 0.8668).epsilon(1e-12));
    const std::vector<double> w32 = apps::ms_ssim_scale_weights(32);  // 32 > 20 but not > 40: 2 scales
    REQUIRE(w32.size() == 2);
    CHECK(w32[0] == Approx(0.0448 / 0.3304).epsilon(1e-12));
    CHECK(w32[1] == Approx(0.2856 / 0.3304).epsilon(1e-12));
    CHECK(apps::ms_ssim_scale_weights(20) == std::vector<double>{1.0});
    CHECK(error_of([] { apps::ms_ssim_scale_weights(10); }).find("at least 11x11") != std::string::npos);

    // a set of three copies of one image: every pair is identical
    const fs::path copies = scratch() / "copies";
    const Tensor img = pattern(48, 48, 13, 7, 5);
    for (int i = 0; i < 3; ++i) write_pattern(copies / ("c" + std::to_string(i) + ".png"), img);
    apps::MsSsimOptions o;
    o.size = 161;
    const apps::DiversityReport same = apps::set_diversity(apps::parse_image_set(copies.string()), o);
    CHECK(same.n == 3);
    CHECK(same.pairs == 3);
    CHECK(same.scale_weights.size() == 5);
    CHECK(same.mean_pairwise_ms_ssim == Approx(1.0).margin(1e-5));

    // different phantoms (2 scales at 32 px, and 5 scales at 161 px)
    const apps::ImageSet different = apps::parse_image_set(phantom_dir("phantom_a", 1, 1) + "/images", 4);
    o.size = 32;
    const apps::DiversityReport d32 = apps::set_diversity(different, o);
    CHECK(d32.pairs == 6);
    CHECK(d32.scale_weights.size() == 2);
    CHECK(d32.mean_pairwise_ms_ssim < 0.999);
    CHECK(d32.mean_pairwise_ms_ssim > 0);
    o.size = 161;
    const apps::DiversityReport d161 = apps::set_diversity(different, o);
    CHECK(d161.mean_pairwise_ms_ssim < 0.999);
    CHECK(d161.mean_pairwise_ms_ssim > 0);
}

// `cxr msssim`'s core: pair i of two sets is scored by metrics::ms_ssim on the same loaded pixels; a set against
// itself scores 1 on every pair; the sets must have the same size.
TEST_CASE("image-metrics: paired MS-SSIM scores the i-th images of two sets", "[cpu][image-metrics]") {
    const apps::ImageSet a = apps::parse_image_set(phantom_dir("phantom_a", 1, 1) + "/images", 5);
    const apps::ImageSet b = apps::parse_image_set(phantom_dir("phantom_b", 2, 2) + "/images", 5);
    apps::MsSsimOptions o;
    o.size = 32;
    o.max_pairs_per_batch = 2;  // batches of 2, 2, 1
    const apps::PairedMsSsimReport self = apps::paired_ms_ssim(a, a, o);
    REQUIRE(self.n == 5);
    for (double v : self.per_pair) CHECK(v == Approx(1.0).margin(1e-6));
    const apps::PairedMsSsimReport ab = apps::paired_ms_ssim(a, b, o);
    metrics::SsimOptions so;
    so.scale_weights = apps::ms_ssim_scale_weights(32);
    const std::vector<double> direct = tensor::cast(metrics::ms_ssim(apps::load_ms_ssim_images(a, 32),
                                                                     apps::load_ms_ssim_images(b, 32), so),
                                                    tensor::DType::f64)
                                               .to_vector<double>();
    REQUIRE(ab.per_pair.size() == direct.size());
    double sum = 0;
    for (size_t i = 0; i < direct.size(); ++i) {
        CHECK(ab.per_pair[i] == direct[i]);
        sum += direct[i];
    }
    CHECK(ab.mean == Approx(sum / 5).epsilon(1e-12));
    CHECK(ab.min <= ab.mean);
    CHECK(ab.max >= ab.mean);
    CHECK(ab.mean < 0.999);
    const apps::ImageSet four = apps::parse_image_set(phantom_dir("phantom_b", 2, 2) + "/images", 4);
    CHECK(error_of([&] { apps::paired_ms_ssim(a, four, o); }).find("same size") != std::string::npos);
}

TEST_CASE("image-metrics: intra-prompt diversity groups a manifest by its report text", "[cpu][image-metrics]") {
    const fs::path dir = scratch() / "prompts";
    const std::string same = write_pattern(dir / "same.png", pattern(32, 32, 3, 3, 0));
    const std::string other1 = write_pattern(dir / "o1.png", pattern(32, 32, 5, 9, 11));
    const std::string other2 = write_pattern(dir / "o2.png", pattern(32, 32, 17, 2, 100));
    std::vector<data::Record> records(6);
    const std::vector<std::pair<std::string, std::string>> rows = {
        {same, "prompt one"}, {other1, "prompt two"}, {same, "prompt one"},
        {other2, "prompt two"}, {other1, "lonely prompt"}, {same, "prompt one"}};
    for (size_t i = 0; i < rows.size(); ++i) {
        records[i].image_path = rows[i].first;
        records[i].report = rows[i].second;
    }
    data::write_manifest((dir / "manifest.csv").string(), records);
    apps::MsSsimOptions o;
    o.size = 32;
    const apps::PromptDiversityReport r = apps::prompt_diversity(apps::parse_image_set("manifest:" + dir.string()), o);
    CHECK(r.groups == 2);
    CHECK(r.skipped_groups == 1);
    CHECK(r.images == 5);
    REQUIRE(r.prompts == std::vector<std::string>{"prompt one", "prompt two"});
    CHECK(r.per_group[0] == Approx(1.0).margin(1e-5));  // three copies
    CHECK(r.per_group[1] < 0.999);                     // two different images
    CHECK(r.mean == Approx((r.per_group[0] + r.per_group[1]) / 2).epsilon(1e-12));

    // a folder has no prompts
    CHECK(error_of([&] { apps::prompt_diversity(apps::parse_image_set(dir.string()), o); }).find("no image") !=
          std::string::npos);
}

TEST_CASE("image-metrics: errors name the bad input", "[cpu][image-metrics]") {
    CHECK(error_of([] { apps::make_feature_extractor("vgg16:/x"); }).find("unknown feature extractor 'vgg16:/x'") !=
          std::string::npos);
    CHECK(error_of([] { apps::make_feature_extractor("inception:/nonexistent/pt_inception.safetensors"); })
              .find("/nonexistent/pt_inception.safetensors' not found") != std::string::npos);
    CHECK(error_of([] { apps::make_feature_extractor("classifier:/nonexistent/best"); }).find("not found") !=
          std::string::npos);

    // weights whose keys are not pytorch-fid's: the error names the stray key and a missing one
    const std::string bad = (scratch() / "bad_keys.safetensors").string();
    tensor::save_tensor_file(bad, {{"bogus.weight", tensor::zeros({2, 2})},
                                   {"Conv2d_1a_3x3.conv.weight", tensor::zeros({32, 3, 3, 3})}});
    const std::string msg = error_of([&] { apps::make_feature_extractor("inception:" + bad); });
    CHECK(msg.find("bad_keys.safetensors") != std::string::npos);
    CHECK(msg.find("bogus.weight") != std::string::npos);
    CHECK(msg.find("Mixed_7c.branch_pool.conv.weight") != std::string::npos);

    // an empty folder, a folder of non-images, a missing path, an unknown kind, a bad split
    const fs::path empty = scratch() / "empty";
    fs::create_directories(empty);
    std::ofstream(empty / "notes.txt") << "not an image\n";
    CHECK(error_of([&] { apps::parse_image_set(empty.string()); }).find("holds no PNG/JPEG files") !=
          std::string::npos);
    CHECK(error_of([] { apps::parse_image_set("/nonexistent/generated"); }).find("does not exist") !=
          std::string::npos);
    CHECK(error_of([] { apps::parse_image_set("openi:/data/openi"); }).find("'openi' is not a dataset kind") !=
          std::string::npos);
    const std::string a = phantom_dir("phantom_a", 1, 1);
    CHECK(error_of([&] { apps::parse_image_set("manifest:" + a + ":training"); }).find("unknown split 'training'") !=
          std::string::npos);
    CHECK(error_of([&] { apps::parse_image_set((empty / "notes.txt").string()); })
              .find("neither a folder nor a manifest") != std::string::npos);

    // fewer than 2 images for FID, and for diversity
    const fs::path one = scratch() / "one";
    write_pattern(one / "only.png", pattern(32, 32, 1, 1, 1));
    const apps::ImageSet single = apps::parse_image_set(one.string());
    auto extractor = apps::make_feature_extractor("classifier:" + tiny_checkpoint());
    const apps::ImageSet many = apps::parse_image_set(a + "/images", 4);
    CHECK(error_of([&] { apps::fid(many, single, *extractor); }).find("at least 2 images") != std::string::npos);
    CHECK(error_of([&] { apps::fid(single, many, *extractor); }).find(one.string()) != std::string::npos);
    apps::MsSsimOptions o;
    o.size = 32;
    CHECK(error_of([&] { apps::set_diversity(single, o); }).find("at least 2 images") != std::string::npos);
}

TEST_CASE("image-metrics: the command writes FID and MS-SSIM JSON", "[cpu][image-metrics]") {
    const std::string a = phantom_dir("phantom_a", 1, 1), b = phantom_dir("phantom_b", 2, 2);
    const std::string out = (scratch() / "metrics.json").string();
    std::vector<std::string> argv_s = {"--real",    "manifest:" + a,     "--generated",    "manifest:" + b,
                                       "--features", "classifier:" + tiny_checkpoint(), "--ms-ssim", "--ms-ssim-size",
                                       "32",         "--max-images",     "12",             "--quiet",
                                       "--out",      out};
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    REQUIRE(apps::cmd_image_metrics(static_cast<int>(argv.size()), argv.data()) == 0);
    const json j = json::parse(std::ifstream(out));
    CHECK(j.at("n").at("real") == 12);
    CHECK(j.at("n").at("generated") == 12);
    CHECK(j.at("extractor") == "classifier:" + tiny_checkpoint());
    auto extractor = apps::make_feature_extractor("classifier:" + tiny_checkpoint());
    const double expected = apps::fid(apps::parse_image_set("manifest:" + a, 12),
                                      apps::parse_image_set("manifest:" + b, 12), *extractor).fid;
    CHECK(j.at("fid").get<double>() == Approx(expected).epsilon(1e-12));
    CHECK(j.at("ms_ssim").at("scales") == 2);
    CHECK(j.at("ms_ssim").contains("note"));
    CHECK(j.at("ms_ssim").at("generated").at("pairs") == 66);
    const double g = j.at("ms_ssim").at("generated").at("mean_pairwise_ms_ssim").get<double>();
    CHECK(g > 0);
    CHECK(g < 1);
    CHECK(j.at("ms_ssim").at("real").at("n") == 12);
    CHECK(j.at("run").contains("git_commit"));
    // phantom impressions repeat across images, so intra-prompt diversity is either computed or explained
    CHECK((j.at("ms_ssim").at("intra_prompt").is_object() || j.at("ms_ssim").contains("intra_prompt_note")));

    // usage errors
    std::vector<std::string> bad_s = {"--generated", "manifest:" + b};  // nothing to compute
    std::vector<char*> bad;
    for (auto& s : bad_s) bad.push_back(s.data());
    CHECK_THROWS_WITH(apps::cmd_image_metrics(static_cast<int>(bad.size()), bad.data()),
                      Catch::Contains("nothing to compute"));
    std::vector<std::string> no_real_s = {"--generated", "manifest:" + b, "--features", "classifier:x"};
    std::vector<char*> no_real;
    for (auto& s : no_real_s) no_real.push_back(s.data());
    CHECK_THROWS_WITH(apps::cmd_image_metrics(static_cast<int>(no_real.size()), no_real.data()),
                      Catch::Contains("needs --real"));
}

TEST_CASE("image-metrics: on real NIH radiographs, two real splits are closer than real vs phantoms",
          "[cpu][image-metrics][real-data]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const std::string nih = cxr::testing::real_data_dir() + "/nih1000";
    const apps::ImageSet train = apps::parse_image_set("nih:" + nih + ":train", 100);
    const apps::ImageSet test = apps::parse_image_set("nih:" + nih + ":test", 100);
    REQUIRE(train.size() == 100);
    REQUIRE(test.size() == 100);
    for (const auto& r : test.records) CHECK(r.split == "test");
    const apps::ImageSet phantoms = apps::parse_image_set(phantom_dir("phantom_a", 1, 1) + "/images");
    auto extractor = apps::make_feature_extractor("classifier:" + tiny_checkpoint());
    const double real_real = apps::fid(train, test, *extractor).fid;
    const double real_phantom = apps::fid(test, phantoms, *extractor).fid;
    WARN("NIH train vs test FID = " << real_real << ", NIH test vs phantoms FID = " << real_phantom);
    CHECK(real_real > 0);
    CHECK(real_phantom > 2 * real_real);
    // the NIH PNGs are 64 px RGB with equal channels: MS-SSIM between different patients is well below 1
    apps::MsSsimOptions o;
    o.size = 64;
    apps::ImageSet eight = test;
    eight.records.resize(8);
    const apps::DiversityReport d = apps::set_diversity(eight, o);
    CHECK(d.scale_weights.size() == 3);
    CHECK(d.mean_pairwise_ms_ssim > 0);
    CHECK(d.mean_pairwise_ms_ssim < 0.95);
}
