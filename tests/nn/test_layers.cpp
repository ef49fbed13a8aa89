// Tests of the nn layers (nn/basic.h, conv.h, norm.h, activation.h, pooling.h, container.h) and initialisers
// (nn/init.h):
//   - two small torch.nn models from the PyTorch fixture tests/fixtures/nn.* (make_nn_fixtures.py), rebuilt with
//     the same child names: their state dict loads STRICTLY (so the dotted keys match torch's), and the outputs,
//     input gradients, every parameter gradient (by name) and the BatchNorm buffers after the step (running
//     statistics, the momentum=None cumulative average, num_batches_tracked) match torch in train and eval mode,
//     in f64 (tight) and after the f64 -> f32 conversion on load (loose);
//   - default initialisation: the bounds and moments of PyTorch's formulas (kaiming_uniform with a = √5 gives
//     U(−1/√fan_in, 1/√fan_in); Embedding N(0, 1); norms 1 and 0) — values come from Philox, so distributions,
//     not values, are compared; fans and gains against hand-computed values;
//   - Dropout in train and eval mode; BatchNorm without running statistics; argument errors.
#include "tests/support/testing.h"

#include <cmath>
#include <set>

#include "nn/init.h"
#include "nn/layers.h"
#include "tensor/autograd.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/norm.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"
#include "tests/nn/nn_test_models.h"

using namespace cxr::nn;
using cxr::tensor::DType;
using cxr::tensor::Generator;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;

