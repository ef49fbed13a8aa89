// Autocast (tensor/autocast.h): the per-thread guard; the lower-precision ops (matmul, linear, baddbmm, conv2d, sdpa)
// cast f32 inputs to bf16/f16 and return that dtype, with values checked against a double-precision product of the
// rounded inputs; the f32 ops (softmax, norms, losses) return f32; gradients reach f32 master weights in f32; a
// small ResNet stays within bf16 precision of its f32 forward. [gpu]: the same on CUDA against the CPU.
#include "tests/support/testing.h"

#include <cmath>
#include <optional>
#include <thread>
#include <vector>

#include "nn/module.h"
#include "tensor/ops/attention.h"
#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/norm.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"
#include "tensor/generator.h"
#include "vision/models.h"

using namespace cxr::tensor;
using cxr::testing::random_input;

namespace {

Tensor f32_input(const Shape& s, uint64_t seed) { return random_input(s, seed, -1, 1, DType::f32); }

// Reference of an autocast matmul: the inputs rounded to dt, their product summed in double, rounded to dt.
// a [M, K], b [K, N] (f32) -> [M, N] in dt.
Tensor reference_matmul(const Tensor& a, const Tensor& b, DType dt) {
    const std::vector<double> ar = cast(cast(a, dt), DType::f64).contiguous().to_vector<double>();
    const std::vector<double> br = cast(cast(b, dt), DType::f64).contiguous().to_vector<double>();
    const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
    std::vector<double> c((size_t)(M * N), 0.0);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k) s += ar[(size_t)(i * K + k)] * br[(size_t)(k * N + j)];
            c[(size_t)(i * N + j)] = s;
        }
    return cast(from_vector(c, {M, N}), dt);
}

}  // namespace

TEST_CASE("autocast: the guard sets, nests and restores the state of its own thread", "[cpu][tensor][autocast]") {
    CHECK_FALSE(autocast_dtype().has_value());
    {
        AutocastGuard a(DType::bf16);
        CHECK(autocast_dtype() == DType::bf16);
        {
            AutocastGuard b(DType::f16);
            CHECK(autocast_dtype() == DType::f16);
            {
                AutocastGuard off(std::nullopt);
                CHECK_FALSE(autocast_dtype().has_value());
            }
            CHECK(autocast_dtype() == DType::f16);
        }
        CHECK(autocast_dtype() == DType::bf16);
        std::optional<DType> seen = DType::f32;
        std::thread t([&] { seen = autocast_dtype(); });
        t.join();
        CHECK_FALSE(seen.has_value());  // per thread, like grad mode
    }
    CHECK_FALSE(autocast_dtype().has_value());
    CHECK_THROWS_WITH(AutocastGuard(DType::f64), Catch::Contains("bf16 or f16"));
    CHECK_FALSE(autocast_dtype().has_value());  // a refused guard changes nothing
}

