// Tests of the loss family (tensor/ops/loss.h): every case of the PyTorch fixture tests/fixtures/loss.*
// (made by tests/fixtures/tools/make_loss_fixtures.py) in f64 and in f32, f64 gradchecks of every loss in every
// reduction (including the gradients of bce weight/pos_weight and of class weights, which torch does not give),
// the weighted-mean and label-smoothing definitions checked against hand-written sums, argument errors, and the
// loud failure on a CUDA tensor.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <cmath>
#include <map>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

const std::map<std::string, Reduction>& reductions() {
    static const std::map<std::string, Reduction> r = {
        {"none", Reduction::none}, {"mean", Reduction::mean}, {"sum", Reduction::sum}};
    return r;
}

FixtureTable loss_cases() {
    FixtureTable c;
    for (const auto& kv : reductions()) {
        const std::string n = kv.first;
        const Reduction r = kv.second;
        c["mse_" + n] = {[r](const Inputs& x) { return mse_loss(x[0], x[1], r); }};
        c["l1_" + n] = {[r](const Inputs& x) { return l1_loss(x[0], x[1], r); }};
        c["bce_" + n] = {[r](const Inputs& x) { return bce_with_logits(x[0], x[1], Tensor(), Tensor(), r); }};
        c["bce_weight_posw_" + n] = {[r](const Inputs& x) { return bce_with_logits(x[0], x[1], x[2], x[3], r); }};
        c["ce_" + n] = {[r](const Inputs& x) { return cross_entropy(x[0], x[1], Tensor(), -100, 0.0, r); }};
        c["ce_weight_" + n] = {[r](const Inputs& x) { return cross_entropy(x[0], x[1], x[2], -100, 0.0, r); }};
        c["ce_ignore_weight_" + n] = {[r](const Inputs& x) { return cross_entropy(x[0], x[1], x[2], -100, 0.0, r); }};
        c["ce_smooth_" + n] = {[r](const Inputs& x) { return cross_entropy(x[0], x[1], Tensor(), -100, 0.1, r); }};
        c["ce_smooth_weight_ignore_" + n] = {
            [r](const Inputs& x) { return cross_entropy(x[0], x[1], x[2], -100, 0.25, r); }};
        c["ce_spatial_" + n] = {[r](const Inputs& x) { return cross_entropy(x[0], x[1], x[2], -100, 0.2, r); }};
        c["nll_" + n] = {[r](const Inputs& x) { return nll_loss(x[0], x[1], Tensor(), -100, r); }};
        c["nll_weight_" + n] = {[r](const Inputs& x) { return nll_loss(x[0], x[1], x[2], -100, r); }};
    }
    c["mse_mean_transposed"] = {[](const Inputs& x) { return mse_loss(x[0].transpose(0, 1), x[1]); }};
    c["l1_sum_transposed"] = {[](const Inputs& x) { return l1_loss(x[0].transpose(0, 1), x[1], Reduction::sum); }};
    c["bce_weight_mean"] = {[](const Inputs& x) { return bce_with_logits(x[0], x[1], x[2]); }};
    c["bce_posw_sum"] = {[](const Inputs& x) { return bce_with_logits(x[0], x[1], Tensor(), x[2], Reduction::sum); }};
    c["bce_extreme_none"] = {
        [](const Inputs& x) { return bce_with_logits(x[0], x[1], Tensor(), x[2], Reduction::none); }};
    c["bce_transposed_mean"] = {[](const Inputs& x) { return bce_with_logits(x[0].transpose(0, 1), x[1]); }};
    c["ce_ignore_mean"] = {[](const Inputs& x) { return cross_entropy(x[0], x[1]); }};
    c["ce_smooth_ignore_mean"] = {[](const Inputs& x) { return cross_entropy(x[0], x[1], Tensor(), -100, 0.3); }};
    c["ce_ignore_index_1_mean"] = {[](const Inputs& x) { return cross_entropy(x[0], x[1], x[2], 1); }};
    c["ce_unbatched_mean"] = {[](const Inputs& x) { return cross_entropy(x[0], x[1]); }};
    c["ce_unbatched_smooth_none"] = {
        [](const Inputs& x) { return cross_entropy(x[0], x[1], Tensor(), -100, 0.15, Reduction::none); }};
    c["ce_transposed_mean"] = {[](const Inputs& x) { return cross_entropy(x[0].transpose(0, 1), x[1]); }};
    // logits of size ~800: f32 keeps ~7 significant digits of them, so the f32 run is compared at 1e-4 absolute
    c["ce_large_logits_sum"] = {[](const Inputs& x) { return cross_entropy(x[0], x[1], Tensor(), -100, 0.0,
                                                                           Reduction::sum); },
                                {1e-10, 1e-8},
                                {1e-4, 2e-5}};
    c["nll_spatial_mean"] = {[](const Inputs& x) { return nll_loss(x[0], x[1]); }};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

Tensor i64s(const std::vector<int64_t>& v, const Shape& shape) { return from_vector(v, shape); }

const Reduction kAll[] = {Reduction::none, Reduction::mean, Reduction::sum};

}  // namespace

