// `cxr demo`: a real CPU training run that exercises autograd end to end. It generates a small image task — 24×24
// chest-radiograph-like phantoms (a bright body, two darker lung fields, noise), half of them with a focal
// "opacity" (a Gaussian blob inside one lung) — trains a two-layer CNN (conv-relu-maxpool ×2, global average pool,
// linear) with cross-entropy and SGD with momentum, and reports train/test accuracy per epoch. Everything is drawn
// from the Philox generator, so a seed gives the same run. Outputs: DIR/config.json and DIR/metrics.json.
// Later issues replace this with the full study on the built-in phantom dataset.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/progress.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/generator.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/index.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::apps {

using namespace cxr::tensor;

namespace {

constexpr int64_t kSize = 24;

// One phantom image [1, 24, 24] and its label (1 = opacity present).
struct Dataset {
    Tensor images;  // [N, 1, 24, 24] f32
    Tensor labels;  // [N] i64
};

Dataset make_phantoms(int64_t n, Generator& gen) {
    // Per image: 8 uniform draws for geometry and contrast, then per-pixel noise.
    Tensor u = rand({n, 8}, DType::f64, &gen);        // [N, 8]
    Tensor noise = randn({n, kSize, kSize}, DType::f32, &gen);
    std::vector<double> uv = u.to_vector<double>();
    std::vector<float> nv = noise.to_vector<float>();
    std::vector<float> img(n * kSize * kSize);
    std::vector<int64_t> lab(n);
    for (int64_t i = 0; i < n; ++i) {
        const double* r = &uv[i * 8];
        const bool positive = (i % 2) == 1;  // balanced classes
        lab[i] = positive;
        const double lung_dx = 5.0 + 1.5 * r[0], lung_rx = 3.2 + 1.0 * r[1], lung_ry = 6.5 + 1.5 * r[2];
        const double body = 0.75 + 0.15 * r[3];
        const int side = r[4] < 0.5 ? -1 : 1;                                  // which lung has the opacity
        const double oy = 12.0 + (r[5] - 0.5) * 8.0, ox = 12.0 + side * lung_dx + (r[6] - 0.5) * 2.0;
        const double amp = 0.5 + 0.3 * r[7];
        for (int64_t y = 0; y < kSize; ++y)
            for (int64_t x = 0; x < kSize; ++x) {
                double v = body;
                for (int s : {-1, 1}) {
                    double dx = (x - (12.0 + s * lung_dx)) / lung_rx, dy = (y - 12.0) / lung_ry;
                    if (dx * dx + dy * dy < 1.0) v -= 0.45;
                }
                if (positive) {
                    double d2 = (x - ox) * (x - ox) + (y - oy) * (y - oy);
                    v += amp * std::exp(-d2 / (2 * 2.0 * 2.0));
                }
                // standardised to roughly zero mean, unit variance
                img[(i * kSize + y) * kSize + x] = (float)((v + 0.08 * nv[(i * kSize + y) * kSize + x] - 0.6) / 0.25);
            }
    }
    return {from_vector(img, {n, 1, kSize, kSize}), from_vector(lab, {n})};
}

// PyTorch's default initialisation for conv/linear: U(-1/√fan_in, 1/√fan_in) for weights and biases.
Tensor init_uniform(const Shape& shape, int64_t fan_in, Generator& gen) {
    double bound = 1.0 / std::sqrt((double)fan_in);
    return sub(mul(rand(shape, DType::f32, &gen), 2 * bound), bound).detach().set_requires_grad();
}

struct Cnn {
    Tensor w1, b1, w2, b2, w3, b3;
    explicit Cnn(Generator& gen)
        : w1(init_uniform({8, 1, 3, 3}, 9, gen)), b1(init_uniform({8}, 9, gen)),
          w2(init_uniform({16, 8, 3, 3}, 72, gen)), b2(init_uniform({16}, 72, gen)),
          w3(init_uniform({2, 16}, 16, gen)), b3(init_uniform({2}, 16, gen)) {}
    std::vector<Tensor> params() const { return {w1, b1, w2, b2, w3, b3}; }

    Tensor forward(const Tensor& x) const {                                    // x: [B, 1, 24, 24]
        Tensor h = max_pool2d(relu(conv2d(x, w1, b1, {1, 1}, {1, 1})), {2, 2});  // [B, 8, 12, 12]
        h = max_pool2d(relu(conv2d(h, w2, b2, {1, 1}, {1, 1})), {2, 2});         // [B, 16, 6, 6]
        h = amax(h, {2, 3});  // global max pool: a focal finding anywhere counts   // [B, 16]
        return linear(h, w3, b3);                                               // [B, 2]
    }
};

double accuracy(const Cnn& net, const Dataset& d) {
    NoGradGuard ng;
    Tensor pred = argmax(net.forward(d.images), 1);
    return mean(cast(eq(pred, d.labels), DType::f32)).item();
}

}  // namespace

