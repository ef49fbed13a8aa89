// Tests of the fused Adam/AdamW op (tensor/ops/optim.h adam_step_; CPU kernel tensor/cpu/optim.cpp, CUDA kernel
// tensor/cuda/optim.cu) and of its use by nn::Adam / nn::AdamW (AdamOptions::fused):
//   [cpu]  the fused CPU kernel against the composed path of nn/optim.cpp (one tensor op per line of the formula,
//          the independent reference): BIT-IDENTICAL parameters and state after each of 20 steps, on tensors of
//          odd sizes (0-d, 1, 7, 33, 3×5×7, 1025, empty), f32 and f64, Adam / Adam + L2 / AdamW, maximize,
//          amsgrad, β1 < 0.5 (torch.lerp's second form), parameters that miss a gradient at some steps (their own
//          step count); adam_step_ called directly (an f64 gradient for f32 parameters is cast);
//          the fused path against torch.optim's traces (tests/fixtures/optim.*, the same tolerances as
//          tests/nn/test_optim.cpp); argument errors of adam_step_ and of nn::Adam(fused = true).
//   [gpu]  CUDA fused against CPU fused over 20 steps on 60 tensors (more than one launch of 48) with sizes around
//          the 4096-element chunk boundaries, f32 and f64: EXACT equality is expected, because the kernel's
//          arithmetic is the same source and every device operation is a correctly rounded _rn intrinsic
//          (__fadd_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn, ... never contracted into FMAs). Also the CUDA composed
//          path (separate elementwise kernels) against the CUDA fused path, and a device-mismatch error.
#include "tests/support/testing.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>

#include "nn/optim.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/optim.h"

using cxr::tensor::Device;
using cxr::tensor::DType;
using cxr::tensor::Shape;
using cxr::tensor::Tensor;
using cxr::testing::random_input;
namespace T = cxr::tensor;
namespace nn = cxr::nn;

using cxr::testing::error_of;

namespace {

// Empty when a and b hold the same bits (same shape and dtype), else a description of the first difference.
template <class V>
std::string bit_difference_typed(const Tensor& a, const Tensor& b) {
    std::vector<V> va = a.to_vector<V>(), vb = b.to_vector<V>();
    size_t bad = 0, first = va.size();
    double max_err = 0.0;
    for (size_t i = 0; i < va.size(); ++i)
        if (std::memcmp(&va[i], &vb[i], sizeof(V)) != 0) {
            if (first == va.size()) first = i;
            ++bad;
            max_err = std::fmax(max_err, std::fabs((double)va[i] - (double)vb[i]));
        }
    if (bad == 0) return "";
    std::ostringstream os;
    os.precision(17);
    os << bad << " of " << va.size() << " elements differ (max |diff| " << max_err << "); first at " << first
       << ": " << (double)va[first] << " vs " << (double)vb[first];
    return os.str();
}

std::string bit_difference(const Tensor& a, const Tensor& b) {
    if (a.sizes() != b.sizes()) return "shapes differ: " + T::shape_str(a.sizes()) + " vs " + T::shape_str(b.sizes());
    if (a.dtype() != b.dtype()) return "dtypes differ";
    return a.dtype() == DType::f64 ? bit_difference_typed<double>(a, b) : bit_difference_typed<float>(a, b);
}

#define CHECK_BITS_EQUAL(what, a, b)                   \
    do {                                               \
        const std::string cxr_d_ = bit_difference(a, b); \
        INFO(what << ": " << cxr_d_);                  \
        CHECK(cxr_d_.empty());                         \
    } while (0)

struct FusedCase {
    std::string name;
    nn::AdamOptions options;
    bool decoupled = false;
};

nn::AdamOptions adam_opts(double lr, double wd, bool amsgrad, bool maximize, double beta1 = 0.9,
                          double beta2 = 0.999, double eps = 1e-8) {
    nn::AdamOptions o;
    o.lr = lr;
    o.weight_decay = wd;
    o.amsgrad = amsgrad;
    o.maximize = maximize;
    o.beta1 = beta1;
    o.beta2 = beta2;
    o.eps = eps;
    return o;
}

std::vector<FusedCase> fused_cases() {
    return {
        {"adam", adam_opts(1e-2, 0.0, false, false), false},
        {"adam_l2", adam_opts(1e-2, 0.05, false, false), false},
        {"adam_l2_amsgrad_maximize", adam_opts(3e-3, 0.02, true, true, 0.8, 0.99, 1e-6), false},
        {"adam_low_beta1", adam_opts(1e-2, 0.0, false, false, 0.3, 0.9, 1e-7), false},
        {"adamw", adam_opts(1e-2, 0.1, false, false), true},
        {"adamw_no_decay", adam_opts(2e-2, 0.0, false, false), true},
        {"adamw_amsgrad", adam_opts(2e-2, 0.05, true, false), true},
        {"adamw_maximize_low_beta1", adam_opts(5e-3, 0.01, false, true, 0.2, 0.95), true},
    };
}

std::unique_ptr<nn::Adam> make_adam(const std::vector<Tensor>& params, nn::AdamOptions o, bool decoupled,
                                    std::optional<bool> fused) {
    o.fused = fused;
    return std::make_unique<nn::Adam>(params, o, decoupled);
}

const std::vector<Shape> kShapes = {{}, {1}, {7}, {33}, {3, 5, 7}, {1025}, {0}};

// Parameters of `shapes` (values in [-1, 1), seed base) as leaves of dtype dt on device dev.
std::vector<Tensor> make_params(const std::vector<Shape>& shapes, DType dt, Device dev, uint64_t base) {
    std::vector<Tensor> ps;
    for (size_t i = 0; i < shapes.size(); ++i)
        ps.push_back(random_input(shapes[i], base + i, -1.0, 1.0).to(dt).to(dev).clone().set_requires_grad(true));
    return ps;
}

// The gradient of parameter i at step k (deterministic; larger than the parameters so that the updates matter).
Tensor grad_at(const Shape& shape, size_t i, int k, DType dt, Device dev) {
    return random_input(shape, 10007 * (uint64_t)k + 31 * (uint64_t)i + 5, -3.0, 3.0).to(dt).to(dev);
}

// Parameter i gets no gradient at step k for a few (i, k): it then keeps its own, smaller step count.
bool skips(size_t i, int k) { return (i == 1 && (k == 2 || k == 3)) || (i == 4 && k == 7); }

void set_grads(std::vector<Tensor>& params, const std::vector<Shape>& shapes, int k, Device dev,
               bool with_skips) {
    for (size_t i = 0; i < params.size(); ++i) {
        if (with_skips && skips(i, k))
            params[i].set_grad(Tensor());
        else
            params[i].set_grad(grad_at(shapes[i], i, k, params[i].dtype(), dev));
    }
}

}  // namespace