TEST_CASE("autocast: matmul, linear, baddbmm and conv2d run in the autocast dtype", "[cpu][tensor][autocast]") {
    const Tensor a = f32_input({9, 70}, 1), b = f32_input({70, 13}, 2);
    for (DType dt : {DType::bf16, DType::f16}) {
        INFO("autocast dtype " << dtype_name(dt));
        AutocastGuard amp(dt);
        const Tensor c = matmul(a, b);
        CHECK(c.dtype() == dt);
        // f32 accumulation vs the double reference: at most one rounding step of dt apart (bf16: 2^-8 relative,
        // f16: 2^-11), plus an absolute floor for sums that cancel
        const double rtol = dt == DType::bf16 ? 8e-3 : 1e-3;
        CXR_EXPECT_CLOSE(c, reference_matmul(a, b, dt), 2e-3, rtol);
        // linear = x wᵀ + b, the bias cast too (torch's rule)
        const Tensor w = f32_input({13, 70}, 3), bias = f32_input({13}, 4);
        const Tensor y = linear(a, w, bias);
        CHECK(y.dtype() == dt);
        Tensor expected;
        {
            AutocastGuard off(std::nullopt);
            expected = cast(add(cast(reference_matmul(a, transpose(w, 0, 1).contiguous(), dt), DType::f64),
                                cast(cast(bias, dt), DType::f64)),
                            dt);
        }
        CXR_EXPECT_CLOSE(y, expected, 4e-3, 2 * rtol);  // two roundings to dt (product, then sum with the bias)
        // baddbmm
        const Tensor b1 = f32_input({2, 5, 7}, 5), b2 = f32_input({2, 7, 3}, 6), in = f32_input({2, 5, 3}, 7);
        CHECK(baddbmm(in, b1, b2, 0.5, 2.0).dtype() == dt);
        // conv2d: the op on the rounded inputs, computed in f32 outside autocast, rounded to dt
        const Tensor x = f32_input({2, 3, 9, 8}, 8), k = f32_input({4, 3, 3, 3}, 9), kb = f32_input({4}, 10);
        const Tensor yc = conv2d(x, k, kb, {1, 1}, {1, 1});
        CHECK(yc.dtype() == dt);
        Tensor ref;
        {
            AutocastGuard off(std::nullopt);
            ref = cast(conv2d(cast(cast(x, dt), DType::f32), cast(cast(k, dt), DType::f32),
                              cast(cast(kb, dt), DType::f32), {1, 1}, {1, 1}),
                       dt);
        }
        CXR_EXPECT_CLOSE(yc, ref, 0, 0);  // the CPU computes dt as exactly this
        // attention: q, k, v in dt, the output too; the same as the op on the rounded inputs outside autocast
        const Tensor q = f32_input({2, 5, 8}, 11), kk = f32_input({2, 7, 8}, 12), vv = f32_input({2, 7, 8}, 13);
        const Tensor att = scaled_dot_product_attention(q, kk, vv);
        CHECK(att.dtype() == dt);
        {
            AutocastGuard off(std::nullopt);
            CXR_EXPECT_CLOSE(att, scaled_dot_product_attention(cast(q, dt), cast(kk, dt), cast(vv, dt)), 0, 0);
        }
        // f64 is left alone, as in torch
        CHECK(matmul(cast(a, DType::f64), cast(b, DType::f64)).dtype() == DType::f64);
    }
    // outside autocast nothing changes
    CHECK(matmul(a, b).dtype() == DType::f32);
}

TEST_CASE("autocast: softmax, norms and losses compute and return f32", "[cpu][tensor][autocast]") {
    const Tensor x16 = cast(f32_input({4, 6, 5, 5}, 20), DType::bf16);
    const Tensor x32 = cast(x16, DType::f32);  // the same values in f32
    const Tensor rm = zeros({6}), rv = ones({6});
    AutocastGuard amp(DType::bf16);
    const Tensor s = softmax(x16, 1), ls = log_softmax(x16, -1);
    const Tensor gn = group_norm(x16, 3), ln = layer_norm(x16, {5, 5});
    const Tensor bn = batch_norm(x16, rm, rv, Tensor(), Tensor(), false, 0.1, 1e-5);
    const Tensor mse = mse_loss(x16, zeros_like(x32));
    for (const Tensor* t : {&s, &ls, &gn, &ln, &bn, &mse}) CHECK(t->dtype() == DType::f32);
    AutocastGuard off(std::nullopt);
    CXR_EXPECT_CLOSE(s, softmax(x32, 1), 0, 0);
    CXR_EXPECT_CLOSE(ls, log_softmax(x32, -1), 0, 0);
    CXR_EXPECT_CLOSE(gn, group_norm(x32, 3), 0, 0);
    CXR_EXPECT_CLOSE(ln, layer_norm(x32, {5, 5}), 0, 0);
    CXR_EXPECT_CLOSE(bn, batch_norm(x32, rm, rv, Tensor(), Tensor(), false, 0.1, 1e-5), 0, 0);
    CXR_EXPECT_CLOSE(mse, mse_loss(x32, zeros_like(x32)), 0, 0);
    // without autocast a bf16 input keeps its dtype
    CHECK(softmax(x16, 1).dtype() == DType::bf16);
    CHECK(layer_norm(x16, {5, 5}).dtype() == DType::bf16);
}

