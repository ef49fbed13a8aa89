// [gpu] conformance tests of the CUDA reduce, softmax and norm kernels (tensor/cuda/{reduce,softmax,norm}.cu):
// every result is compared with the CPU reference kernels (the oracle) on the same inputs, for f32, f64, f16 and
// bf16 where the op accepts them, at odd sizes (1, 7, 33, 1023, 1024, 1025, 4097, ...) chosen to hit each launch
// layout (warp per row, block per row, rows split into chunks, one thread per strided row), on non-contiguous
// inputs, and backward through autograd (input, weight and bias gradients). A few values are hand-derived
// (Σ 1..n = n(n+1)/2, softmax([0, ln 3]) = [1/4, 3/4], first index of tied maxima / of the first NaN). Every
// failure names the op, shape and dtype; CXR_EXPECT_CLOSE adds the max error and the first bad index.
// Tolerances: f64 near round-off (the GPU sums in a different order); f32 at the f32 round-off of an n-term
// sum (the GPU accumulates f32 in f32, the CPU in double); f16/bf16 one or two units in the last place.
// Without a CUDA device every test here is skipped visibly (CXR_SKIP_WITHOUT_GPU).
#include "tests/support/testing.h"

#include <cmath>
#include <sstream>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/norm.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::random_input;

namespace {

const Device kGpu = Device::cuda(0);

Tensor gpu(const Tensor& t) { return t.to(kGpu); }
Tensor host(const Tensor& t) { return t.to(Device::cpu()); }

std::string label(const std::string& op, const Shape& shape, DType dt, const std::string& extra = "") {
    std::ostringstream os;
    os << op << " shape " << shape_str(shape) << " dtype " << dtype_name(dt) << (extra.empty() ? "" : " ") << extra;
    return os.str();
}

// Compares a CUDA result with the CPU reference, naming the case on failure.
#define GPU_EXPECT_CLOSE(what, actual, expected, atol, rtol) \
    do {                                                     \
        INFO(what);                                          \
        Tensor cxr_a_ = (actual);                            \
        CHECK(cxr_a_.device().is_cuda());                    \
        CXR_EXPECT_CLOSE(host(cxr_a_), (expected), (atol), (rtol)); \
    } while (0)

const std::vector<DType> kFloatTypes = {DType::f32, DType::f64, DType::f16, DType::bf16};

// Tolerance of an n-term sum: round-off of the accumulation (n·ε of the accumulator over values in [-1, 1]) plus
// one or two units in the last place of the output dtype.
double sum_atol(DType dt, int64_t n) {
    const double eps_acc = dt == DType::f64 ? 2e-16 : 1.2e-7;
    return (double)n * eps_acc + (dt == DType::f64 ? 1e-13 : cxr::testing::default_atol(dt));
}
double sum_rtol(DType dt) {
    switch (dt) {
        case DType::f64: return 1e-12;
        case DType::f32: return 1e-5;
        case DType::f16: return 2e-3;  // two f16 ulps (2^-10 relative each)
        default: return 1.6e-2;        // bf16: two ulps (2^-7)
    }
}
// Elementwise outputs of softmax / norms: a few ulps of the dtype.
double val_atol(DType dt) { return dt == DType::f64 ? 1e-12 : dt == DType::f32 ? 2e-6 : dt == DType::f16 ? 2e-3 : 2e-2; }
double val_rtol(DType dt) { return dt == DType::f64 ? 1e-10 : dt == DType::f32 ? 2e-5 : dt == DType::f16 ? 2e-3 : 2e-2; }

}  // namespace

// ============================================================================================= reduce