TEST_CASE("fused Adam/AdamW (CPU kernel) is bit-identical to the composed path over 20 steps",
          "[cpu][optim][fused]") {
    for (const FusedCase& fc : fused_cases()) {
        for (DType dt : {DType::f32, DType::f64}) {
            std::vector<Tensor> ref = make_params(kShapes, dt, Device::cpu(), 100);
            std::vector<Tensor> fus = make_params(kShapes, dt, Device::cpu(), 100);
            auto composed = make_adam(ref, fc.options, fc.decoupled, false);
            auto fused = make_adam(fus, fc.options, fc.decoupled, true);
            for (int k = 1; k <= 20; ++k) {
                set_grads(ref, kShapes, k, Device::cpu(), true);
                set_grads(fus, kShapes, k, Device::cpu(), true);
                composed->step();
                fused->step();
                for (size_t i = 0; i < ref.size(); ++i) {
                    std::ostringstream what;
                    what << fc.name << " " << T::dtype_name(dt) << ": parameter " << i << " "
                         << T::shape_str(kShapes[i]) << " after step " << k;
                    CHECK_BITS_EQUAL(what.str(), fus[i], ref[i]);
                    CHECK(fused->step_count(0, i) == composed->step_count(0, i));
                }
            }
            // The whole optimizer state (exp_avg, exp_avg_sq, max_exp_avg_sq, step) is identical too.
            auto sa = fused->state_dict(), sb = composed->state_dict();
            REQUIRE(sa.size() == sb.size());
            for (const auto& kv : sb) {
                REQUIRE(sa.count(kv.first) == 1);
                if (kv.second.dtype() == DType::i64) {
                    CHECK(sa[kv.first].item() == kv.second.item());
                    continue;
                }
                CHECK_BITS_EQUAL(fc.name + " " + T::dtype_name(dt) + ": state " + kv.first, sa[kv.first],
                                 kv.second);
            }
            CHECK(fused->step_count(0, 1) == 18);  // parameter 1 missed two steps
        }
    }
}