namespace {

struct Tol {
    double atol, rtol;
};

// Compares out, the input gradient, the parameter gradients and the buffers after the step with the fixture's
// "<model>.<mode>.*" tensors, all by name.
void check_step(const Fixtures& fx, const std::string& model, const std::string& mode, Module& m, const Tensor& out,
                const Tensor& x, Tol tol) {
    const std::string p = model + "." + mode + ".";
    {
        INFO(p << "out");
        CXR_EXPECT_CLOSE(out, fx.get(p + "out"), tol.atol, tol.rtol);
    }
    {
        INFO(p << "grad_input");
        REQUIRE(x.grad().defined());
        CXR_EXPECT_CLOSE(x.grad(), fx.get(p + "grad_input"), tol.atol, tol.rtol);
    }
    size_t n_params = 0;
    for (const auto& [key, param] : m.named_parameters()) {
        INFO(p << "grad." << key);
        REQUIRE(param.grad().defined());
        CXR_EXPECT_CLOSE(param.grad(), fx.get(p + "grad." + key), tol.atol, tol.rtol);
        ++n_params;
    }
    CHECK(n_params == fx.names_with_prefix(p + "grad.").size());
    size_t n_buffers = 0;
    for (const auto& [key, buf] : m.named_buffers()) {
        INFO(p << "after." << key);
        CXR_EXPECT_CLOSE(buf, fx.get(p + "after." + key), tol.atol, tol.rtol);
        if (key.find("num_batches_tracked") != std::string::npos) CHECK(buf.dtype() == DType::i64);
        ++n_buffers;
    }
    CHECK(n_buffers == fx.names_with_prefix(p + "after.").size());
}

Tensor weighted_sum(const Tensor& out, const Tensor& w) { return T::sum(T::mul(out, T::cast(w, out.dtype()))); }

void run_cnn(DType dt, Tol tol) {
    Fixtures fx("nn");
    auto cnn = testmodels::make_cnn();
    if (dt == DType::f64) cnn->to(DType::f64);
    const StateDict sd = testmodels::fixture_state(fx, "cnn");
    for (const std::string mode : {"train", "eval"}) {
        INFO("dtype " << T::dtype_name(dt) << ", mode " << mode);
        LoadReport r = cnn->load_state_dict(sd);  // strict
        CHECK(r.loaded.size() == sd.size());
        CHECK(r.converted.size() == (dt == DType::f64 ? 0u : sd.size() - 2));  // all but the two i64 counters
        cnn->zero_grad();
        cnn->train(mode == std::string("train"));
        // torch's reference ran Dropout with p = 0 in train mode (no random mask); eval mode is the identity.
        std::dynamic_pointer_cast<Dropout>((*cnn)[7])->p = 0.0;
        Tensor x = T::cast(fx.get("cnn.input"), dt).clone().detach();
        x.set_requires_grad(true);
        Tensor out = cnn->forward(x);
        weighted_sum(out, fx.get("cnn." + mode + ".w")).backward();
        check_step(fx, "cnn", mode, *cnn, out, x, tol);
    }
}

void run_misc(DType dt, Tol tol) {
    Fixtures fx("nn");
    auto misc = std::make_shared<testmodels::Misc>();
    if (dt == DType::f64) misc->to(DType::f64);
    const StateDict sd = testmodels::fixture_state(fx, "misc");
    for (const std::string mode : {"train", "eval"}) {
        INFO("dtype " << T::dtype_name(dt) << ", mode " << mode);
        LoadReport r = misc->load_state_dict(sd);
        CHECK(r.loaded.size() == sd.size());
        misc->zero_grad();
        misc->train(mode == std::string("train"));
        Tensor x = T::cast(fx.get("misc.input"), dt).clone().detach();
        x.set_requires_grad(true);
        Tensor out = misc->forward2(x, fx.get("misc.index"));
        weighted_sum(out, fx.get("misc." + mode + ".w")).backward();
        check_step(fx, "misc", mode, *misc, out, x, tol);
    }
}

struct Moments {
    double min, max, mean, var;
};
Moments moments(const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    Moments m{v[0], v[0], 0.0, 0.0};
    for (double a : v) {
        m.min = std::min(m.min, a);
        m.max = std::max(m.max, a);
        m.mean += a;
    }
    m.mean /= (double)v.size();
    for (double a : v) m.var += (a - m.mean) * (a - m.mean);
    m.var /= (double)v.size();
    return m;
}

// U(−b, b): every value inside, the extremes close to ±b, mean ≈ 0 and variance ≈ b²/3 (n >= ~500 values).
void check_uniform(const Tensor& t, double b) {
    const Moments m = moments(t);
    const double n = (double)t.numel();
    INFO("bound " << b << ", min " << m.min << ", max " << m.max << ", mean " << m.mean << ", var " << m.var);
    CHECK(m.min >= -b);
    CHECK(m.max <= b);
    CHECK(m.max > 0.9 * b);
    CHECK(m.min < -0.9 * b);
    CHECK(std::abs(m.mean) < 5.0 * b / std::sqrt(3.0 * n));         // 5 standard errors
    CHECK(std::abs(m.var / (b * b / 3.0) - 1.0) < 5.0 * std::sqrt(0.8 / n));  // Var(u²)/E(u²)² = 4/5
}

// N(mu, s²): mean and variance within 5 standard errors.
void check_normal(const Tensor& t, double mu, double s) {
    const Moments m = moments(t);
    const double n = (double)t.numel();
    INFO("mean " << m.mean << ", var " << m.var << ", expected " << mu << ", " << s * s);
    CHECK(std::abs(m.mean - mu) < 5.0 * s / std::sqrt(n));
    CHECK(std::abs(m.var / (s * s) - 1.0) < 5.0 * std::sqrt(2.0 / n));
}

}  // namespace

TEST_CASE("nn: Conv/BatchNorm/ReLU/MaxPool/Flatten/Linear Sequential matches PyTorch (f64)", "[cpu][nn]") {
    run_cnn(DType::f64, {1e-10, 1e-8});
}

TEST_CASE("nn: Conv/BatchNorm Sequential matches PyTorch after f64 -> f32 conversion on load", "[cpu][nn]") {
    run_cnn(DType::f32, {2e-5, 2e-4});
}

TEST_CASE("nn: Embedding/ConvTranspose2d/GroupNorm/LayerNorm/ModuleList model matches PyTorch (f64)",
          "[cpu][nn]") {
    run_misc(DType::f64, {1e-10, 1e-8});
}

TEST_CASE("nn: Embedding/ConvTranspose2d/GroupNorm/LayerNorm model matches PyTorch in f32", "[cpu][nn]") {
    run_misc(DType::f32, {2e-5, 2e-4});
}

TEST_CASE("nn: the fixture's torch repr lines of Conv2d and Linear equal str()", "[cpu][nn]") {
    // From tests/fixtures/nn.json ("model"): torch's repr of the same layers.
    auto cnn = testmodels::make_cnn();
    const std::string s = cnn->str();
    INFO(s);
    CHECK(s.find("(0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))") != std::string::npos);
    CHECK(s.find("(conv): Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)") !=
          std::string::npos);
    CHECK(s.find("(act): LeakyReLU(negative_slope=0.1)") != std::string::npos);
    CHECK(s.find("(8): Linear(in_features=6, out_features=5, bias=True)") != std::string::npos);
    CHECK(s.find("(6): Flatten(start_dim=1, end_dim=-1)") != std::string::npos);
}