TEST_CASE("cuda reduce: sum, amax, amin, argmax, argmin match the CPU for every float dtype and odd sizes",
          "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    // n ≤ 1024: warp per row; 1025, 4097, 1500: block per row; 100003 and 300001 with few rows: split rows.
    const std::vector<Shape> shapes = {{1, 1},   {3, 7},      {5, 33},     {2, 1023},   {4, 1024},
                                       {3, 1025}, {2, 4097}, {300, 1500}, {1, 100003}, {3, 300001}};
    uint64_t seed = 1000;
    for (DType dt : kFloatTypes) {
        for (const Shape& s : shapes) {
            Tensor x = random_input(s, ++seed, -1, 1, dt);
            Tensor xg = gpu(x);
            const int64_t n = s[1];
            GPU_EXPECT_CLOSE(label("sum dim 1", s, dt), sum(xg, {1}), sum(x, {1}), sum_atol(dt, n), sum_rtol(dt));
            // dim 0 goes through the permute + contiguous path of the op layer
            GPU_EXPECT_CLOSE(label("sum dim 0", s, dt), sum(xg, {0}), sum(x, {0}), sum_atol(dt, s[0]), sum_rtol(dt));
            GPU_EXPECT_CLOSE(label("amax dim 1", s, dt), amax(xg, {1}), amax(x, {1}), 0, 0);
            GPU_EXPECT_CLOSE(label("amin dim 0", s, dt), amin(xg, {0}), amin(x, {0}), 0, 0);
            GPU_EXPECT_CLOSE(label("argmax dim 1", s, dt), argmax(xg, 1), argmax(x, 1), 0, 0);
            GPU_EXPECT_CLOSE(label("argmin dim 1", s, dt), argmin(xg, 1), argmin(x, 1), 0, 0);
            GPU_EXPECT_CLOSE(label("argmax dim 0", s, dt), argmax(xg, 0), argmax(x, 0), 0, 0);
        }
    }
}

TEST_CASE("cuda reduce: full reductions, keepdim and non-contiguous inputs match the CPU", "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::f32, DType::f64}) {
        Tensor x = random_input({7, 33, 65}, 77, -1, 1, dt);
        Tensor xg = gpu(x);
        const Shape s = x.sizes();
        GPU_EXPECT_CLOSE(label("sum all", s, dt), sum(xg), sum(x), sum_atol(dt, x.numel()), sum_rtol(dt));
        GPU_EXPECT_CLOSE(label("sum dims {0,2} keepdim", s, dt), sum(xg, {0, 2}, true), sum(x, {0, 2}, true),
                         sum_atol(dt, 7 * 65), sum_rtol(dt));
        GPU_EXPECT_CLOSE(label("sum transposed", s, dt), sum(xg.transpose(0, 2), {1}), sum(x.transpose(0, 2), {1}),
                         sum_atol(dt, 33), sum_rtol(dt));
        GPU_EXPECT_CLOSE(label("amax narrowed", s, dt), amax(xg.narrow(1, 3, 17), {1}), amax(x.narrow(1, 3, 17), {1}),
                         0, 0);
        GPU_EXPECT_CLOSE(label("mean", s, dt), mean(xg, {1}), mean(x, {1}), sum_atol(dt, 33), sum_rtol(dt));
        GPU_EXPECT_CLOSE(label("var", s, dt), var(xg, {2}), var(x, {2}), 10 * sum_atol(dt, 65), 10 * sum_rtol(dt));
        GPU_EXPECT_CLOSE(label("std", s, dt), cxr::tensor::std(xg, {0, 1}), cxr::tensor::std(x, {0, 1}),
                         10 * sum_atol(dt, 231), 10 * sum_rtol(dt));
        GPU_EXPECT_CLOSE(label("logsumexp", s, dt), logsumexp(xg, {2}), logsumexp(x, {2}), 10 * sum_atol(dt, 65),
                         10 * sum_rtol(dt));
    }
    // 0-d input
    Tensor z = full({}, 2.5, DType::f32);
    GPU_EXPECT_CLOSE("sum of a 0-d tensor", sum(gpu(z)), z, 0, 0);
}