TEST_CASE("adam_step_ called directly equals nn::AdamW's composed path, with a per-call step count",
          "[cpu][optim][fused]") {
    // Two tensors updated by the op itself (state owned by the test) vs nn::AdamW(fused = false), 20 steps.
    const std::vector<Shape> shapes = {{5, 3}, {17}};
    std::vector<Tensor> ref = make_params(shapes, DType::f32, Device::cpu(), 7);
    std::vector<Tensor> p = make_params(shapes, DType::f32, Device::cpu(), 7);
    std::vector<Tensor> m, v;
    for (const Tensor& t : p) {
        m.push_back(T::zeros_like(t));
        v.push_back(T::zeros_like(t));
    }
    nn::AdamOptions o = adam_opts(1e-2, 0.1, false, false);
    auto composed = make_adam(ref, o, true, false);
    for (int k = 1; k <= 20; ++k) {
        set_grads(ref, shapes, k, Device::cpu(), false);
        std::vector<Tensor> g;
        // Tensor 1's gradient comes in f64 and is cast by the op, as nn::Adam casts a gradient of another dtype.
        for (size_t i = 0; i < p.size(); ++i)
            g.push_back(grad_at(shapes[i], i, k, i == 1 ? DType::f64 : DType::f32, Device::cpu()));
        composed->step();
        T::AdamStepParams sp;
        sp.lr = o.lr;
        sp.beta1 = o.beta1;
        sp.beta2 = o.beta2;
        sp.eps = o.eps;
        sp.weight_decay = o.weight_decay;
        sp.decoupled_weight_decay = true;
        sp.step = k;
        T::adam_step_(p, g, m, v, {}, sp);
        for (size_t i = 0; i < p.size(); ++i) CHECK_BITS_EQUAL("step " << k << " tensor " << i, p[i], ref[i]);
    }
    auto sd = composed->state_dict();
    CHECK_BITS_EQUAL("exp_avg 0", m[0], sd["state.0.0.exp_avg"]);
    CHECK_BITS_EQUAL("exp_avg_sq 1", v[1], sd["state.0.1.exp_avg_sq"]);
}

TEST_CASE("fused Adam/AdamW match torch.optim's traces (tests/fixtures/optim)", "[cpu][optim][fused]") {
    cxr::testing::Fixtures fx("optim");
    struct Case {
        const char* name;
        nn::AdamOptions o;
        bool decoupled;
    };
    // Single-group configs of tests/fixtures/tools/make_optim_fixtures.py (see tests/nn/test_optim.cpp).
    const std::vector<Case> cases = {
        {"adam", adam_opts(1e-2, 0.0, false, false), false},
        {"adam_wd_amsgrad", adam_opts(1e-2, 0.05, true, false, 0.8, 0.99, 1e-6), false},
        {"adamw", adam_opts(1e-2, 0.1, false, false), true},
        {"adamw_amsgrad", adam_opts(2e-2, 0.05, true, false), true},
    };
    auto row = [](const Tensor& stacked, int64_t k) { return stacked.narrow(0, k, 1).squeeze(0).contiguous(); };
    for (const Case& c : cases) {
        const std::string name = c.name;
        for (DType dt : {DType::f64, DType::f32}) {
            // Same limits as tests/nn/test_optim.cpp (torch's CPU kernels fuse some multiply-adds: 1–2 f32 ulp).
            const double atol = dt == DType::f64 ? 1e-14 : 5e-7, rtol = dt == DType::f64 ? 1e-12 : 1e-6;
            const std::string tag = dt == DType::f64 ? "f64" : "f32";
            std::vector<Tensor> params;
            for (int i = 0; fx.has(name + ".init." + std::to_string(i)); ++i)
                params.push_back(fx.get(name + ".init." + std::to_string(i)).to(dt).clone().set_requires_grad(true));
            REQUIRE(params.size() == 3);
            auto opt = make_adam(params, c.o, c.decoupled, true);
            const int steps = (int)fx.get(name + ".has_grad").size(0);
            for (int k = 1; k <= steps; ++k) {
                Tensor has = fx.get(name + ".has_grad");  // [steps, n]
                for (size_t i = 0; i < params.size(); ++i) {
                    if (row(has, k - 1).to_vector<double>()[i] != 0.0)
                        params[i].set_grad(row(fx.get(name + ".grad." + std::to_string(i)), k - 1).to(dt).clone());
                    else
                        params[i].set_grad(Tensor());
                }
                opt->step();
                for (size_t i = 0; i < params.size(); ++i) {
                    INFO(name << " fused (" << tag << "): parameter " << i << " after step " << k);
                    CXR_EXPECT_CLOSE(params[i], row(fx.get(name + "." + tag + ".trace." + std::to_string(i)), k - 1),
                                     atol, rtol);
                }
            }
        }
    }
}