TEST_CASE("loss: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][loss]") {
    cxr::testing::run_fixture_table("loss", loss_cases(), DType::f64);
}

TEST_CASE("loss: PyTorch fixtures run in f32 against the f64 reference", "[cpu][loss]") {
    cxr::testing::run_fixture_table("loss", loss_cases(), DType::f32);
}

// ---------------------------------------------------------------- gradchecks (f64 central differences)

TEST_CASE("loss: gradcheck of mse and l1 (every reduction, non-contiguous input)", "[cpu][loss]") {
    Tensor x = leaf({3, 5}, 201), y = leaf({3, 5}, 202), xt = leaf({5, 3}, 203);
    for (Reduction r : kAll) {
        INFO("reduction " << reduction_name(r));
        CXR_EXPECT_GRADCHECK([r](const Inputs& in) { return mse_loss(in[0], in[1], r); }, {x, y});
        CXR_EXPECT_GRADCHECK([r](const Inputs& in) { return l1_loss(in[0], in[1], r); }, {x, y});
        CXR_EXPECT_GRADCHECK([r](const Inputs& in) { return mse_loss(in[0].transpose(0, 1), in[1], r); }, {xt, y});
        CXR_EXPECT_GRADCHECK([r](const Inputs& in) { return l1_loss(in[0].transpose(0, 1), in[1], r); }, {xt, y});
    }
}

TEST_CASE("loss: gradcheck of bce_with_logits incl. weight and pos_weight gradients", "[cpu][loss]") {
    Tensor x = leaf({4, 5}, 211, -4, 4), y = leaf({4, 5}, 212, 0, 1);
    Tensor w = leaf({4, 1}, 213, 0.5, 1.5), p = leaf({5}, 214, 0.25, 3);
    Tensor xt = leaf({5, 4}, 215, -3, 3);
    for (Reduction r : kAll) {
        INFO("reduction " << reduction_name(r));
        CXR_EXPECT_GRADCHECK([r](const Inputs& in) { return bce_with_logits(in[0], in[1], Tensor(), Tensor(), r); },
                             {x, y});
        CXR_EXPECT_GRADCHECK([r](const Inputs& in) { return bce_with_logits(in[0], in[1], in[2], in[3], r); },
                             {x, y, w, p});
        CXR_EXPECT_GRADCHECK(
            [r](const Inputs& in) { return bce_with_logits(in[0].transpose(0, 1), in[1], in[2], Tensor(), r); },
            {xt, y, w});
    }
    // a scalar weight and a [1, 5] pos_weight broadcast as well
    CXR_EXPECT_GRADCHECK([](const Inputs& in) { return bce_with_logits(in[0], in[1], in[2], in[3]); },
                         {x, y, leaf({}, 216, 0.5, 1.5), leaf({1, 5}, 217, 0.5, 2)});
}