TEST_CASE("cuda reduce: integer and bool inputs (sum in i64, exact extremes)", "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::i32, DType::i64, DType::u8, DType::boolean}) {
        for (const Shape& s : std::vector<Shape>{{3, 7}, {2, 1025}, {1, 70001}}) {
            // values 0..9 (0/1 for bool), many ties
            Tensor x = cast(cast(random_input(s, 5 + s[1], 0, dt == DType::boolean ? 2 : 10), DType::i32), dt);
            Tensor xg = gpu(x);
            Tensor sg = sum(xg, {1});
            CHECK(sg.dtype() == DType::i64);
            GPU_EXPECT_CLOSE(label("sum", s, dt), sg, sum(x, {1}), 0, 0);
            GPU_EXPECT_CLOSE(label("amax", s, dt), amax(xg, {1}), amax(x, {1}), 0, 0);
            GPU_EXPECT_CLOSE(label("amin", s, dt), amin(xg, {1}), amin(x, {1}), 0, 0);
            GPU_EXPECT_CLOSE(label("argmax (ties: first index)", s, dt), argmax(xg, 1), argmax(x, 1), 0, 0);
            GPU_EXPECT_CLOSE(label("argmin (ties: first index)", s, dt), argmin(xg, 1), argmin(x, 1), 0, 0);
        }
    }
}

TEST_CASE("cuda reduce: hand-derived values (Σ 1..n, tied maxima, NaN, ±inf)", "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    // Σ 1..n = n(n+1)/2, exact in f64 and i64 (every partial sum is an integer < 2^53); n hits the split path.
    const int64_t n = (1 << 20) + 3;
    Tensor a = arange(1.0, (double)n + 1.0, 1.0, DType::f64).reshape({1, n});
    const double expected = (double)n * (double)(n + 1) / 2.0;
    CHECK(host(sum(gpu(a))).item() == expected);
    CHECK((int64_t)host(sum(gpu(cast(a, DType::i64)))).item() == (int64_t)expected);

    // ties: the first index of the extreme; NaN counts as the extreme and the first NaN wins
    std::vector<double> v(5000, 0.0);
    v[1234] = 7.0;
    v[4321] = 7.0;
    v[2000] = -3.0;
    v[4999] = -3.0;
    for (DType dt : kFloatTypes) {
        Tensor t = gpu(cast(from_vector(v, {5000}), dt));
        CHECK(host(argmax(t, 0)).item() == 1234);
        CHECK(host(argmin(t, 0)).item() == 2000);
        CHECK(host(amax(t)).item() == 7.0);
        std::vector<double> w = v;
        w[3000] = NAN;
        w[777] = NAN;
        Tensor tn = gpu(cast(from_vector(w, {5000}), dt));
        INFO(label("NaN handling", {5000}, dt));
        CHECK(host(argmax(tn, 0)).item() == 777);
        CHECK(host(argmin(tn, 0)).item() == 777);
        CHECK(std::isnan(host(amax(tn)).item()));
        CHECK(std::isnan(host(sum(tn)).item()));
    }
    Tensor inf = gpu(from_vector(std::vector<double>{1.0, -INFINITY, 3.0, INFINITY}, {4}));
    CHECK(host(amax(inf)).item() == INFINITY);
    CHECK(host(amin(inf)).item() == -INFINITY);
    CHECK(host(argmax(inf, 0)).item() == 3);
}

TEST_CASE("cuda reduce: sums are bit-identical from run to run (no atomics)", "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor xg = gpu(random_input({1, 1 << 22}, 9, -1, 1, DType::f32));
    Tensor first = host(sum(xg));
    for (int i = 0; i < 3; ++i) GPU_EXPECT_CLOSE("repeat sum of 2^22 f32", sum(xg), first, 0, 0);
    Tensor rows = gpu(random_input({37, 5000}, 10, -1, 1, DType::f32));
    Tensor r1 = host(sum(rows, {1}));
    GPU_EXPECT_CLOSE("repeat row sums", sum(rows, {1}), r1, 0, 0);
}

