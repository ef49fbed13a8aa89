// Throughput of the image-metrics pieces on the CPU (apps/eval/image_metrics.h):
//   inception    features of N phantom images (64 px PNGs, resized to 299 inside) through pytorch-fid's
//                Inception-v3 loaded via the inception: spec (random weights: the speed does not depend on them);
//   classifier   features of the same images through a classifier checkpoint at 64 px (densenet121 and resnet50,
//                random initialisation, 1 channel repeated to 3);
//   frechet      the Fréchet distance of two 2048-d feature sets (the f64 eigensolver on 2048×2048);
//   ms-ssim      mean pairwise MS-SSIM of K images at 256 px (5 scales), pairs/s.
// Before any timing, each extractor is validated: its features of the first two images must equal the network
// applied directly to the same pixels (inception: fid_features of the decoded RGB image; classifier: the
// trainer's normalisation by hand); a mismatch stops the run with exit code 1.
//
// Usage: bench_image_metrics [--n N] [--batch B] [--pairs-images K]   (threads: OMP_NUM_THREADS)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "apps/eval/image_metrics.h"
#include "apps/train/classifier_trainer.h"
#include "data/image_io.h"
#include "data/phantom.h"
#include "metrics/frechet.h"
#include "metrics/ssim.h"
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

namespace fs = std::filesystem;
using namespace cxr;
using tensor::Tensor;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    const auto x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
    if (x.size() != y.size()) return 1e30;
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, (double)std::abs(x[i] - y[i]));
    return m;
}

bool validate(const char* what, const Tensor& got, const Tensor& want) {
    const double d = max_abs_diff(got, want);
    double scale = 0;
    for (float v : want.contiguous().to_vector<float>()) scale = std::max(scale, (double)std::abs(v));
    const bool ok = scale > 0 && d <= 1e-4 * scale;  // relative: random-init Inception features are ~1e-7
    std::printf("validate %-12s max |diff| = %.3g (max |ref| %.3g): %s\n", what, d, scale, ok ? "ok" : "FAILED");
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t n = 32, batch = 16, pair_images = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--n")) n = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--pairs-images")) pair_images = std::atoll(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: bench_image_metrics [--n N] [--batch B] [--pairs-images K]\n");
            return 2;
        }
    }
    const fs::path dir = fs::temp_directory_path() / ("cxr_bench_image_metrics_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    int rc = 0;
    try {
        data::PhantomOptions po;
        po.n = std::max<int64_t>(n, pair_images);
        po.size = 64;
        data::write_phantom_dataset(dir.string(), po);
        apps::ImageSet set = apps::parse_image_set((dir / "images").string(), n);
        apps::ImageSet two = set;
        two.records.resize(2);
        tensor::NoGradGuard no_grad;
        std::vector<Tensor> raw;  // the first two images as decoded, [1, 64, 64] gray
        for (const auto& r : two.records) raw.push_back(data::read_image(r.image_path, data::ColorMode::gray));

        // ---- inception ----
        {
            tensor::Generator gen(1);
            auto net = vision::inception_v3_fid(vision::HeadConfig::linear(1008), &gen);
            net->eval();
            const std::string w = (dir / "inception.safetensors").string();
            tensor::save_tensor_file(w, net->state_dict());
            auto ex = apps::make_feature_extractor("inception:" + w);
            const Tensor want = net->fid_features(tensor::stack(raw, 0).expand({2, 3, 64, 64}));
            if (!validate("inception", apps::set_features(two, *ex), want)) return 1;
            const auto t0 = std::chrono::steady_clock::now();
            const Tensor f = apps::set_features(set, *ex, batch);
            const double s = seconds_since(t0);
            std::printf("inception (64 px -> 299, 2048-d)   %lld images in %.2f s: %.2f images/s\n", (long long)n, s,
                        (double)n / s);
        }
        // ---- classifiers at 64 px ----
        for (const char* arch : {"densenet121", "resnet50"}) {
            apps::ClassifierConfig c;
            c.arch = arch;
            c.labels = {"No Finding"};
            c.image_size = 64;
            c.channels = 1;
            c.mean = {0.5};
            c.std = {0.25};
            tensor::Generator gen(2);
            auto model = vision::make_classifier(arch, vision::HeadConfig::linear(1), &gen);
            model->eval();
            const std::string stem = (dir / arch).string();
            nn::save_checkpoint(stem, *model, nullptr, nlohmann::json{{"config", c.to_json()}});
            auto ex = apps::make_feature_extractor("classifier:" + stem);
            const Tensor x = tensor::stack(raw, 0);  // [2, 1, 64, 64]
            const Tensor want = model->forward_features(((x - 0.5) / 0.25).expand({2, 3, 64, 64}));
            if (!validate(arch, apps::set_features(two, *ex), want)) return 1;
            const auto t0 = std::chrono::steady_clock::now();
            const Tensor f = apps::set_features(set, *ex, batch);
            const double s = seconds_since(t0);
            std::printf("classifier %-12s (64 px, %lld-d)  %lld images in %.2f s: %.1f images/s\n", arch,
                        (long long)f.size(1), (long long)n, s, (double)n / s);
        }
        // ---- Fréchet distance, D = 2048 ----
        {
            tensor::Generator gen(3);
            const Tensor a = tensor::randn({256, 2048}, tensor::DType::f64, &gen);
            const Tensor b = tensor::randn({256, 2048}, tensor::DType::f64, &gen);
            const auto sa = metrics::feature_statistics(a), sb = metrics::feature_statistics(b);
            const auto t0 = std::chrono::steady_clock::now();
            const double d = metrics::frechet_distance(sa, sb);
            std::printf("frechet distance (D = 2048, 256 samples each): %.2f s (d² = %.4g)\n", seconds_since(t0), d);
        }
        // ---- MS-SSIM ----
        {
            apps::ImageSet k = apps::parse_image_set((dir / "images").string(), pair_images);
            apps::MsSsimOptions o;
            o.size = 256;
            const Tensor images = apps::load_ms_ssim_images(k, o.size);
            metrics::SsimOptions so;
            const auto t0 = std::chrono::steady_clock::now();
            const double m = metrics::mean_pairwise_ms_ssim(images, so, o.max_pairs_per_batch);
            const double s = seconds_since(t0);
            const double pairs = (double)(pair_images * (pair_images - 1) / 2);
            std::printf("mean pairwise MS-SSIM (256 px, 5 scales, %lld images, %.0f pairs): %.2f s, %.1f pairs/s "
                        "(value %.4f)\n",
                        (long long)pair_images, pairs, s, pairs / s, m);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_image_metrics: %s\n", e.what());
        rc = 1;
    }
    fs::remove_all(dir);
    return rc;
}