TEST_CASE("loss: gradcheck of cross_entropy and nll_loss (weights, ignore_index, smoothing, spatial)",
          "[cpu][loss]") {
    Tensor logits = leaf({6, 4}, 221, -3, 3);
    Tensor cw = leaf({4}, 222, 0.5, 2);
    Tensor t = i64s({0, 3, 1, 3, 2, 0}, {6});
    Tensor ti = i64s({0, -100, 1, 3, -100, 2}, {6});
    Tensor sp = leaf({2, 3, 4, 3}, 223, -2, 2);
    Tensor spw = leaf({3}, 224, 0.5, 2);
    Tensor spt = i64s({0, 1, 2, 2, 1, 0, -100, 0, 1, 2, 2, 2, 1, 1, 0, 0, 2, 1, 0, -100, 2, 1, 1, 0}, {2, 4, 3});
    Tensor lt = leaf({5, 4}, 225);  // transposed -> [4, 5]: 4 samples, 5 classes
    Tensor tt = i64s({4, 0, 2, 4}, {4});
    for (Reduction r : kAll) {
        for (double eps : {0.0, 0.2}) {
            INFO("reduction " << reduction_name(r) << ", label_smoothing " << eps);
            CXR_EXPECT_GRADCHECK(
                [r, eps, t](const Inputs& in) { return cross_entropy(in[0], t, Tensor(), -100, eps, r); }, {logits});
            // gradients to the logits and to the class weights
            CXR_EXPECT_GRADCHECK(
                [r, eps, ti](const Inputs& in) { return cross_entropy(in[0], ti, in[1], -100, eps, r); },
                {logits, cw});
            CXR_EXPECT_GRADCHECK(
                [r, eps, spt](const Inputs& in) { return cross_entropy(in[0], spt, in[1], -100, eps, r); }, {sp, spw});
            CXR_EXPECT_GRADCHECK(
                [r, eps, tt](const Inputs& in) {
                    return cross_entropy(in[0].transpose(0, 1), tt, Tensor(), -100, eps, r);
                },
                {lt});
        }
        INFO("nll_loss, reduction " << reduction_name(r));
        CXR_EXPECT_GRADCHECK([r, ti](const Inputs& in) { return nll_loss(in[0], ti, in[1], -100, r); },
                             {logits, cw});
        CXR_EXPECT_GRADCHECK([r, spt](const Inputs& in) { return nll_loss(in[0], spt, Tensor(), -100, r); }, {sp});
    }
}

// ---------------------------------------------------------------- definitions and errors