TEST_CASE("cuda reduce: bad input fails loudly", "[gpu][cuda][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor e = gpu(zeros({3, 0}, DType::f32));
    CHECK_THROWS_WITH(amax(e, {1}), Catch::Contains("empty"));
    CHECK_THROWS_WITH(argmin(e, 1), Catch::Contains("empty"));
    CHECK(host(sum(e, {1})).sizes() == Shape{3});  // an empty sum is 0
    CHECK(host(sum(e, {1})).to(DType::f64).data<double>()[0] == 0.0);
    // the kernel itself refuses a non-contiguous block
    Tensor x = gpu(random_input({4, 6}, 3, -1, 1, DType::f32)).transpose(0, 1);
    Tensor out = gpu(zeros({6}, DType::f32));
    CHECK_THROWS_WITH(get_kernel<ReduceKernel>("reduce", kGpu)(ReduceOp::sum, x, out), Catch::Contains("contiguous"));
}

// ============================================================================================= softmax

namespace {

struct SoftmaxCase {
    Shape shape;
    int64_t dim;
    bool transposed;  // input is x.transpose(0, last) of a tensor of the reversed shape (non-contiguous)
};

// inner = 1: warp rows (7, 33, 1023) and block rows (1025, 4097); inner > 1 with few rows: strided team rows;
// inner > 1 with ≥ 1024 rows: one thread per row.
const std::vector<SoftmaxCase> kSoftmaxCases = {
    {{7}, 0, false},         {{3, 33}, 1, false},     {{5, 1023}, -1, false}, {{2, 4097}, 1, false},
    {{4, 1025, 3}, 1, false}, {{8, 300, 200}, 1, false}, {{2000, 3}, 0, false}, {{33, 7}, 0, false},
    {{1, 1}, 1, false},      {{6, 5, 4}, 1, true},    {{3, 1025}, 1, true},
};

// The CPU input and the same values as a CUDA tensor; for a transposed case both are non-contiguous views.
std::pair<Tensor, Tensor> softmax_input(const SoftmaxCase& c, uint64_t seed, DType dt) {
    Shape s = c.shape;
    if (!c.transposed) {
        Tensor x = random_input(s, seed, -3, 3, dt);
        return {x, gpu(x)};
    }
    std::swap(s.front(), s.back());
    Tensor base = random_input(s, seed, -3, 3, dt);
    const int64_t last = (int64_t)s.size() - 1;
    return {base.transpose(0, last), gpu(base).transpose(0, last)};
}

}  // namespace

TEST_CASE("cuda softmax: forward and backward match the CPU (every dtype, odd sizes, strided dims)",
          "[gpu][cuda][softmax]") {
    CXR_SKIP_WITHOUT_GPU();
    uint64_t seed = 2000;
    for (DType dt : kFloatTypes) {
        for (const SoftmaxCase& c : kSoftmaxCases) {
            for (bool log : {false, true}) {
                auto f = log ? log_softmax : softmax;
                const std::string name = label(log ? "log_softmax" : "softmax", c.shape, dt,
                                               "dim " + std::to_string(c.dim) + (c.transposed ? " transposed" : ""));
                auto [x, xg_in] = softmax_input(c, ++seed, dt);  // xg_in: a non-contiguous CUDA view if transposed
                Tensor w = random_input(c.shape, ++seed, -1, 1, dt);
                Tensor xc = x.clone().set_requires_grad();
                Tensor xg = gpu(x.contiguous()).set_requires_grad();
                Tensor yc = f(xc, c.dim);
                Tensor yg = f(xg, c.dim);
                GPU_EXPECT_CLOSE(name + " forward", yg, yc, val_atol(dt), val_rtol(dt));
                GPU_EXPECT_CLOSE(name + " forward (input view)", f(xg_in, c.dim), yc, val_atol(dt), val_rtol(dt));
                sum(mul(yc, w)).backward();
                sum(mul(yg, gpu(w))).backward();
                REQUIRE(xg.grad().defined());
                GPU_EXPECT_CLOSE(name + " backward dx", xg.grad(), xc.grad(), 2 * val_atol(dt), 2 * val_rtol(dt));
            }
        }
    }
}