TEST_CASE("adam_step_ argument errors name the problem", "[cpu][optim][fused]") {
    auto f32 = [](const Shape& s) { return T::zeros(s, T::Options(DType::f32, Device::cpu())); };
    std::vector<Tensor> p = {f32({3}), f32({2, 2})};
    std::vector<Tensor> g = {f32({3}), f32({2, 2})};
    std::vector<Tensor> m = {f32({3}), f32({2, 2})};
    std::vector<Tensor> v = {f32({3}), f32({2, 2})};
    T::AdamStepParams sp;

    CHECK(error_of([&] { T::adam_step_(p, g, m, v, {}, sp); }).empty());
    CHECK(error_of([&] { T::adam_step_(p, {g[0]}, m, v, {}, sp); }).find("differ in length") != std::string::npos);
    CHECK(error_of([&] { T::adam_step_(p, g, m, {v[0]}, {}, sp); }).find("differ in length") != std::string::npos);
    CHECK(error_of([&] { T::adam_step_(p, g, {m[1], m[0]}, v, {}, sp); }).find("exp_avgs[0] has shape") !=
          std::string::npos);
    CHECK(error_of([&] { T::adam_step_(p, {g[0], f32({4})}, m, v, {}, sp); }).find("grads[1] has shape") !=
          std::string::npos);
    {
        std::vector<Tensor> v64 = {v[0], T::zeros({2, 2}, T::Options(DType::f64, Device::cpu()))};
        CHECK(error_of([&] { T::adam_step_(p, g, m, v64, {}, sp); }).find("exp_avg_sqs[1] is f64") !=
              std::string::npos);
    }
    {
        std::vector<Tensor> ph = {T::zeros({3}, T::Options(DType::f16, Device::cpu()))};
        std::vector<Tensor> one = {f32({3})};
        CHECK(error_of([&] { T::adam_step_(ph, one, one, one, {}, sp); }).find("supports f32 and f64") !=
              std::string::npos);
    }
    {
        std::vector<Tensor> mixed = {p[0], T::zeros({2, 2}, T::Options(DType::f64, Device::cpu()))};
        CHECK(error_of([&] { T::adam_step_(mixed, g, m, v, {}, sp); }).find("one dtype per call") != std::string::npos);
    }
    {
        Tensor big = f32({4, 3});
        std::vector<Tensor> pt = {big.transpose(0, 1)};  // [3, 4], not contiguous
        std::vector<Tensor> st = {f32({3, 4})};
        CHECK(error_of([&] { T::adam_step_(pt, st, st, st, {}, sp); }).find("not contiguous") != std::string::npos);
    }
    T::AdamStepParams ams = sp;
    ams.amsgrad = true;
    CHECK(error_of([&] { T::adam_step_(p, g, m, v, {}, ams); }).find("max_exp_avg_sqs") != std::string::npos);
    CHECK(error_of([&] { T::adam_step_(p, g, m, v, m, sp); }).find("only with amsgrad") != std::string::npos);
    T::AdamStepParams bad = sp;
    bad.step = 0;
    CHECK(error_of([&] { T::adam_step_(p, g, m, v, {}, bad); }).find("step count") != std::string::npos);
    bad = sp;
    bad.beta1 = 1.0;
    CHECK(error_of([&] { T::adam_step_(p, g, m, v, {}, bad); }).find("beta1") != std::string::npos);
    // Empty lists are a no-op.
    CHECK(error_of([&] { T::adam_step_({}, {}, {}, {}, {}, sp); }).empty());

    // nn::Adam with fused = true refuses parameters the fused kernel cannot update in place.
    Tensor half = T::zeros({3}, T::Options(DType::f16, Device::cpu())).set_requires_grad(true);
    nn::AdamOptions o;
    o.fused = true;
    CHECK(error_of([&] { nn::Adam opt({half}, o); }).find("fused = true needs f32/f64") != std::string::npos);
    o.fused.reset();
    CHECK(error_of([&] { nn::Adam opt({half}, o); }).empty());  // unset: the composed path on the CPU
}

// ---------------------------------------------------------------- [gpu]

namespace {

// Sizes around the CUDA kernel's 4096-element chunks, plus empty and 0-d tensors; 60 tensors = two launches.
std::vector<Shape> gpu_shapes() {
    const std::vector<Shape> base = {{}, {0}, {1}, {7}, {255}, {257}, {4095}, {4096}, {4097}, {2, 4096},
                                     {3, 4099}, {33, 5, 7}, {100003}, {1025}, {64, 64}};
    std::vector<Shape> s;
    for (int r = 0; r < 4; ++r) s.insert(s.end(), base.begin(), base.end());
    return s;
}

}  // namespace

