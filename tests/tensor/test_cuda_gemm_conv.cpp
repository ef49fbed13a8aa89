// [gpu] Conformance of the CUDA matmul, conv, pool, resize and index kernels (tensor/cuda/{matmul,conv,pool,
// resize,index}.cu) against the CPU kernels, which are the oracle: forward results and gradients through autograd,
// f32 and f64 (plus the 16-bit and integer dtypes where the op takes them), odd sizes (1, 7, 33, 1023 and sizes
// that are not multiples of the 64-wide GEMM tile or the 256-thread block), non-contiguous operands, and both
// implementations of each fast path: cuBLAS / the tiled GEMM (CXR_CUBLAS=OFF) and cuDNN / im2col + GEMM
// (CXR_CUDNN=OFF). The kernels read CXR_CUBLAS / CXR_CUDNN at EACH call, so the tests switch them with setenv()
// (ScopedEnv restores the previous value). A failure prints the op, shapes, dtype, path and the max error.
// Skipped visibly without a CUDA device.
#include "tests/support/testing.h"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

#include "tensor/backend.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/index.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::random_input;

using cxr::testing::ScopedEnv;

namespace {

const Device kGpu = Device::cuda(0);


// Tolerances per dtype for results that sum `terms` products of values in [-1, 1].
double atol_for(DType dt, int64_t terms) {
    const double s = std::sqrt((double)std::max<int64_t>(terms, 1));
    return dt == DType::f64 ? 1e-12 * s : 2e-6 * s;
}
double rtol_for(DType dt) { return dt == DType::f64 ? 1e-10 : 1e-4; }

Tensor on_cpu(const Tensor& t) { return t.to(Device::cpu()); }

// A CPU input and the same values on the GPU, both leaves requiring grad when asked.
struct Pair {
    Tensor c, g;
};
Pair make_pair(const Shape& shape, uint64_t seed, DType dt, bool grad = true) {
    Tensor c = random_input(shape, seed, -1, 1, dt);
    Tensor g = c.to(kGpu);
    c = c.detach(), g = g.detach();
    if (grad) c.set_requires_grad(true), g.set_requires_grad(true);
    return {c, g};
}

// Runs backward with the same upstream gradient on both graphs.
void backward_both(const Tensor& yc, const Tensor& yg, uint64_t seed) {
    Tensor gy = random_input(yc.sizes(), seed, -1, 1, yc.dtype());
    yc.backward(gy);
    yg.backward(gy.to(kGpu));
}

const char* path_name(const char* var, const char* value) {
    return value ? (std::string(var) == "CXR_CUBLAS" ? "tiled GEMM (CXR_CUBLAS=OFF)" : "im2col (CXR_CUDNN=OFF)")
                 : (std::string(var) == "CXR_CUBLAS" ? "cuBLAS" : "cuDNN");
}

}  // namespace

TEST_CASE("cuda matmul: cuBLAS and the tiled GEMM match the CPU, forward and backward", "[gpu][cuda][matmul]") {
    CXR_SKIP_WITHOUT_GPU();
    struct Case {
        Shape a, b;
        bool transpose_a, transpose_b;
    };
    const Case cases[] = {
        {{1, 1}, {1, 1}, false, false},         {{7, 33}, {33, 5}, false, false},
        {{65, 1023}, {1023, 7}, false, false},  {{33, 64}, {64, 129}, true, false},
        {{3, 1, 7, 5}, {4, 5, 9}, false, true}, {{2, 33, 17}, {17, 1}, false, false},
        {{7}, {7, 3}, false, false},            {{4, 7, 7}, {7}, false, false},
    };
    for (const char* off : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_CUBLAS", off);
        for (DType dt : {DType::f32, DType::f64}) {
            uint64_t seed = 10;
            for (const Case& c : cases) {
                // A transposed operand is made as the transpose of a contiguous tensor (a non-contiguous view).
                Shape sa = c.a, sb = c.b;
                if (c.transpose_a) std::swap(sa[sa.size() - 1], sa[sa.size() - 2]);
                if (c.transpose_b) std::swap(sb[sb.size() - 1], sb[sb.size() - 2]);
                Pair a = make_pair(sa, seed++, dt), b = make_pair(sb, seed++, dt);
                auto view = [](const Tensor& t, bool tr) { return tr ? transpose(t, -1, -2) : t; };
                Tensor yc = matmul(view(a.c, c.transpose_a), view(b.c, c.transpose_b));
                Tensor yg = matmul(view(a.g, c.transpose_a), view(b.g, c.transpose_b));
                const int64_t K = c.a.back();
                INFO("op matmul " << shape_str(c.a) << (c.transpose_a ? "ᵀ" : "") << " @ " << shape_str(c.b)
                                  << (c.transpose_b ? "ᵀ" : "") << " dtype " << dtype_name(dt) << " path "
                                  << path_name("CXR_CUBLAS", off));
                REQUIRE(yg.is_cuda());
                CXR_EXPECT_CLOSE(on_cpu(yg), yc, atol_for(dt, K), rtol_for(dt));
                backward_both(yc, yg, seed++);
                CXR_EXPECT_CLOSE(on_cpu(a.g.grad()), a.c.grad(), atol_for(dt, 1024), rtol_for(dt));
                CXR_EXPECT_CLOSE(on_cpu(b.g.grad()), b.c.grad(), atol_for(dt, 1024), rtol_for(dt));
            }
        }
    }
}