TEST_CASE("autocast: gradients reach f32 master weights in f32", "[cpu][tensor][autocast]") {
    const Tensor x = f32_input({16, 32}, 30), target = f32_input({16, 8}, 31);
    auto grads = [&](std::optional<DType> dt, bool backward_inside) {
        Tensor w = f32_input({8, 32}, 32).set_requires_grad(true);
        Tensor b = f32_input({8}, 33).set_requires_grad(true);
        std::optional<AutocastGuard> amp;
        amp.emplace(dt);
        Tensor loss = mse_loss(linear(x, w, b), target);
        CHECK(loss.dtype() == DType::f32);
        if (!backward_inside) amp.reset();
        loss.backward();
        return std::make_pair(w.grad(), b.grad());
    };
    const auto [gw32, gb32] = grads(std::nullopt, false);
    const auto [gw, gb] = grads(DType::bf16, false);
    CHECK(gw.dtype() == DType::f32);
    CHECK(gb.dtype() == DType::f32);
    // bf16 forward and backward products: a few bf16 rounding steps from the f32 gradient
    CXR_EXPECT_CLOSE(gw, gw32, 2e-2, 5e-2);
    CXR_EXPECT_CLOSE(gb, gb32, 2e-2, 5e-2);
    CHECK_FALSE(cxr::testing::check_close(gw, gw32, 0, 0).ok);  // bf16 was really used
    // the backward runs with autocast off, so calling it inside the scope changes nothing
    const auto [gw_in, gb_in] = grads(DType::bf16, true);
    CXR_EXPECT_CLOSE(gw_in, gw, 0, 0);
    CXR_EXPECT_CLOSE(gb_in, gb, 0, 0);
}

TEST_CASE("autocast: a ResNet forward in bf16 stays within bf16 precision of f32", "[cpu][tensor][autocast]") {
    Generator gen(7);
    auto model = cxr::vision::make_classifier("resnet18-w4", cxr::vision::HeadConfig::linear(5), &gen);
    model->eval();
    NoGradGuard ng;
    const Tensor x = f32_input({2, 3, 32, 32}, 40);
    const Tensor y32 = model->forward(x);
    Tensor y16;
    {
        AutocastGuard amp(DType::bf16);
        y16 = model->forward(x);
    }
    CHECK(y16.dtype() == DType::bf16);  // the head is a linear layer
    const double scale = max(abs(y32)).item();
    INFO("logit scale " << scale);
    // ~20 layers each rounding activations to 8 bits: a few percent of the logit scale
    CXR_EXPECT_CLOSE(y16, y32, 0.05 * scale, 0.05);
    for (const auto& [name, p] : model->named_parameters()) {
        INFO(name);
        CHECK(p.dtype() == DType::f32);
    }
}

TEST_CASE("autocast: bf16 matmul, conv and a ResNet on CUDA agree with the CPU", "[gpu][cuda][autocast]") {
    CXR_SKIP_WITHOUT_GPU();
    const Device gpu = Device::cuda(0);
    const Tensor a = f32_input({65, 130}, 50), b = f32_input({130, 33}, 51);
    const Tensor x = f32_input({2, 3, 17, 15}, 52), k = f32_input({8, 3, 3, 3}, 53);
    for (DType dt : {DType::bf16, DType::f16}) {
        INFO("autocast dtype " << dtype_name(dt));
        AutocastGuard amp(dt);
        const Tensor cg = matmul(a.to(gpu), b.to(gpu));
        CHECK(cg.dtype() == dt);
        CXR_EXPECT_CLOSE(cg.to(Device::cpu()), reference_matmul(a, b, dt), 4e-3, dt == DType::bf16 ? 8e-3 : 1e-3);
        const Tensor yg = conv2d(x.to(gpu), k.to(gpu), Tensor(), {2, 1}, {1, 1});
        CHECK(yg.dtype() == dt);
        CXR_EXPECT_CLOSE(yg.to(Device::cpu()), conv2d(x, k, Tensor(), {2, 1}, {1, 1}), 4e-3,
                         dt == DType::bf16 ? 8e-3 : 1e-3);
    }
    Generator gen(7);
    auto model = cxr::vision::make_classifier("resnet18-w4", cxr::vision::HeadConfig::linear(5), &gen);
    model->eval();
    NoGradGuard ng;
    const Tensor xin = f32_input({2, 3, 32, 32}, 54);
    AutocastGuard amp(DType::bf16);
    const Tensor yc = model->forward(xin);
    model->to(gpu);
    const Tensor yg = model->forward(xin.to(gpu)).to(Device::cpu());
    const double scale = max(abs(cast(yc, DType::f32))).item();
    CXR_EXPECT_CLOSE(yg, yc, 0.05 * scale, 0.05);  // both bf16, different accumulation orders
}