TEST_CASE("cuda softmax: hand-derived values and special rows", "[gpu][cuda][softmax]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::f32, DType::f64}) {
        // softmax([0, ln 3]) = [1/4, 3/4]; log_softmax of four equal values = −ln 4
        Tensor a = gpu(cast(from_vector(std::vector<double>{0.0, std::log(3.0)}, {2}), dt));
        CXR_EXPECT_CLOSE(host(softmax(a, 0)), from_vector(std::vector<double>{0.25, 0.75}, {2}), val_atol(dt),
                         val_rtol(dt));
        Tensor b = gpu(full({4}, 5.0, dt));
        CXR_EXPECT_CLOSE(host(log_softmax(b, 0)), full({4}, -std::log(4.0), DType::f64), val_atol(dt), val_rtol(dt));
        // large inputs do not overflow; an all −inf row is NaN; a NaN poisons its row only (as the CPU and torch)
        std::vector<double> v = {1000.0, 999.0, -1000.0, -INFINITY, -INFINITY, -INFINITY, 0.0, NAN, 1.0};
        Tensor x = cast(from_vector(v, {3, 3}), dt);
        for (bool log : {false, true}) {
            auto f = log ? log_softmax : softmax;
            Tensor yg = host(f(gpu(x), 1));
            GPU_EXPECT_CLOSE(label(log ? "log_softmax special" : "softmax special", {3, 3}, dt), f(gpu(x), 1),
                             f(x, 1), val_atol(dt), val_rtol(dt));
            CHECK(std::isfinite(yg.to(DType::f64).data<double>()[0]));
            CHECK(std::isnan(yg.to(DType::f64).data<double>()[3]));
            CHECK(std::isnan(yg.to(DType::f64).data<double>()[6]));
        }
    }
}

TEST_CASE("cuda softmax: bad input fails loudly", "[gpu][cuda][softmax]") {
    CXR_SKIP_WITHOUT_GPU();
    CHECK_THROWS_WITH(softmax(gpu(zeros({3}, DType::i32)), 0), Catch::Contains("floating"));
    CHECK_THROWS(softmax(gpu(zeros({3}, DType::f32)), 2));
    Tensor y = gpu(zeros({2, 3}, DType::f32));
    Tensor g64 = gpu(zeros({2, 3}, DType::f64));
    Tensor dx = gpu(zeros({2, 3}, DType::f32));
    CHECK_THROWS_WITH(get_kernel<SoftmaxBackwardKernel>("softmax_backward", kGpu)(y, g64, dx, 1, false),
                      Catch::Contains("differs"));
    Tensor yt = gpu(zeros({3, 2}, DType::f32)).transpose(0, 1);
    CHECK_THROWS_WITH(get_kernel<SoftmaxKernel>("softmax", kGpu)(yt, dx, 1, false), Catch::Contains("contiguous"));
}

// ============================================================================================= norm