TEST_CASE("cuda matmul: linear and baddbmm on the GPU match the CPU", "[gpu][cuda][matmul]") {
    CXR_SKIP_WITHOUT_GPU();
    for (const char* off : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_CUBLAS", off);
        Pair x = make_pair({5, 3, 33}, 1, DType::f32), w = make_pair({7, 33}, 2, DType::f32),
             bias = make_pair({7}, 3, DType::f32);
        INFO("op linear [5, 3, 33] x [7, 33]ᵀ f32 path " << path_name("CXR_CUBLAS", off));
        CXR_EXPECT_CLOSE(on_cpu(linear(x.g, w.g, bias.g)), linear(x.c, w.c, bias.c), atol_for(DType::f32, 33), 1e-4);
        Pair in = make_pair({2, 1, 9}, 4, DType::f64, false), b1 = make_pair({2, 7, 65}, 5, DType::f64, false),
             b2 = make_pair({2, 65, 9}, 6, DType::f64, false);
        CXR_EXPECT_CLOSE(on_cpu(baddbmm(in.g, b1.g, b2.g, 0.5, 2.0)), baddbmm(in.c, b1.c, b2.c, 0.5, 2.0),
                         atol_for(DType::f64, 65), 1e-10);
    }
}

TEST_CASE("cuda matmul: f16 and bf16 inputs match the CPU within their precision", "[gpu][cuda][matmul]") {
    CXR_SKIP_WITHOUT_GPU();
    for (const char* off : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_CUBLAS", off);
        for (DType dt : {DType::f16, DType::bf16}) {
            Tensor a = random_input({33, 70}, 7, -1, 1, dt), b = random_input({70, 9}, 8, -1, 1, dt);
            INFO("op matmul [33, 70] @ [70, 9] dtype " << dtype_name(dt) << " path " << path_name("CXR_CUBLAS", off));
            CXR_EXPECT_CLOSE(on_cpu(matmul(a.to(kGpu), b.to(kGpu))), matmul(a, b), 0.1, 2e-2);
        }
    }
}

namespace {

struct ConvCase {
    int64_t N, C_in, H, W, C_out, kH, kW;
    Size2 stride, padding, dilation;
    int64_t groups;
    bool bias;
};

std::string conv_str(const ConvCase& c) {
    std::ostringstream s;
    s << "x [" << c.N << ", " << c.C_in << ", " << c.H << ", " << c.W << "] w [" << c.C_out << ", "
      << c.C_in / c.groups << ", " << c.kH << ", " << c.kW << "] stride " << size2_str(c.stride) << " pad "
      << size2_str(c.padding) << " dil " << size2_str(c.dilation) << " groups " << c.groups;
    return s.str();
}

const ConvCase kConvCases[] = {
    {2, 3, 7, 9, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, true},    // plain 3x3, odd sizes
    {1, 4, 33, 17, 6, 3, 2, {2, 1}, {1, 0}, {2, 1}, 2, true},  // stride, dilation, groups, rectangular kernel
    {2, 6, 8, 8, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 6, false},   // depthwise
    {3, 5, 7, 1, 7, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, true},    // 1x1, width 1
    {1, 2, 70, 65, 3, 5, 5, {3, 2}, {2, 2}, {1, 1}, 1, false}, // output not a multiple of the tile
};

}  // namespace