int cmd_demo(int argc, char** argv) {
    Args args("demo",
              "Trains a small CNN with cxr's autograd on the CPU to detect a focal opacity in generated\n"
              "chest-radiograph-like phantoms, and reports train/test accuracy per epoch.",
              {{"epochs", "N", "training epochs", "8"},
               {"train", "N", "training images", "1024"},
               {"test", "N", "test images", "512"},
               {"batch", "N", "batch size", "32"},
               {"lr", "X", "SGD learning rate (momentum 0.9)", "0.05"},
               {"seed", "S", "seed of the Philox generator", "0"},
               {"out", "DIR", "where config.json and metrics.json are written", "out/demo"}});
    if (!args.parse(argc, argv)) return 0;
    const int64_t epochs = args.get_int("epochs"), n_train = args.get_int("train"), n_test = args.get_int("test");
    const int64_t batch = args.get_int("batch");
    const double lr = args.get_double("lr");
    CXR_CHECK(epochs > 0 && n_train > 1 && n_test > 0 && batch > 0 && lr > 0, "demo: options must be positive");
    const std::filesystem::path out_dir = args.get("out");
    std::filesystem::create_directories(out_dir);

    nlohmann::json config = {{"command", "demo"},  {"epochs", epochs}, {"train", n_train}, {"test", n_test},
                             {"batch", batch},     {"lr", lr},         {"momentum", 0.9},  {"seed", args.get_int("seed")},
                             {"backend", "cpu"},   {"image_size", kSize}};
    write_json_atomically(out_dir / "config.json", config);

    Generator gen((uint64_t)args.get_int("seed"));
    Dataset train = make_phantoms(n_train, gen), test = make_phantoms(n_test, gen);
    Cnn net(gen);
    std::vector<Tensor> velocity;
    for (const Tensor& p : net.params()) velocity.push_back(zeros_like(p));

    std::printf("cxr demo: %lld training / %lld test phantoms (24x24, half with a focal opacity), CNN with %d "
                "parameter tensors, SGD lr %.3g momentum 0.9, %lld epochs, CPU\n",
                (long long)n_train, (long long)n_test, (int)net.params().size(), lr, (long long)epochs);
    std::printf("untrained test accuracy: %.3f\n", accuracy(net, test));

    nlohmann::json history = nlohmann::json::array();
    const int64_t steps = (n_train + batch - 1) / batch;
    double test_acc = 0.0;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
        Tensor order = randint(0, 1 << 30, {n_train}, DType::i64, &gen);  // shuffle by sorting random keys
        std::vector<int64_t> keys = order.to_vector<int64_t>(), idx(n_train);
        for (int64_t i = 0; i < n_train; ++i) idx[i] = i;
        std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
        Progress bar("epoch " + std::to_string(epoch) + "/" + std::to_string(epochs), steps);
        double loss_sum = 0.0;
        for (int64_t s = 0; s < steps; ++s) {
            int64_t lo = s * batch, hi = std::min(n_train, lo + batch);
            std::vector<int64_t> sel(idx.begin() + lo, idx.begin() + hi);
            Tensor bi = from_vector(sel, {(int64_t)sel.size()});
            Tensor x = index_select(train.images, 0, bi), y = index_select(train.labels, 0, bi);
            Tensor loss = cross_entropy(net.forward(x), y);
            for (Tensor p : net.params()) p.zero_grad();
            loss.backward();
            {
                NoGradGuard ng;
                std::vector<Tensor> params = net.params();
                for (size_t k = 0; k < params.size(); ++k) {
                    velocity[k].copy_(add(mul(velocity[k], 0.9), params[k].grad()));
                    Tensor p = params[k];
                    p.copy_(sub(p, mul(velocity[k], lr)));
                }
            }
            loss_sum += loss.item();
            bar.update(s + 1, "loss " + std::to_string(loss_sum / (s + 1)).substr(0, 6));
        }
        bar.finish();
        double train_acc = accuracy(net, train);
        test_acc = accuracy(net, test);
        std::printf("epoch %lld: mean loss %.4f  train accuracy %.3f  test accuracy %.3f\n", (long long)epoch,
                    loss_sum / steps, train_acc, test_acc);
        history.push_back({{"epoch", epoch}, {"loss", loss_sum / steps}, {"train_accuracy", train_acc},
                           {"test_accuracy", test_acc}});
    }
    nlohmann::json metrics = {{"final_test_accuracy", test_acc}, {"history", history}, {"run", run_record()}};
    write_json_atomically(out_dir / "metrics.json", metrics);
    std::printf("final test accuracy: %.3f  (written: %s, %s)\n", test_acc, (out_dir / "config.json").c_str(),
                (out_dir / "metrics.json").c_str());
    return 0;
}

}  // namespace cxr::apps