TEST_CASE("cuda group_norm and layer_norm: forward, mean/rstd and gradients match the CPU", "[gpu][cuda][norm]") {
    CXR_SKIP_WITHOUT_GPU();
    struct Case {
        Shape shape;
        int64_t groups;
        bool affine;
    };
    // K·S ≤ 1024: warp per group; {3, 8, 33, 33}: block per group and block per channel for dweight/dbias;
    // {5, 3, 1}: one element per group (var 0); {2, 32, 4, 4}: one channel per group.
    const std::vector<Case> cases = {{{2, 6, 5}, 3, true},      {{3, 8, 33, 33}, 2, true}, {{1, 4, 7}, 1, false},
                                     {{2, 32, 4, 4}, 32, true}, {{5, 3, 1}, 3, true},      {{4, 6, 1023}, 3, false}};
    uint64_t seed = 3000;
    for (DType dt : {DType::f32, DType::f64, DType::f16}) {
        for (const Case& c : cases) {
            const std::string name = label("group_norm", c.shape, dt, "groups " + std::to_string(c.groups));
            const int64_t C = c.shape[1];
            Tensor x = random_input(c.shape, ++seed, -2, 3, dt);
            Tensor r = random_input(c.shape, ++seed, -1, 1, dt);
            Tensor w = c.affine ? random_input({C}, ++seed, 0.5, 1.5, dt) : Tensor();
            Tensor b = c.affine ? random_input({C}, ++seed, -0.5, 0.5, dt) : Tensor();
            Tensor xc = x.clone().set_requires_grad(), xg = gpu(x).set_requires_grad();
            Tensor wc, bc, wg, bg;
            if (c.affine) {
                wc = w.clone().set_requires_grad(), bc = b.clone().set_requires_grad();
                wg = gpu(w).set_requires_grad(), bg = gpu(b).set_requires_grad();
            }
            Tensor yc = group_norm(xc, c.groups, wc, bc);
            Tensor yg = group_norm(xg, c.groups, wg, bg);
            GPU_EXPECT_CLOSE(name + " forward", yg, yc, 4 * val_atol(dt), 4 * val_rtol(dt));
            sum(mul(yc, r)).backward();
            sum(mul(yg, gpu(r))).backward();
            GPU_EXPECT_CLOSE(name + " dx", xg.grad(), xc.grad(), 8 * val_atol(dt), 8 * val_rtol(dt));
            if (c.affine) {
                const double n = (double)(x.numel() / C);
                GPU_EXPECT_CLOSE(name + " dweight", wg.grad(), wc.grad(), sum_atol(dt, (int64_t)n) * 4, sum_rtol(dt));
                GPU_EXPECT_CLOSE(name + " dbias", bg.grad(), bc.grad(), sum_atol(dt, (int64_t)n) * 4, sum_rtol(dt));
            }
        }
    }
    // the kernel's saved statistics equal the CPU's: call both kernels directly
    Tensor x = random_input({3, 6, 50}, 31, -1, 4, DType::f64);
    auto run = [&](Device d) {
        Tensor xd = x.to(d);
        Tensor y = empty({3, 6, 50}, Options(DType::f64, d)), m = empty({3, 2}, Options(DType::f64, d)),
               rs = empty({3, 2}, Options(DType::f64, d));
        get_kernel<GroupNormKernel>("group_norm", d)(xd, Tensor(), Tensor(), 2, 1e-5, y, m, rs);
        return std::make_pair(host(m), host(rs));
    };
    auto [mc, rc] = run(Device::cpu());
    auto [mg, rg] = run(kGpu);
    CXR_EXPECT_CLOSE(mg, mc, 1e-13, 1e-12);
    CXR_EXPECT_CLOSE(rg, rc, 1e-13, 1e-12);

    for (DType dt : {DType::f32, DType::f64}) {
        for (const auto& [shape, norm_shape] : std::vector<std::pair<Shape, Shape>>{
                 {{4, 7, 33}, {33}}, {{4, 7, 33}, {7, 33}}, {{2, 3000}, {3000}}, {{1, 1}, {1}}}) {
            const std::string name = label("layer_norm", shape, dt, "normalized " + shape_str(norm_shape));
            Tensor x = random_input(shape, ++seed, -2, 2, dt);
            Tensor w = random_input(norm_shape, ++seed, 0.5, 1.5, dt), b = random_input(norm_shape, ++seed, -1, 1, dt);
            Tensor r = random_input(shape, ++seed, -1, 1, dt);
            Tensor xc = x.clone().set_requires_grad(), wc = w.clone().set_requires_grad();
            Tensor xg = gpu(x).set_requires_grad(), wg = gpu(w).set_requires_grad();
            Tensor yc = layer_norm(xc, norm_shape, wc, b), yg = layer_norm(xg, norm_shape, wg, gpu(b));
            GPU_EXPECT_CLOSE(name + " forward", yg, yc, 4 * val_atol(dt), 4 * val_rtol(dt));
            sum(mul(yc, r)).backward();
            sum(mul(yg, gpu(r))).backward();
            GPU_EXPECT_CLOSE(name + " dx", xg.grad(), xc.grad(), 8 * val_atol(dt), 8 * val_rtol(dt));
            GPU_EXPECT_CLOSE(name + " dweight", wg.grad(), wc.grad(), 4 * sum_atol(dt, shape[0] * 7), sum_rtol(dt));
        }
    }
}