TEST_CASE("cuda conv2d: cuDNN and im2col match the CPU, forward and backward", "[gpu][cuda][conv]") {
    CXR_SKIP_WITHOUT_GPU();
    for (const char* off : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_CUDNN", off);
        for (DType dt : {DType::f32, DType::f64}) {
            uint64_t seed = 100;
            for (const ConvCase& c : kConvCases) {
                Pair x = make_pair({c.N, c.C_in, c.H, c.W}, seed++, dt);
                Pair w = make_pair({c.C_out, c.C_in / c.groups, c.kH, c.kW}, seed++, dt);
                Pair b = make_pair({c.C_out}, seed++, dt);
                Tensor yc = conv2d(x.c, w.c, c.bias ? b.c : Tensor(), c.stride, c.padding, c.dilation, c.groups);
                Tensor yg = conv2d(x.g, w.g, c.bias ? b.g : Tensor(), c.stride, c.padding, c.dilation, c.groups);
                const int64_t terms = c.C_in / c.groups * c.kH * c.kW;
                INFO("op conv2d " << conv_str(c) << " dtype " << dtype_name(dt) << " path "
                                  << path_name("CXR_CUDNN", off));
                REQUIRE(yg.is_cuda());
                CXR_EXPECT_CLOSE(on_cpu(yg), yc, atol_for(dt, terms), rtol_for(dt));
                backward_both(yc, yg, seed++);
                INFO("grad_x");
                CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), atol_for(dt, c.C_out * c.kH * c.kW), rtol_for(dt));
                INFO("grad_w");
                CXR_EXPECT_CLOSE(on_cpu(w.g.grad()), w.c.grad(), atol_for(dt, c.N * yc.size(2) * yc.size(3)),
                                 rtol_for(dt));
                if (c.bias) CXR_EXPECT_CLOSE(on_cpu(b.g.grad()), b.c.grad(), atol_for(dt, yc.numel()), rtol_for(dt));
            }
        }
    }
}

// f16/bf16 convolution runs natively on CUDA (cuDNN tensor-op math, or im2col + the tensor-core GEMM with
// beta = 1 in the weight gradient), while the CPU computes in f32 and rounds: the results differ by the output
// rounding of the dtype (2^-8 relative for bf16, 2^-11 for f16, twice for the gradients' partial sums) plus f32
// accumulation-order noise, hence rtol 2e-2 and an absolute floor growing with the terms summed.
TEST_CASE("cuda conv2d: f16 and bf16 forward and backward match the CPU, both paths", "[gpu][cuda][conv]") {
    CXR_SKIP_WITHOUT_GPU();
    const ConvCase c{2, 6, 11, 9, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, true};
    for (const char* off : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_CUDNN", off);
        for (DType dt : {DType::f16, DType::bf16}) {
            Pair x = make_pair({c.N, c.C_in, c.H, c.W}, 400, dt), w = make_pair({c.C_out, c.C_in, 3, 3}, 401, dt),
                 b = make_pair({c.C_out}, 402, dt);
            Tensor yc = conv2d(x.c, w.c, b.c, c.stride, c.padding);
            Tensor yg = conv2d(x.g, w.g, b.g, c.stride, c.padding);
            INFO("op conv2d " << conv_str(c) << " dtype " << dtype_name(dt) << " path " << path_name("CXR_CUDNN", off));
            REQUIRE(yg.dtype() == dt);
            CXR_EXPECT_CLOSE(on_cpu(yg), yc, 0.01 * std::sqrt(54.0), 2e-2);
            backward_both(yc, yg, 403);
            INFO("grad_x");
            CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), 0.01 * std::sqrt(72.0), 2e-2);
            INFO("grad_w");
            CXR_EXPECT_CLOSE(on_cpu(w.g.grad()), w.c.grad(), 0.01 * std::sqrt(2.0 * 11 * 9), 2e-2);
        }
    }
}

TEST_CASE("cuda conv_transpose2d: matches the CPU through the conv kernels, both paths", "[gpu][cuda][conv]") {
    CXR_SKIP_WITHOUT_GPU();
    for (const char* off : {(const char*)nullptr, "OFF"}) {
        ScopedEnv env("CXR_CUDNN", off);
        Pair x = make_pair({2, 4, 5, 7}, 300, DType::f32), w = make_pair({4, 3, 3, 3}, 301, DType::f32),
             b = make_pair({6}, 302, DType::f32);
        Tensor yc = conv_transpose2d(x.c, w.c, b.c, {2, 2}, {1, 1}, {1, 0}, 2);
        Tensor yg = conv_transpose2d(x.g, w.g, b.g, {2, 2}, {1, 1}, {1, 0}, 2);
        INFO("op conv_transpose2d x [2, 4, 5, 7] w [4, 3, 3, 3] stride 2 pad 1 out_pad (1, 0) groups 2 f32 path "
             << path_name("CXR_CUDNN", off));
        CXR_EXPECT_CLOSE(on_cpu(yg), yc, 1e-5, 1e-4);
        backward_both(yc, yg, 303);
        CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), 1e-5, 1e-4);
        CXR_EXPECT_CLOSE(on_cpu(w.g.grad()), w.c.grad(), 1e-4, 1e-4);
        CXR_EXPECT_CLOSE(on_cpu(b.g.grad()), b.c.grad(), 1e-4, 1e-4);
    }
}