TEST_CASE("init: fans and gains as torch.nn.init (hand-computed)", "[cpu][nn]") {
    auto f = init::compute_fans(T::empty({5, 3}));
    CHECK(f.fan_in == 3);
    CHECK(f.fan_out == 5);
    f = init::compute_fans(T::empty({6, 4, 3, 2}));
    CHECK(f.fan_in == 24);
    CHECK(f.fan_out == 36);
    CHECK_THROWS_AS(init::compute_fans(T::empty({7})), cxr::Error);
    CHECK(init::calculate_gain(init::Nonlinearity::relu) == Approx(std::sqrt(2.0)));
    CHECK(init::calculate_gain(init::Nonlinearity::tanh) == Approx(5.0 / 3.0));
    CHECK(init::calculate_gain(init::Nonlinearity::linear) == 1.0);
    CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu) == Approx(std::sqrt(2.0 / (1.0 + 1e-4))));
    // a = √5 (torch's Linear/Conv default): √(2/6) — so that the bound gain·√(3/fan_in) is 1/√fan_in.
    CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
    CHECK(init::calculate_gain(init::Nonlinearity::selu) == 0.75);
}

TEST_CASE("init: Linear and Conv defaults are U(-1/sqrt(fan_in), 1/sqrt(fan_in))", "[cpu][nn]") {
    Generator gen(11);
    Linear lin(64, 300, true, &gen);  // weight [300, 64]
    check_uniform(lin.weight, 1.0 / 8.0);
    check_uniform(lin.bias, 1.0 / 8.0);
    Conv2d conv(8, 600, 3, 1, 0, 1, 2, true, &gen);  // weight [600, 4, 3, 3]: fan_in 36
    CHECK(conv.weight.sizes() == Shape{600, 4, 3, 3});
    check_uniform(conv.weight, 1.0 / 6.0);
    check_uniform(conv.bias, 1.0 / 6.0);
    ConvTranspose2d up(600, 8, 3, 2, 1, 1, 2, true, 1, &gen);  // weight [600, 4, 3, 3]: torch's fan_in = 4·9
    CHECK(up.weight.sizes() == Shape{600, 4, 3, 3});
    check_uniform(up.weight, 1.0 / 6.0);
    CHECK(moments(up.bias).max <= 1.0 / 6.0);
    CHECK(lin.weight.requires_grad());
    CHECK(lin.weight.is_leaf());
}

TEST_CASE("init: kaiming/xavier/normal formulas", "[cpu][nn]") {
    Generator gen(5);
    Tensor w = T::empty({200, 50});
    init::kaiming_normal_(w, 0.0, init::FanMode::fan_in, init::Nonlinearity::relu, &gen);
    check_normal(w, 0.0, std::sqrt(2.0 / 50.0));
    init::kaiming_normal_(w, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu, &gen);
    check_normal(w, 0.0, std::sqrt(2.0 / 200.0));
    init::kaiming_uniform_(w, 0.0, init::FanMode::fan_in, init::Nonlinearity::relu, &gen);
    check_uniform(w, std::sqrt(2.0) * std::sqrt(3.0 / 50.0));
    init::xavier_uniform_(w, 2.0, &gen);
    check_uniform(w, 2.0 * std::sqrt(6.0 / 250.0));
    init::xavier_normal_(w, 1.0, &gen);
    check_normal(w, 0.0, std::sqrt(2.0 / 250.0));
    init::normal_(w, 3.0, 0.5, &gen);
    check_normal(w, 3.0, 0.5);
    init::ones_(w);
    CHECK(moments(w).min == 1.0);
    CHECK(moments(w).max == 1.0);
    // f16 and f64 parameters are filled too (drawn in f64, cast on copy).
    Tensor h = T::empty({100, 40}, DType::f16);
    init::uniform_(h, -0.25, 0.25, &gen);
    CHECK(moments(h).max <= 0.25);
    CHECK(moments(h).min >= -0.25);
}