TEST_CASE("cuda batch_norm: training (running stats) and eval, forward and gradients match the CPU",
          "[gpu][cuda][norm]") {
    CXR_SKIP_WITHOUT_GPU();
    // N·S ≤ 1024: warp per channel; {64, 5, 33}: block per channel; {2, 7}: 2-d input (S = 1)
    const std::vector<Shape> shapes = {{4, 3, 5, 5}, {64, 5, 33}, {2, 7}, {3, 1, 1023}};
    uint64_t seed = 4000;
    for (DType dt : {DType::f32, DType::f64}) {
        for (const Shape& s : shapes) {
            for (bool training : {true, false}) {
                const std::string name = label("batch_norm", s, dt, training ? "training" : "eval");
                const int64_t C = s[1];
                Tensor x = random_input(s, ++seed, -1, 3, dt);
                Tensor r = random_input(s, ++seed, -1, 1, dt);
                Tensor w = random_input({C}, ++seed, 0.5, 1.5, dt), b = random_input({C}, ++seed, -1, 1, dt);
                Tensor rm = random_input({C}, ++seed, -0.5, 0.5, dt), rv = random_input({C}, ++seed, 0.5, 2, dt);
                Tensor rm_c = rm.clone(), rv_c = rv.clone(), rm_g = gpu(rm), rv_g = gpu(rv);
                Tensor xc = x.clone().set_requires_grad(), xg = gpu(x).set_requires_grad();
                Tensor wc = w.clone().set_requires_grad(), wg = gpu(w).set_requires_grad();
                Tensor bc = b.clone().set_requires_grad(), bg = gpu(b).set_requires_grad();
                Tensor yc = batch_norm(xc, rm_c, rv_c, wc, bc, training, 0.3, 1e-5);
                Tensor yg = batch_norm(xg, rm_g, rv_g, wg, bg, training, 0.3, 1e-5);
                GPU_EXPECT_CLOSE(name + " forward", yg, yc, 4 * val_atol(dt), 4 * val_rtol(dt));
                GPU_EXPECT_CLOSE(name + " running_mean", rm_g, rm_c, 4 * val_atol(dt), 4 * val_rtol(dt));
                GPU_EXPECT_CLOSE(name + " running_var", rv_g, rv_c, 4 * val_atol(dt), 4 * val_rtol(dt));
                sum(mul(yc, r)).backward();
                sum(mul(yg, gpu(r))).backward();
                const int64_t m = x.numel() / C;
                GPU_EXPECT_CLOSE(name + " dx", xg.grad(), xc.grad(), 8 * val_atol(dt), 8 * val_rtol(dt));
                GPU_EXPECT_CLOSE(name + " dweight", wg.grad(), wc.grad(), 4 * sum_atol(dt, m), sum_rtol(dt));
                GPU_EXPECT_CLOSE(name + " dbias", bg.grad(), bc.grad(), 4 * sum_atol(dt, m), sum_rtol(dt));
            }
        }
    }
    // hand-derived: channel values {1, 3} → μ = 2, σ² = 1, y = ±1/√(1 + eps); running_var gets the unbiased 2
    Tensor x = gpu(from_vector(std::vector<double>{1.0, 3.0}, {2, 1}));
    Tensor rm = gpu(zeros({1}, DType::f64)), rv = gpu(ones({1}, DType::f64));
    Tensor y = host(batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.5, 0.0));
    CHECK(y.data<double>()[0] == Approx(-1.0).epsilon(1e-14));
    CHECK(y.data<double>()[1] == Approx(1.0).epsilon(1e-14));
    CHECK(host(rm).data<double>()[0] == Approx(1.0).epsilon(1e-14));  // 0.5·0 + 0.5·2
    CHECK(host(rv).data<double>()[0] == Approx(1.5).epsilon(1e-14));  // 0.5·1 + 0.5·2
}