TEST_CASE("loss: weighted mean, ignore_index and label smoothing follow torch's definitions", "[cpu][loss]") {
    // logits chosen so that log-probabilities are easy to compute here in double
    std::vector<double> lv = {0.2, -1.0, 0.5, 1.5, 0.0, -0.3};  // [2, 3]
    Tensor logits = from_vector(lv, {2, 3});
    Tensor w = from_vector(std::vector<double>{0.5, 2.0, 1.25}, {3});
    auto logp = [&](int i, int c) {
        double m = std::max({lv[i * 3], lv[i * 3 + 1], lv[i * 3 + 2]});
        double s = 0;
        for (int k = 0; k < 3; ++k) s += std::exp(lv[i * 3 + k] - m);
        return lv[i * 3 + c] - m - std::log(s);
    };
    Tensor t = i64s({2, 0}, {2});
    // weighted mean divides by the sum of the target weights
    double expect = (-1.25 * logp(0, 2) - 0.5 * logp(1, 0)) / (1.25 + 0.5);
    CHECK(cross_entropy(logits, t, w).item() == Approx(expect).epsilon(1e-12));
    // an ignored sample contributes neither loss nor weight
    Tensor ti = i64s({2, -100}, {2});
    CHECK(cross_entropy(logits, ti, w).item() == Approx(-logp(0, 2)).epsilon(1e-12));
    CHECK(cross_entropy(logits, ti, w, -100, 0.0, Reduction::none).to_vector<double>()[1] == 0.0);
    // all ignored: 0/0 = NaN for mean (as torch), 0 for sum
    Tensor all_ign = i64s({-100, -100}, {2});
    CHECK(std::isnan(cross_entropy(logits, all_ign).item()));
    CHECK(cross_entropy(logits, all_ign, Tensor(), -100, 0.0, Reduction::sum).item() == 0.0);
    // label smoothing with weights: ((1−ε) Σ nll + ε/C Σ smooth) / Σ w[t]
    const double eps = 0.3;
    double smooth0 = 0, smooth1 = 0;
    const double wc[3] = {0.5, 2.0, 1.25};
    for (int c = 0; c < 3; ++c) {
        smooth0 -= wc[c] * logp(0, c);
        smooth1 -= wc[c] * logp(1, c);
    }
    double nll_sum = -1.25 * logp(0, 2) - 0.5 * logp(1, 0);
    double smoothed = ((1 - eps) * nll_sum + eps / 3 * (smooth0 + smooth1)) / (1.25 + 0.5);
    CHECK(cross_entropy(logits, t, w, -100, eps).item() == Approx(smoothed).epsilon(1e-12));
    // ε = 1 leaves only the smoothing term
    CHECK(cross_entropy(logits, t, Tensor(), -100, 1.0, Reduction::sum).item() ==
          Approx(-(logp(0, 0) + logp(0, 1) + logp(0, 2) + logp(1, 0) + logp(1, 1) + logp(1, 2)) / 3).epsilon(1e-12));
    // nll_loss on log-probabilities equals cross_entropy on logits; i32 targets work too
    Tensor lp = sub(logits, logsumexp(logits, {1}, true));
    CHECK(nll_loss(lp, cast(t, DType::i32), w).item() == Approx(expect).epsilon(1e-12));
}

TEST_CASE("loss: bce_with_logits is finite and exact for extreme logits", "[cpu][loss]") {
    Tensor x = from_vector(std::vector<double>{-1000, -40, 0, 40, 1000}, {5}).set_requires_grad();
    Tensor y = from_vector(std::vector<double>{1, 1, 1, 0, 0}, {5});
    Tensor l = bce_with_logits(x, y, Tensor(), Tensor(), Reduction::none);
    std::vector<double> v = l.to_vector<double>();
    CHECK(v[0] == Approx(1000));
    CHECK(v[1] == Approx(40));
    CHECK(v[2] == Approx(std::log(2.0)).epsilon(1e-15));
    CHECK(v[3] == Approx(40));
    CHECK(v[4] == Approx(1000));
    sum(l).backward();
    std::vector<double> g = x.grad().to_vector<double>();
    CHECK(g[0] == Approx(-1.0));
    CHECK(g[2] == Approx(-0.5).epsilon(1e-15));  // σ(0) − 1, exact at the kink of |x|
    CHECK(g[4] == Approx(1.0));
    // f32 too
    Tensor xf = cast(x.detach(), DType::f32);
    Tensor lf = bce_with_logits(xf, cast(y, DType::f32), Tensor(), Tensor(), Reduction::sum);
    CHECK(lf.dtype() == DType::f32);
    CHECK(std::isfinite(lf.item()));
}