TEST_CASE("init: the same generator seed gives the same parameters", "[cpu][nn]") {
    Generator g1(42), g2(42), g3(43);
    Linear a(7, 5, true, &g1), b(7, 5, true, &g2), c(7, 5, true, &g3);
    CXR_EXPECT_CLOSE(a.weight, b.weight, 0.0, 0.0);
    CXR_EXPECT_CLOSE(a.bias, b.bias, 0.0, 0.0);
    CHECK_FALSE(cxr::testing::check_close(a.weight, c.weight, 0.0, 0.0).ok);
}

TEST_CASE("nn: Embedding init is N(0, 1) with a zero padding row; norms start at 1 and 0", "[cpu][nn]") {
    Generator gen(3);
    Embedding emb(2000, 4, -1, &gen);  // padding_idx -1 -> 1999
    REQUIRE(emb.padding_idx.has_value());
    CHECK(*emb.padding_idx == 1999);
    check_normal(T::narrow(emb.weight, 0, 0, 1999), 0.0, 1.0);
    CHECK(moments(T::select(emb.weight, 0, 1999)).max == 0.0);
    CHECK(moments(T::select(emb.weight, 0, 1999)).min == 0.0);

    BatchNorm2d bn(3);
    CHECK(moments(bn.weight).min == 1.0);
    CHECK(moments(bn.bias).max == 0.0);
    CHECK(moments(bn.running_mean).max == 0.0);
    CHECK(moments(bn.running_var).min == 1.0);
    CHECK(bn.num_batches_tracked.dtype() == DType::i64);
    CHECK(bn.num_batches_tracked.dim() == 0);
    CHECK(bn.num_batches_tracked.item() == 0.0);
    GroupNorm gn(2, 4);
    CHECK(moments(gn.weight).min == 1.0);
    CHECK(moments(gn.bias).max == 0.0);
    LayerNorm ln({3, 4});
    CHECK(ln.weight.sizes() == Shape{3, 4});
    CHECK(moments(ln.bias).max == 0.0);
    LayerNorm ln_nobias({5}, 1e-5, true, false);
    CHECK_FALSE(ln_nobias.bias.defined());
    CHECK(ln_nobias.state_dict().size() == 1);
}

TEST_CASE("nn: Dropout masks and rescales in train mode and is the identity in eval mode", "[cpu][nn]") {
    Generator gen(9);
    Dropout drop(0.25, &gen);
    Tensor x = T::ones({4000});
    Tensor y = drop.forward(x);
    std::vector<double> v = y.to_vector<double>();
    int zeros = 0;
    for (double a : v) {
        CHECK((a == 0.0 || std::abs(a - 1.0 / 0.75) < 1e-6));
        zeros += a == 0.0;
    }
    // Binomial(4000, 0.25): sd = √(4000·0.25·0.75) ≈ 27.4; allow 5 sd.
    CHECK(std::abs(zeros - 1000) < 137);
    drop.eval();
    CXR_EXPECT_CLOSE(drop.forward(x), x, 0.0, 0.0);
    CHECK_THROWS_AS(Dropout(1.5), cxr::Error);
}

TEST_CASE("nn: BatchNorm2d without running stats uses batch statistics in eval mode and has no buffers",
          "[cpu][nn]") {
    BatchNorm2d bn(3, 1e-5, 0.1, true, false);
    CHECK(bn.named_buffers().empty());
    CHECK(bn.state_dict().size() == 2);
    Tensor x = cxr::testing::random_input({4, 3, 2, 2}, 1, -1.0, 2.0, DType::f32);
    bn.eval();
    // The functional batch norm with batch statistics (checked against torch in tests/tensor/test_norm.cpp).
    Tensor expected = T::batch_norm(x, Tensor(), Tensor(), bn.weight, bn.bias, true, 0.1, 1e-5);
    CXR_EXPECT_CLOSE(bn.forward(x), expected, 1e-6, 1e-6);
}

TEST_CASE("nn: BatchNorm2d in eval mode leaves its buffers alone; train mode counts batches", "[cpu][nn]") {
    BatchNorm2d bn(2);
    Tensor x = cxr::testing::random_input({3, 2, 2, 2}, 2, -1.0, 1.0, DType::f32);
    bn.eval();
    bn.forward(x);
    CHECK(bn.num_batches_tracked.item() == 0.0);
    CHECK(moments(bn.running_mean).max == 0.0);
    bn.train();
    bn.forward(x);
    bn.forward(x);
    CHECK(bn.num_batches_tracked.item() == 2.0);
    CHECK(moments(bn.running_mean).max != 0.0);
}