TEST_CASE("cuda norm: bad input fails loudly", "[gpu][cuda][norm]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor xh = gpu(zeros({2, 4, 3}, DType::f16));
    Tensor y = gpu(zeros({2, 4, 3}, DType::f16)), m = gpu(zeros({2, 2}, DType::f16)), r = gpu(zeros({2, 2}, DType::f16));
    CHECK_THROWS_WITH(get_kernel<GroupNormKernel>("group_norm", kGpu)(xh, Tensor(), Tensor(), 2, 1e-5, y, m, r),
                      Catch::Contains("f32 or f64"));
    Tensor x = gpu(zeros({2, 6, 3}, DType::f32));
    Tensor y32 = gpu(zeros({2, 6, 3}, DType::f32)), m32 = gpu(zeros({2, 4}, DType::f32)),
           r32 = gpu(zeros({2, 4}, DType::f32));
    CHECK_THROWS_WITH(get_kernel<GroupNormKernel>("group_norm", kGpu)(x, Tensor(), Tensor(), 4, 1e-5, y32, m32, r32),
                      Catch::Contains("divisible"));
    Tensor sm = gpu(zeros({6}, DType::f32)), sr = gpu(zeros({6}, DType::f32));
    CHECK_THROWS_WITH(get_kernel<BatchNormKernel>("batch_norm", kGpu)(x, Tensor(), Tensor(), Tensor(), Tensor(), false,
                                                                       0.1, 1e-5, y32, sm, sr),
                      Catch::Contains("running"));
    CHECK_THROWS_WITH(get_kernel<BatchNormKernel>("batch_norm", kGpu)(x.reshape({36}), Tensor(), Tensor(), Tensor(),
                                                                       Tensor(), true, 0.1, 1e-5, y32, sm, sr),
                      Catch::Contains("[N, C, S]"));
    CHECK_THROWS(group_norm(gpu(zeros({2, 6, 3}, DType::f32)), 4));
    CHECK_THROWS(batch_norm(gpu(zeros({1, 3}, DType::f32)), Tensor(), Tensor(), Tensor(), Tensor(), true));
}

// ============================================================================================= autograd path

TEST_CASE("cuda autograd: group_norm → softmax → sum on CUDA matches the CPU (forward, input and weight grads)",
          "[gpu][cuda][norm][softmax][reduce]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::f32, DType::f64}) {
        const Shape s = {3, 8, 37};
        Tensor x = random_input(s, 51, -2, 2, dt);
        Tensor w = random_input({8}, 52, 0.5, 1.5, dt), b = random_input({8}, 53, -1, 1, dt);
        Tensor r = random_input(s, 54, -1, 1, dt);
        auto loss = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi, const Tensor& ri) {
            Tensor h = group_norm(xi, 4, wi, bi);           // [3, 8, 37]
            Tensor p = softmax(h, -1);                      // rows of 37
            Tensor q = log_softmax(h, 1);                   // strided rows of 8
            return add(sum(mul(p, ri)), mean(mul(q, ri)));  // scalar
        };
        Tensor xc = x.clone().set_requires_grad(), wc = w.clone().set_requires_grad(),
               bc = b.clone().set_requires_grad();
        Tensor xg = gpu(x).set_requires_grad(), wg = gpu(w).set_requires_grad(), bg = gpu(b).set_requires_grad();
        Tensor lc = loss(xc, wc, bc, r), lg = loss(xg, wg, bg, gpu(r));
        const std::string name = label("group_norm→softmax→sum", s, dt);
        GPU_EXPECT_CLOSE(name + " loss", lg, lc, 10 * val_atol(dt), 10 * val_rtol(dt));
        lc.backward();
        lg.backward();
        CHECK(xg.grad().device().is_cuda());
        GPU_EXPECT_CLOSE(name + " dx", xg.grad(), xc.grad(), 10 * val_atol(dt), 10 * val_rtol(dt));
        GPU_EXPECT_CLOSE(name + " dweight", wg.grad(), wc.grad(), 10 * sum_atol(dt, 111), 10 * sum_rtol(dt));
        GPU_EXPECT_CLOSE(name + " dbias", bg.grad(), bc.grad(), 10 * sum_atol(dt, 111), 10 * sum_rtol(dt));
    }
}