TEST_CASE("loss: shapes, reductions and argument errors", "[cpu][loss]") {
    Tensor x = zeros({3, 4}, DType::f64), y = zeros({3, 4}, DType::f64);
    CHECK(mse_loss(x, y, Reduction::none).sizes() == Shape{3, 4});
    CHECK(mse_loss(x, y).sizes() == Shape{});
    CHECK(std::string(reduction_name(Reduction::sum)) == "sum");
    CHECK_THROWS_WITH(mse_loss(x, zeros({4, 3}, DType::f64)), Catch::Contains("mse_loss") && Catch::Contains("[4, 3]"));
    CHECK_THROWS_WITH(l1_loss(x, zeros({3, 4}, DType::i64)), Catch::Contains("floating"));
    CHECK_THROWS_WITH(bce_with_logits(x, y, zeros({2}, DType::f64)),
                      Catch::Contains("weight") && Catch::Contains("does not broadcast"));
    CHECK_THROWS_WITH(bce_with_logits(x, y, Tensor(), zeros({3}, DType::f64)),
                      Catch::Contains("pos_weight") && Catch::Contains("does not broadcast"));
    Tensor logits = zeros({3, 4}, DType::f64);
    CHECK(cross_entropy(logits, i64s({0, 1, 2}, {3}), Tensor(), -100, 0.0, Reduction::none).sizes() == Shape{3});
    CHECK(cross_entropy(zeros({2, 4, 5, 6}, DType::f64), zeros({2, 5, 6}, DType::i64), Tensor(), -100, 0.0,
                        Reduction::none)
              .sizes() == Shape{2, 5, 6});
    CHECK(cross_entropy(zeros({4}, DType::f64), i64s({1}, {}), Tensor(), -100, 0.0, Reduction::none).sizes() ==
          Shape{});
    CHECK_THROWS_WITH(cross_entropy(logits, i64s({0, 4, 1}, {3})),
                      Catch::Contains("target 4") && Catch::Contains("[0, 3]"));
    CHECK_THROWS_WITH(cross_entropy(logits, i64s({0, -1, 1}, {3})), Catch::Contains("target -1"));
    CHECK_THROWS_WITH(cross_entropy(logits, i64s({0, 1}, {2})), Catch::Contains("does not match"));
    CHECK_THROWS_WITH(cross_entropy(logits, zeros({3}, DType::f64)), Catch::Contains("class indices"));
    CHECK_THROWS_WITH(cross_entropy(logits, i64s({0, 1, 2}, {3}), zeros({3}, DType::f64)),
                      Catch::Contains("weight must be [4]"));
    CHECK_THROWS_WITH(cross_entropy(logits, i64s({0, 1, 2}, {3}), Tensor(), -100, 1.5),
                      Catch::Contains("label_smoothing"));
    CHECK_THROWS_WITH(nll_loss(zeros({4}, DType::f64), i64s({0, 1}, {2})), Catch::Contains("0-d target"));
}

// The losses are composed of ops with CUDA kernels (softmax, gather, elementwise, reductions): on a CUDA tensor
// they equal the CPU's, forward and backward.
TEST_CASE("loss: cross_entropy, mse, l1 and bce_with_logits on CUDA match the CPU", "[gpu][loss]") {
    CXR_SKIP_WITHOUT_GPU();
    const Device gpu = Device::cuda(0);
    Tensor x = cxr::testing::random_input({3, 5}, 231, -1, 1, DType::f32).set_requires_grad(true);
    Tensor xg = x.detach().to(gpu).set_requires_grad(true);
    const Tensor t = i64s({0, 4, 2}, {3}), y = cxr::testing::random_input({3, 5}, 232, 0, 1, DType::f32);
    auto both = [&](auto loss) {
        x.zero_grad();
        xg.zero_grad();
        const Tensor lc = loss(x, t, y), lg = loss(xg, t.to(gpu), y.to(gpu));
        CXR_EXPECT_CLOSE(lg.to(Device::cpu()), lc, 1e-6, 1e-5);
        lc.backward();
        lg.backward();
        CXR_EXPECT_CLOSE(xg.grad().to(Device::cpu()), x.grad(), 1e-6, 1e-5);
    };
    both([](const Tensor& a, const Tensor& tt, const Tensor&) { return cross_entropy(a, tt); });
    both([](const Tensor& a, const Tensor&, const Tensor& yy) { return mse_loss(a, yy); });
    both([](const Tensor& a, const Tensor&, const Tensor& yy) { return l1_loss(a, yy); });
    both([](const Tensor& a, const Tensor&, const Tensor& yy) { return bce_with_logits(a, yy); });
}

TEST_CASE("loss: CUDA tensors need the CUDA backend (compile check in CPU-only builds)", "[cpu][loss]") {
    if (backend_compiled(DeviceType::CUDA)) return;  // exercised by the [gpu] test
    CHECK_THROWS(cross_entropy(full({2, 3}, 1.0, Options(DType::f32, Device::cuda(0))), i64s({0, 1}, {2})));
}