TEST_CASE("nn: layers reject inputs of the wrong shape with a message naming the layer", "[cpu][nn]") {
    Linear lin(4, 2);
    CHECK_THROWS_WITH(lin.forward(T::zeros({3, 5})), Catch::Contains("Linear(4, 2)"));
    Conv2d conv(3, 4, 3);
    CHECK_THROWS_WITH(conv.forward(T::zeros({1, 2, 5, 5})), Catch::Contains("Conv2d(3, 4)"));
    BatchNorm2d bn(4);
    CHECK_THROWS_WITH(bn.forward(T::zeros({2, 4, 3})), Catch::Contains("4D"));
    CHECK_THROWS_AS(Conv2d(3, 4, 3, 1, 0, 1, 2), cxr::Error);  // 3 channels in 2 groups
    CHECK_THROWS_AS(GroupNorm(3, 4), cxr::Error);
    Sequential seq;
    CHECK_THROWS_WITH(seq[0], Catch::Contains("out of range"));
}

TEST_CASE("nn: pooling, activation and Flatten layers call their ops", "[cpu][nn]") {
    Tensor x = cxr::testing::random_input({2, 3, 6, 6}, 4, -1.0, 1.0, DType::f32);
    MaxPool2d mp(3, 0, 1);
    CHECK(mp.stride == T::Size2{3, 3});  // stride 0 = kernel, as torch's stride=None
    CXR_EXPECT_CLOSE(mp.forward(x), T::max_pool2d(x, {3, 3}, {3, 3}, {1, 1}), 0.0, 0.0);
    AvgPool2d ap({2, 3}, 1, 0, false, false);
    CXR_EXPECT_CLOSE(ap.forward(x), T::avg_pool2d(x, {2, 3}, {1, 1}, {0, 0}, false, false), 0.0, 0.0);
    AdaptiveAvgPool2d aap({1, 2});
    CHECK(aap.forward(x).sizes() == Shape{2, 3, 1, 2});
    CHECK(Flatten().forward(x).sizes() == Shape{2, 108});
    CHECK(Flatten(0, 2).forward(x).sizes() == Shape{36, 6});
    CXR_EXPECT_CLOSE(ReLU().forward(x), T::relu(x), 0.0, 0.0);
    CXR_EXPECT_CLOSE(LeakyReLU(0.2).forward(x), T::leaky_relu(x, 0.2), 0.0, 0.0);
    CXR_EXPECT_CLOSE(SiLU().forward(x), T::silu(x), 0.0, 0.0);
    CXR_EXPECT_CLOSE(GELU().forward(x), T::gelu(x), 0.0, 0.0);
    CXR_EXPECT_CLOSE(Sigmoid().forward(x), T::sigmoid(x), 0.0, 0.0);
    CXR_EXPECT_CLOSE(Tanh().forward(x), T::tanh(x), 0.0, 0.0);
    CXR_EXPECT_CLOSE(Identity().forward(x), x, 0.0, 0.0);
}

TEST_CASE("nn: SkipRandomInit leaves parameters zero and the generator untouched, within its scope only",
          "[cpu][nn]") {
    Generator gen(42);
    {
        init::SkipRandomInit skip;
        CHECK(init::SkipRandomInit::active());
        Linear lin(16, 8, true, &gen);
        Conv2d conv(3, 4, 3, 1, 1, 1, 1, true, &gen);
        Embedding emb(10, 4, std::nullopt, &gen);
        for (const T::Tensor& t : {lin.weight, lin.bias, conv.weight, conv.bias, emb.weight})
            CHECK(T::sum(T::abs(t)).item() == 0.0);
        {
            init::SkipRandomInit nested;
        }
        CHECK(init::SkipRandomInit::active());  // a nested scope restores the outer state
    }
    CHECK_FALSE(init::SkipRandomInit::active());
    CHECK(gen.offset() == 0);  // nothing was drawn
    Linear drawn(16, 8, true, &gen);
    CHECK(gen.offset() > 0);
    CHECK(T::sum(T::abs(drawn.weight)).item() > 0.0);
}