TEST_CASE("cuda fused Adam/AdamW equal the CPU fused kernel bit for bit over 20 steps", "[gpu][cuda][optim][fused]") {
    CXR_SKIP_WITHOUT_GPU();
    const Device gpu = Device::cuda(0);
    const std::vector<Shape> shapes = gpu_shapes();
    for (const FusedCase& fc : fused_cases()) {
        for (DType dt : {DType::f32, DType::f64}) {
            std::vector<Tensor> host = make_params(shapes, dt, Device::cpu(), 300);
            std::vector<Tensor> dev = make_params(shapes, dt, gpu, 300);
            auto on_cpu = make_adam(host, fc.options, fc.decoupled, true);
            auto on_gpu = make_adam(dev, fc.options, fc.decoupled, std::nullopt);  // default: fused on CUDA
            for (int k = 1; k <= 20; ++k) {
                set_grads(host, shapes, k, Device::cpu(), true);
                set_grads(dev, shapes, k, gpu, true);
                on_cpu->step();
                on_gpu->step();
            }
            for (size_t i = 0; i < host.size(); ++i) {
                CHECK(dev[i].is_cuda());
                std::ostringstream what;
                what << fc.name << " " << T::dtype_name(dt) << ": parameter " << i << " " << T::shape_str(shapes[i])
                     << " after 20 steps (CUDA vs CPU)";
                CHECK_BITS_EQUAL(what.str(), dev[i].to(Device::cpu()), host[i]);
            }
            auto sa = on_gpu->state_dict(), sb = on_cpu->state_dict();
            REQUIRE(sa.size() == sb.size());
            for (const auto& kv : sb) {
                if (kv.second.dtype() == DType::i64) continue;
                CHECK_BITS_EQUAL(fc.name + " " + T::dtype_name(dt) + ": state " + kv.first + " (CUDA vs CPU)",
                                 sa[kv.first].to(Device::cpu()), kv.second);
            }
        }
    }
}

TEST_CASE("cuda composed Adam/AdamW (elementwise kernels) equal the cuda fused kernel", "[gpu][cuda][optim][fused]") {
    CXR_SKIP_WITHOUT_GPU();
    // Both paths round every operation once (IEEE add/mul/div/sqrt on both), so equality is exact.
    const Device gpu = Device::cuda(0);
    for (const FusedCase& fc : fused_cases()) {
        std::vector<Tensor> a = make_params(kShapes, DType::f32, gpu, 500);
        std::vector<Tensor> b = make_params(kShapes, DType::f32, gpu, 500);
        auto composed = make_adam(a, fc.options, fc.decoupled, false);
        auto fused = make_adam(b, fc.options, fc.decoupled, true);
        for (int k = 1; k <= 20; ++k) {
            set_grads(a, kShapes, k, gpu, true);
            set_grads(b, kShapes, k, gpu, true);
            composed->step();
            fused->step();
        }
        for (size_t i = 0; i < a.size(); ++i)
            CHECK_BITS_EQUAL(fc.name + " f32: parameter " + std::to_string(i) + " (CUDA composed vs CUDA fused)",
                             b[i].to(Device::cpu()), a[i].to(Device::cpu()));
    }
}

TEST_CASE("cuda adam_step_ refuses tensors on different devices", "[gpu][cuda][optim][fused]") {
    CXR_SKIP_WITHOUT_GPU();
    const Device gpu = Device::cuda(0);
    std::vector<Tensor> p = {T::zeros({3}, T::Options(DType::f32, gpu))};
    std::vector<Tensor> g = {T::zeros({3}, T::Options(DType::f32, gpu))};
    std::vector<Tensor> on_cpu = {T::zeros({3}, T::Options(DType::f32, Device::cpu()))};
    std::vector<Tensor> m = {T::zeros({3}, T::Options(DType::f32, gpu))};
    T::AdamStepParams sp;
    CHECK(error_of([&] { T::adam_step_(p, g, on_cpu, m, {}, sp); }).find("exp_avgs[0] is on cpu") !=
          std::string::npos);
    CHECK(error_of([&] { T::adam_step_(p, on_cpu, m, m, {}, sp); }).find("grads[0] is on cpu") != std::string::npos);
    std::vector<Tensor> mixed = {p[0], on_cpu[0]};
    std::vector<Tensor> g2 = {g[0], on_cpu[0]};
    CHECK(error_of([&] { T::adam_step_(mixed, g2, g2, g2, {}, sp); }).find("one device per call") !=
          std::string::npos);
}