TEST_CASE("cuda conv2d: bad geometry and mixed dtypes are errors on the GPU too", "[gpu][cuda][conv]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor x = zeros({1, 4, 5, 5}, Options(DType::f32, kGpu));
    CHECK_THROWS(conv2d(x, zeros({3, 4, 3, 3}, Options(DType::f32, kGpu)), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2));
    CHECK_THROWS(conv2d(x, zeros({3, 4, 7, 7}, Options(DType::f32, kGpu))));  // kernel larger than the input
    CHECK_THROWS(conv2d(x, zeros({3, 4, 3, 3}, Options(DType::f64, kGpu))));
}

TEST_CASE("cuda pool: max (with indices), avg and adaptive avg match the CPU, forward and backward",
          "[gpu][cuda][pool]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::f32, DType::f64}) {
        INFO("dtype " << dtype_name(dt));
        // max: odd sizes, stride != kernel, padding, dilation, ceil mode
        struct MaxCase {
            Shape shape;
            Size2 k, s, p, d;
            bool ceil;
        };
        const MaxCase mcases[] = {{{2, 3, 7, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
                                  {{1, 2, 33, 17}, {2, 3}, {2, 1}, {1, 0}, {2, 1}, true},
                                  {{3, 1, 1}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, false}};
        uint64_t seed = 400;
        for (const MaxCase& m : mcases) {
            Pair x = make_pair(m.shape, seed++, dt);
            auto rc = max_pool2d_with_indices(x.c, m.k, m.s, m.p, m.d, m.ceil);
            auto rg = max_pool2d_with_indices(x.g, m.k, m.s, m.p, m.d, m.ceil);
            INFO("op max_pool2d " << shape_str(m.shape) << " k " << size2_str(m.k) << " s " << size2_str(m.s)
                                  << " p " << size2_str(m.p) << " d " << size2_str(m.d) << " ceil " << m.ceil);
            CXR_EXPECT_CLOSE(on_cpu(rg.first), rc.first, 0, 0);
            CXR_EXPECT_CLOSE(on_cpu(rg.second), rc.second, 0, 0);
            backward_both(rc.first, rg.first, seed++);
            CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), atol_for(dt, 9), rtol_for(dt));
        }
        for (bool include_pad : {true, false})
            for (bool ceil : {false, true}) {
                Pair x = make_pair({2, 3, 11, 7}, seed++, dt);
                Tensor yc = avg_pool2d(x.c, {3, 2}, {2, 2}, {1, 1}, ceil, include_pad);
                Tensor yg = avg_pool2d(x.g, {3, 2}, {2, 2}, {1, 1}, ceil, include_pad);
                INFO("op avg_pool2d [2, 3, 11, 7] k (3, 2) s (2, 2) p (1, 1) ceil " << ceil << " count_include_pad "
                                                                                     << include_pad);
                CXR_EXPECT_CLOSE(on_cpu(yg), yc, atol_for(dt, 6), rtol_for(dt));
                backward_both(yc, yg, seed++);
                CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), atol_for(dt, 6), rtol_for(dt));
            }
        for (Size2 out : {Size2{1, 1}, Size2{3, 5}, Size2{7, 7}, Size2{33, 2}}) {
            Pair x = make_pair({2, 2, 17, 7}, seed++, dt);
            Tensor yc = adaptive_avg_pool2d(x.c, out), yg = adaptive_avg_pool2d(x.g, out);
            INFO("op adaptive_avg_pool2d [2, 2, 17, 7] -> " << size2_str(out));
            CXR_EXPECT_CLOSE(on_cpu(yg), yc, atol_for(dt, 119), rtol_for(dt));
            backward_both(yc, yg, seed++);
            CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), atol_for(dt, 119), rtol_for(dt));
        }
    }
}

