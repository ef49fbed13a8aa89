// Tests of the classifier losses (nn/losses.h):
//   - masked_bce_with_logits (with and without pos_weight; none/mean/sum; targets with −1, NaN, a soft label and a
//     sample without any known label) equals torch's F.binary_cross_entropy_with_logits applied to the known entries
//     only (boolean indexing), output and gradient; with every label known it equals torch's plain BCE;
//   - sigmoid_focal_loss equals torchvision.ops.sigmoid_focal_loss's formula in torch (cross-checked in the fixture
//     script against a numpy evaluation of Lin et al. 2017 eq. 5), for several α, γ and reductions, and masked;
//   - fixtures tests/fixtures/nn_losses.* (tests/fixtures/tools/make_optim_fixtures.py), run in f64 and f32;
//   - f64 central-difference gradient checks; the mean over no known label is 0 with zero gradient.
#include "tests/support/testing.h"

#include <cmath>

#include "nn/losses.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tests/tensor/fixture_case.h"

using namespace cxr::nn;
using cxr::tensor::DType;
using cxr::tensor::Tensor;
using cxr::testing::FixtureEntry;
using cxr::testing::FixtureTable;
namespace T = cxr::tensor;

namespace {

Reduction reduction_of(const std::string& name) {
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, "_none") == 0) return Reduction::none;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "_sum") == 0) return Reduction::sum;
    return Reduction::mean;
}

FixtureTable loss_table() {
    FixtureTable t;
    for (const char* r : {"none", "mean", "sum"}) {
        const std::string n = std::string("masked_bce_") + r;
        const Reduction red = reduction_of(n);
        t[n] = FixtureEntry{
            [red](const std::vector<Tensor>& in) { return masked_bce_with_logits(in[0], in[1], Tensor(), red); }};
        t[std::string("masked_bce_posw_") + r] = FixtureEntry{[red](const std::vector<Tensor>& in) {
            return masked_bce_with_logits(in[0], in[1], in[2].detach(), red);
        }};
    }
    t["bce_allknown_mean"] =
        FixtureEntry{[](const std::vector<Tensor>& in) { return masked_bce_with_logits(in[0], in[1]); }};
    struct Focal {
        const char* name;
        double alpha, gamma;
    };
    for (const Focal& f : {Focal{"focal_a0p25_g2_mean", 0.25, 2.0}, Focal{"focal_a0p25_g2_sum", 0.25, 2.0},
                           Focal{"focal_a0p25_g2_none", 0.25, 2.0}, Focal{"focal_am1_g2_mean", -1.0, 2.0},
                           Focal{"focal_a0p5_g0_sum", 0.5, 0.0}, Focal{"focal_a0p25_g1p5_mean", 0.25, 1.5},
                           Focal{"focal_masked_mean", 0.25, 2.0}}) {
        const Reduction red = reduction_of(f.name);
        const double a = f.alpha, g = f.gamma;
        t[f.name] =
            FixtureEntry{[=](const std::vector<Tensor>& in) { return sigmoid_focal_loss(in[0], in[1], a, g, red); }};
    }
    for (auto& kv : t) {
        kv.second.f64 = {1e-12, 1e-10};
        kv.second.f32 = {2e-6, 2e-5};
    }
    return t;
}

}  // namespace

TEST_CASE("masked BCE and focal loss match the torch references (f64)", "[cpu][losses]") {
    cxr::testing::run_fixture_table("nn_losses", loss_table(), DType::f64);
}

TEST_CASE("masked BCE and focal loss match the torch references (f32)", "[cpu][losses]") {
    cxr::testing::run_fixture_table("nn_losses", loss_table(), DType::f32);
}

TEST_CASE("masked BCE and focal loss: gradient checks (f64)", "[cpu][losses]") {
    Tensor x = cxr::testing::random_input({4, 3}, 11, -3.0, 3.0);
    std::vector<double> yv = {1, 0, NAN, -1, 1, 0.25, 0, 0, 1, 1, -1, 0};
    Tensor y = T::from_vector(yv, {4, 3});
    Tensor pw = T::from_vector(std::vector<double>{0.5, 2.0, 1.5}, {3});
    for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
        INFO("reduction " << T::reduction_name(r));
        CXR_EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return masked_bce_with_logits(in[0], y, pw, r); },
                             {x.clone().set_requires_grad(true)});
        CXR_EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return sigmoid_focal_loss(in[0], y, 0.25, 2.0, r); },
                             {x.clone().set_requires_grad(true)});
    }
    CXR_EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return sigmoid_focal_loss(in[0], y, -1.0, 1.5); },
                         {x.clone().set_requires_grad(true)});
}

TEST_CASE("masked losses: no known label gives 0 with zero gradient; shape errors", "[cpu][losses]") {
    Tensor x = cxr::testing::random_input({2, 3}, 5).set_requires_grad(true);
    Tensor y = T::from_vector(std::vector<double>{NAN, -1, -1, NAN, NAN, -1}, {2, 3});
    Tensor l = masked_bce_with_logits(x, y);
    CHECK(l.item() == 0.0);
    l.backward();
    CXR_EXPECT_CLOSE(x.grad(), T::zeros({2, 3}, DType::f64), 0, 0);
    CHECK(sigmoid_focal_loss(x, y).item() == 0.0);
    // the mask itself: known = a number >= 0
    Tensor m = known_label_mask(T::from_vector(std::vector<double>{0, 1, -1, NAN, 0.5, -2}, {6}));
    CXR_EXPECT_CLOSE(m, T::from_vector(std::vector<double>{1, 1, 0, 0, 1, 0}, {6}), 0, 0);
    bool threw = false;
    try {
        masked_bce_with_logits(x, T::zeros({3, 2}, DType::f64));
    } catch (const cxr::Error& e) {
        threw = std::string(e.what()).find("same shape") != std::string::npos;
    }
    CHECK(threw);
    // the re-exported losses are torch's definitions from tensor/ops/loss.h
    Tensor logits = T::from_vector(std::vector<double>{0.0, 0.0}, {1, 2});
    Tensor target = T::from_vector(std::vector<int64_t>{1}, {1});
    CHECK(cross_entropy(logits, target).item() == Approx(std::log(2.0)).epsilon(1e-15));
    CHECK(mse_loss(logits, T::ones({1, 2}, DType::f64)).item() == 1.0);
}