TEST_CASE("cuda resize: nearest, bilinear and pad match the CPU, forward and backward", "[gpu][cuda][resize]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : {DType::f32, DType::f64}) {
        INFO("dtype " << dtype_name(dt));
        uint64_t seed = 500;
        for (Size2 size : {Size2{14, 18}, Size2{5, 4}, Size2{33, 1}, Size2{1, 1}}) {
            Pair x = make_pair({2, 3, 7, 9}, seed++, dt);
            Tensor yc = upsample_nearest2d(x.c, size), yg = upsample_nearest2d(x.g, size);
            INFO("op upsample_nearest2d [2, 3, 7, 9] -> " << size2_str(size));
            CXR_EXPECT_CLOSE(on_cpu(yg), yc, 0, 0);
            backward_both(yc, yg, seed++);
            CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), atol_for(dt, 16), rtol_for(dt));
            for (bool align : {false, true}) {
                Pair x2 = make_pair({2, 3, 7, 9}, seed++, dt);
                Tensor bc = upsample_bilinear2d(x2.c, size, align), bg = upsample_bilinear2d(x2.g, size, align);
                INFO("op upsample_bilinear2d align_corners " << align);
                CXR_EXPECT_CLOSE(on_cpu(bg), bc, atol_for(dt, 4), rtol_for(dt));
                backward_both(bc, bg, seed++);
                CXR_EXPECT_CLOSE(on_cpu(x2.g.grad()), x2.c.grad(), atol_for(dt, 64), rtol_for(dt));
            }
        }
        {
            Pair x = make_pair({1, 2, 5, 6}, seed++, dt);
            Tensor yc = upsample_bilinear2d(x.c, 2.5, false), yg = upsample_bilinear2d(x.g, 2.5, false);
            INFO("op upsample_bilinear2d scale 2.5");
            CXR_EXPECT_CLOSE(on_cpu(yg), yc, atol_for(dt, 4), rtol_for(dt));
            CXR_EXPECT_CLOSE(on_cpu(upsample_nearest2d(x.g, 1.7)), upsample_nearest2d(x.c, 1.7), 0, 0);
        }
        for (PadMode mode : {PadMode::constant, PadMode::reflect, PadMode::replicate, PadMode::circular}) {
            const std::vector<int64_t> pads = mode == PadMode::constant ? std::vector<int64_t>{2, -1, 0, 3, 1, 1}
                                                                         : std::vector<int64_t>{3, 2, 1, 4};
            Pair x = make_pair({2, 3, 5, 7}, seed++, dt);
            Tensor yc = pad(x.c, pads, mode, 0.5), yg = pad(x.g, pads, mode, 0.5);
            INFO("op pad [2, 3, 5, 7] mode " << pad_mode_name(mode));
            CXR_EXPECT_CLOSE(on_cpu(yg), yc, 0, 0);
            backward_both(yc, yg, seed++);
            CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), atol_for(dt, 8), rtol_for(dt));
        }
    }
    // integer and 16-bit tensors: nearest and constant pad copy values exactly
    Tensor xi = from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {1, 2, 3});
    CXR_EXPECT_CLOSE(on_cpu(upsample_nearest2d(xi.to(kGpu), Size2{4, 5})), upsample_nearest2d(xi, Size2{4, 5}), 0, 0);
    CXR_EXPECT_CLOSE(on_cpu(pad(xi.to(kGpu), {1, 2}, PadMode::constant, 7)), pad(xi, {1, 2}, PadMode::constant, 7), 0, 0);
    Tensor xh = random_input({1, 2, 7, 5}, 550, -1, 1, DType::bf16);
    CXR_EXPECT_CLOSE(on_cpu(upsample_bilinear2d(xh.to(kGpu), Size2{9, 11})), upsample_bilinear2d(xh, Size2{9, 11}), 1e-2,
                     1e-2);
}

TEST_CASE("cuda index: index_select, index_add, gather, scatter_add and embedding match the CPU exactly",
          "[gpu][cuda][index]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor dup = from_vector(std::vector<int64_t>{4, 0, 4, 2, 4, 1, 6}, {7});
    for (DType dt : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64}) {
        INFO("dtype " << dtype_name(dt));
        Tensor x = random_input({3, 7, 33}, 600, -4, 4, DType::f64).to(dt);
        Tensor xg = x.to(kGpu);
        INFO("op index_select dim 1 with duplicates");
        CXR_EXPECT_CLOSE(on_cpu(index_select(xg, 1, dup.to(kGpu))), index_select(x, 1, dup), 0, 0);
        Tensor src = random_input({3, 7, 33}, 601, -4, 4, DType::f64).to(dt);
        INFO("op index_add dim 1 with duplicates (sequential order on both devices: bitwise equal)");
        CXR_EXPECT_CLOSE(on_cpu(index_add(xg, 1, dup.to(kGpu), src.to(kGpu))), index_add(x, 1, dup, src), 0, 0);
        Tensor gi = from_vector(std::vector<int64_t>{0, 6, 6, 1, 2, 3, 5, 5, 0, 4, 1, 1}, {3, 4, 1});
        gi = gi.expand({3, 4, 5}).contiguous();
        INFO("op gather dim 1 / scatter_add dim 1 [3, 4, 5] index into [3, 7, 33]");
        CXR_EXPECT_CLOSE(on_cpu(gather(xg, 1, gi.to(kGpu))), gather(x, 1, gi), 0, 0);
        // non-contiguous input: the transpose of a [33, 7, 3] tensor
        Tensor xt = transpose(random_input({33, 7, 3}, 602, -4, 4, DType::f64).to(dt), 0, 2);
        CXR_EXPECT_CLOSE(on_cpu(gather(xt.to(kGpu).contiguous().to(kGpu), 1, gi.to(kGpu))), gather(xt, 1, gi), 0, 0);
        Tensor xtg = transpose(random_input({33, 7, 3}, 602, -4, 4, DType::f64).to(dt).to(kGpu), 0, 2);
        CXR_EXPECT_CLOSE(on_cpu(gather(xtg, 1, gi.to(kGpu))), gather(xt, 1, gi), 0, 0);
        Tensor s2 = random_input({3, 4, 5}, 603, -4, 4, DType::f64).to(dt);
        CXR_EXPECT_CLOSE(on_cpu(scatter_add(xg, 1, gi.to(kGpu), s2.to(kGpu))), scatter_add(x, 1, gi, s2), 0, 0);
        CXR_EXPECT_CLOSE(on_cpu(scatter_add(xg, 2, gi.to(kGpu), s2.to(kGpu))), scatter_add(x, 2, gi, s2), 0, 0);
    }
    // gradients through autograd: embedding (index_select + index_add) and gather (scatter_add)
    Pair w = make_pair({9, 33}, 610, DType::f32);
    Tensor ids = from_vector(std::vector<int64_t>{3, 3, 8, 0, 3, 1}, {2, 3});
    Tensor ec = embedding(ids, w.c), eg = embedding(ids.to(kGpu), w.g);
    CXR_EXPECT_CLOSE(on_cpu(eg), ec, 0, 0);
    backward_both(ec, eg, 611);
    CXR_EXPECT_CLOSE(on_cpu(w.g.grad()), w.c.grad(), 0, 0);
    Pair x = make_pair({4, 1023}, 612, DType::f64);
    Tensor gidx = randint(0, 1023, {4, 257});
    Tensor gc = gather(x.c, 1, gidx), gg = gather(x.g, 1, gidx.to(kGpu));
    CXR_EXPECT_CLOSE(on_cpu(gg), gc, 0, 0);
    backward_both(gc, gg, 613);
    CXR_EXPECT_CLOSE(on_cpu(x.g.grad()), x.c.grad(), 0, 0);
}

TEST_CASE("cuda index: an out-of-range index is an error naming the op, the value and the range",
          "[gpu][cuda][index]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor x = zeros({3, 5}, Options(DType::f32, kGpu));
    Tensor bad = from_vector(std::vector<int64_t>{0, 5, 1}, {3}).to(kGpu);
    CHECK_THROWS_WITH(index_select(x, 1, bad), Catch::Contains("index_select") && Catch::Contains("5") &&
                                                   Catch::Contains("[0, 4]"));
    CHECK_THROWS_WITH(index_add(x, 1, bad, zeros({3, 3}, Options(DType::f32, kGpu))), Catch::Contains("index_add"));
    Tensor neg = from_vector(std::vector<int64_t>{0, -1, 0, 0, 1, 2}, {3, 2}).to(kGpu);
    CHECK_THROWS_WITH(gather(x, 1, neg), Catch::Contains("gather") && Catch::Contains("-1"));
    CHECK_THROWS_WITH(scatter_add(x, 1, neg, ones({3, 2}, Options(DType::f32, kGpu))),
                      Catch::Contains("scatter_add"));
    // nothing was written by the failed scatter: x is still zero
    CHECK(on_cpu(x).to_vector<float>() == std::vector<float>(15, 0.0f));
}
