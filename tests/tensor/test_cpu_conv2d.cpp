// Tests for tensor/cpu/conv2d. Three layers of evidence:
//  1. the reference forward against hand-computed outputs (stride 1; stride 2 with padding);
//  2. the reference (and fast) backward passes through the adjoint identities, in double:
//       <conv(x; w), g> == <x, conv_backward_input(g; w)> == <w, conv_backward_weight(x, g)>   (rel. 1e-12)
//     which pins the gradients to the forward without trusting either backward implementation;
//  3. the fast im2col/GEMM kernels against the references over many configurations (stride, padding,
//     dilation, groups incl. depthwise, 1x1, non-square, chunked col buffer), float and double;
// and conv_transpose2d against a direct scatter-loop definition (PyTorch's ConvTranspose2d semantics).
// Float tolerance: atol = 1e-6 * (reduction length + 1), rtol = 1e-5 (float GEMM vs double accumulation, data
// in [-1, 1]); double: 1e-12 of the same.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/cpu/conv2d.h"
#include "tensor/error.h"
#include "tests/tensor/cpu_kernel_check.h"

using namespace cxr::tensor::cpu;

namespace {

Conv2dParams make_params(int64_t N, int64_t C_in, int64_t H, int64_t W, int64_t C_out, int64_t kH, int64_t kW,
                         int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups) {
    Conv2dParams p;
    p.N = N;
    p.C_in = C_in;
    p.H = H;
    p.W = W;
    p.C_out = C_out;
    p.kH = kH;
    p.kW = kW;
    p.stride_h = sh;
    p.stride_w = sw;
    p.pad_h = ph;
    p.pad_w = pw;
    p.dil_h = dh;
    p.dil_w = dw;
    p.groups = groups;
    return p;
}

std::string describe(const Conv2dParams& p) {
    std::ostringstream os;
    os << "N=" << p.N << " C_in=" << p.C_in << " H=" << p.H << " W=" << p.W << " C_out=" << p.C_out << " k=" << p.kH
       << "x" << p.kW << " stride=" << p.stride_h << "x" << p.stride_w << " pad=" << p.pad_h << "x" << p.pad_w
       << " dil=" << p.dil_h << "x" << p.dil_w << " groups=" << p.groups;
    return os.str();
}

int64_t x_size(const Conv2dParams& p) { return p.N * p.C_in * p.H * p.W; }
int64_t y_size(const Conv2dParams& p) { return p.N * p.C_out * p.H_out() * p.W_out(); }
int64_t w_size(const Conv2dParams& p) { return p.C_out * (p.C_in / p.groups) * p.kH * p.kW; }

template <class T>
double dot(const std::vector<T>& a, const std::vector<T>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
    return s;
}

double sum_abs_products(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += std::fabs(a[i] * b[i]);
    return s;
}

const std::vector<Conv2dParams>& configs() {
    static const std::vector<Conv2dParams> list = {
        make_params(2, 8, 5, 7, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1),        // 1x1 pointwise (no im2col)
        make_params(2, 8, 5, 7, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1),        // 1x1 stride 2
        make_params(1, 6, 4, 6, 4, 1, 1, 1, 1, 1, 0, 1, 1, 2),        // 1x1 padded, grouped
        make_params(2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),       // 3x3 same
        make_params(3, 4, 10, 9, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1),       // 3x3 stride 2
        make_params(1, 3, 12, 10, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1),      // dilation 2
        make_params(2, 4, 11, 13, 3, 2, 5, 2, 1, 0, 2, 1, 2, 1),      // non-square everything
        make_params(2, 6, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2),        // groups 2
        make_params(2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8),        // depthwise
        make_params(1, 8, 9, 7, 16, 3, 3, 2, 2, 1, 1, 1, 1, 8),       // depthwise, multiplier 2, stride 2
        make_params(1, 3, 20, 20, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1),      // ResNet stem shape, small
        make_params(2, 3, 5, 5, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1),        // kernel covers the input: 1x1 output
        make_params(1, 2, 3, 3, 2, 2, 2, 1, 1, 2, 2, 1, 1, 1),        // padding wider than the kernel reach
        make_params(2, 32, 30, 30, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // big enough to thread
        make_params(1, 512, 31, 30, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // col buffer in chunks, mid-row boundary
        make_params(9, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),        // many images: parallel over images
    };
    return list;
}

// Fast vs reference for forward (with bias), backward input, backward weight, backward bias.
template <class T>
void check_fast_against_reference(const Conv2dParams& p, double scale) {
    INFO(describe(p) << (sizeof(T) == 4 ? " float" : " double"));
    const auto x = cxr::test::random_uniform<T>(x_size(p), 21);
    const auto w = cxr::test::random_uniform<T>(w_size(p), 22);
    const auto bias = cxr::test::random_uniform<T>(p.C_out, 23);
    const auto gy = cxr::test::random_uniform<T>(y_size(p), 24);
    const int64_t Cg = p.C_in / p.groups, Og = p.C_out / p.groups;
    const double red_fwd = double(Cg * p.kH * p.kW);
    const double red_bin = double(Og * p.kH * p.kW);
    const double red_bw = double(p.N * p.H_out() * p.W_out());

    std::vector<T> y_ref(y_size(p)), y_fast(y_size(p), T(7));
    conv2d_forward_reference<T>(p, x.data(), w.data(), bias.data(), y_ref.data());
    conv2d_forward_fast<T>(p, x.data(), w.data(), bias.data(), y_fast.data());
    {
        INFO("forward");
        CXR_REQUIRE_CLOSE(y_fast.data(), y_ref.data(), y_size(p), scale * (red_fwd + 1), 10 * scale);
    }
    conv2d_forward_fast<T>(p, x.data(), w.data(), static_cast<const T*>(nullptr), y_fast.data());
    conv2d_forward_reference<T>(p, x.data(), w.data(), static_cast<const T*>(nullptr), y_ref.data());
    {
        INFO("forward without bias");
        CXR_REQUIRE_CLOSE(y_fast.data(), y_ref.data(), y_size(p), scale * (red_fwd + 1), 10 * scale);
    }

    std::vector<T> gx_ref(x_size(p)), gx_fast(x_size(p), T(7));
    conv2d_backward_input_reference<T>(p, gy.data(), w.data(), gx_ref.data());
    conv2d_backward_input_fast<T>(p, gy.data(), w.data(), gx_fast.data());
    {
        INFO("backward input");
        CXR_REQUIRE_CLOSE(gx_fast.data(), gx_ref.data(), x_size(p), scale * (red_bin + 1), 10 * scale);
    }

    std::vector<T> gw_ref(w_size(p)), gw_fast(w_size(p), T(7));
    conv2d_backward_weight_reference<T>(p, x.data(), gy.data(), gw_ref.data());
    conv2d_backward_weight_fast<T>(p, x.data(), gy.data(), gw_fast.data());
    {
        INFO("backward weight");
        CXR_REQUIRE_CLOSE(gw_fast.data(), gw_ref.data(), w_size(p), scale * (red_bw + 1), 10 * scale);
    }

    // Backward bias: compare with a plain sum.
    std::vector<T> gb(p.C_out);
    conv2d_backward_bias<T>(p, gy.data(), gb.data());
    const int64_t hw = p.H_out() * p.W_out();
    for (int64_t o = 0; o < p.C_out; ++o) {
        double s = 0.0;
        for (int64_t n = 0; n < p.N; ++n)
            for (int64_t i = 0; i < hw; ++i) s += double(gy[(n * p.C_out + o) * hw + i]);
        REQUIRE(std::fabs(double(gb[o]) - s) <= scale * (red_bw + 1));
    }
}

// <conv(x; w), g> vs <x, backward_input(g; w)> vs <w, backward_weight(x, g)>, in double.
using ForwardFn = void (*)(const Conv2dParams&, const double*, const double*, const double*, double*);
using BackwardInputFn = void (*)(const Conv2dParams&, const double*, const double*, double*);
using BackwardWeightFn = void (*)(const Conv2dParams&, const double*, const double*, double*);

void check_adjoint_identities(const Conv2dParams& p, ForwardFn fwd, BackwardInputFn bin, BackwardWeightFn bw) {
    INFO(describe(p));
    const auto x = cxr::test::random_uniform<double>(x_size(p), 31);
    const auto w = cxr::test::random_uniform<double>(w_size(p), 32);
    const auto g = cxr::test::random_uniform<double>(y_size(p), 33);
    std::vector<double> y(y_size(p)), gx(x_size(p)), gw(w_size(p));
    fwd(p, x.data(), w.data(), nullptr, y.data());
    bin(p, g.data(), w.data(), gx.data());
    bw(p, x.data(), g.data(), gw.data());
    const double lhs = dot(y, g);
    const double rhs_x = dot(x, gx);
    const double rhs_w = dot(w, gw);
    // Relative to the magnitude of the terms summed (the inner products themselves may be near 0).
    const double magnitude = std::max(sum_abs_products(y, g), 1e-300);
    INFO("<conv(x),g>=" << lhs << " <x,bwd_input(g)>=" << rhs_x << " <w,bwd_weight(x,g)>=" << rhs_w
                        << " sum|y*g|=" << magnitude);
    REQUIRE(std::fabs(lhs - rhs_x) <= 1e-12 * magnitude);
    REQUIRE(std::fabs(lhs - rhs_w) <= 1e-12 * magnitude);
}

// PyTorch ConvTranspose2d by its definition: every input pixel scatters w-weighted copies into the output.
// x [N, C_in_t, H_in, W_in], w [C_in_t, C_out_t/G, kH, kW], bias [C_out_t], y [N, C_out_t, H_out_t, W_out_t].
template <class T>
void conv_transpose2d_scatter(const ConvTranspose2dShape& s, const T* x, const T* w, const T* bias, T* y) {
    const int64_t Ho = s.H_out(), Wo = s.W_out();
    const int64_t Cg = s.C_in / s.groups, Og = s.C_out / s.groups;
    std::vector<double> acc(size_t(s.N * s.C_out * Ho * Wo), 0.0);
    for (int64_t n = 0; n < s.N; ++n)
        for (int64_t c = 0; c < s.C_in; ++c) {
            const int64_t g = c / Cg;
            for (int64_t ih = 0; ih < s.H_in; ++ih)
                for (int64_t iw = 0; iw < s.W_in; ++iw) {
                    const double xv = double(x[((n * s.C_in + c) * s.H_in + ih) * s.W_in + iw]);
                    for (int64_t oo = 0; oo < Og; ++oo)
                        for (int64_t kh = 0; kh < s.kH; ++kh)
                            for (int64_t kw = 0; kw < s.kW; ++kw) {
                                const int64_t oh = ih * s.stride_h - s.pad_h + kh * s.dil_h;
                                const int64_t ow = iw * s.stride_w - s.pad_w + kw * s.dil_w;
                                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                                const int64_t o = g * Og + oo;
                                acc[size_t(((n * s.C_out + o) * Ho + oh) * Wo + ow)] +=
                                    xv * double(w[((c * Og + oo) * s.kH + kh) * s.kW + kw]);
                            }
                }
        }
    for (int64_t n = 0; n < s.N; ++n)
        for (int64_t o = 0; o < s.C_out; ++o)
            for (int64_t i = 0; i < Ho * Wo; ++i) {
                const size_t idx = size_t((n * s.C_out + o) * Ho * Wo + i);
                y[idx] = T(acc[idx] + (bias ? double(bias[o]) : 0.0));
            }
}

ConvTranspose2dShape make_transpose(int64_t N, int64_t C_in, int64_t H_in, int64_t W_in, int64_t C_out, int64_t kH,
                                    int64_t kW, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                                    int64_t dw, int64_t groups, int64_t oph, int64_t opw) {
    ConvTranspose2dShape s;
    s.N = N;
    s.C_in = C_in;
    s.H_in = H_in;
    s.W_in = W_in;
    s.C_out = C_out;
    s.kH = kH;
    s.kW = kW;
    s.stride_h = sh;
    s.stride_w = sw;
    s.pad_h = ph;
    s.pad_w = pw;
    s.dil_h = dh;
    s.dil_w = dw;
    s.groups = groups;
    s.output_padding_h = oph;
    s.output_padding_w = opw;
    return s;
}

}  // namespace

TEST_CASE("conv2d reference matches hand-computed outputs", "[cpu][conv2d]") {
    // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], bias 0.5.
    const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const std::vector<double> w = {1, 2, 3, 4};
    const double bias = 0.5;
    {
        // Stride 1, no padding: y[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1] + 0.5.
        const auto p = make_params(1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0, 1, 1, 1);
        REQUIRE(p.H_out() == 2);
        std::vector<double> y(4);
        conv2d_forward_reference<double>(p, x.data(), w.data(), &bias, y.data());
        CHECK(y == std::vector<double>{37.5, 47.5, 67.5, 77.5});
        // Backward bias of an all-ones gradient counts the outputs.
        const std::vector<double> ones(4, 1.0);
        double gb = 0;
        conv2d_backward_bias<double>(p, ones.data(), &gb);
        CHECK(gb == 4.0);
        // Backward weight with grad_y = ones: grad_w[kh][kw] = sum of the 2x2 window of x at offset (kh, kw).
        std::vector<double> gw(4);
        conv2d_backward_weight_reference<double>(p, x.data(), ones.data(), gw.data());
        CHECK(gw == std::vector<double>{12, 16, 24, 28});
        // Backward input with grad_y = ones: grad_x[i][j] = sum of the w taps that read (i, j).
        std::vector<double> gx(9);
        conv2d_backward_input_reference<double>(p, ones.data(), w.data(), gx.data());
        CHECK(gx == std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4});
    }
    {
        // Stride 2, padding 1: H_out = (3 + 2 - 1 - 1)/2 + 1 = 2; taps outside the image read zero.
        // y[0][0] = 4*x[0][0] = 4;           y[0][1] = 3*x[0][1] + 4*x[0][2] = 18;
        // y[1][0] = 2*x[1][0] + 4*x[2][0] = 36; y[1][1] = x[1][1] + 2x[1][2] + 3x[2][1] + 4x[2][2] = 77.
        const auto p = make_params(1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1);
        REQUIRE(p.H_out() == 2);
        REQUIRE(p.W_out() == 2);
        std::vector<double> y(4);
        conv2d_forward_reference<double>(p, x.data(), w.data(), nullptr, y.data());
        CHECK(y == std::vector<double>{4, 18, 36, 77});
    }
    {
        // Two groups of one channel: output channel g only sees input channel g.
        const auto p = make_params(1, 2, 1, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 2);
        const std::vector<double> x2 = {1, 2, 10, 20};  // channel 0: [1, 2], channel 1: [10, 20]
        const std::vector<double> w2 = {3, -1};
        std::vector<double> y(4);
        conv2d_forward_reference<double>(p, x2.data(), w2.data(), nullptr, y.data());
        CHECK(y == std::vector<double>{3, 6, -10, -20});
    }
}

TEST_CASE("conv2d reference backward passes satisfy the adjoint identities", "[cpu][conv2d]") {
    for (const auto& p : configs()) {
        if (p.C_in >= 512) continue;  // the chunked case adds nothing to the reference check
        check_adjoint_identities(p, conv2d_forward_reference<double>, conv2d_backward_input_reference<double>,
                                 conv2d_backward_weight_reference<double>);
    }
}

TEST_CASE("conv2d fast backward passes satisfy the adjoint identities", "[cpu][conv2d]") {
    for (const auto& p : configs())
        check_adjoint_identities(p, conv2d_forward_fast<double>, conv2d_backward_input_fast<double>,
                                 conv2d_backward_weight_fast<double>);
}

TEST_CASE("conv2d fast kernels match the reference (float)", "[cpu][conv2d]") {
    for (const auto& p : configs()) check_fast_against_reference<float>(p, 1e-6);
}

TEST_CASE("conv2d fast kernels match the reference (double)", "[cpu][conv2d]") {
    for (const auto& p : configs()) check_fast_against_reference<double>(p, 1e-12);
}

TEST_CASE("conv2d rejects invalid parameters", "[cpu][conv2d]") {
    std::vector<float> buf(1024);
    auto bad_groups = make_params(1, 6, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4);  // 6 % 4 != 0
    CHECK_THROWS_AS(conv2d_forward_fast<float>(bad_groups, buf.data(), buf.data(), nullptr, buf.data()), cxr::Error);
    auto too_big = make_params(1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1);  // 3x3 kernel on 2x2 input
    CHECK_THROWS_AS(conv2d_forward_reference<float>(too_big, buf.data(), buf.data(), nullptr, buf.data()),
                    cxr::Error);
    auto s = make_transpose(1, 2, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2, 0);  // output_padding 2 >= stride 2
    CHECK_THROWS_AS(s.adjoint(), cxr::Error);
}

TEST_CASE("conv_transpose2d matches the scatter-loop definition", "[cpu][conv2d]") {
    const std::vector<ConvTranspose2dShape> shapes = {
        make_transpose(2, 4, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0),  // stride 1 "same"
        make_transpose(2, 4, 5, 6, 3, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0),  // x2 upsampling (k4 s2 p1)
        make_transpose(1, 3, 4, 5, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1),  // output_padding 1
        make_transpose(1, 4, 4, 4, 6, 3, 2, 3, 2, 0, 1, 2, 1, 2, 2, 1),  // groups, dilation, non-square, op
        make_transpose(2, 6, 3, 3, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6, 1, 1),  // depthwise
        make_transpose(1, 5, 6, 7, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0),  // 1x1
    };
    for (const auto& s : shapes) {
        const Conv2dParams p = s.adjoint();
        INFO("transposed: C_in=" << s.C_in << " H_in=" << s.H_in << " W_in=" << s.W_in << " C_out=" << s.C_out
                                 << " -> H_out=" << s.H_out() << " W_out=" << s.W_out() << "; adjoint conv "
                                 << describe(p));
        REQUIRE(p.H_out() == s.H_in);
        REQUIRE(p.W_out() == s.W_in);
        const int64_t nx = s.N * s.C_in * s.H_in * s.W_in;
        const int64_t ny = s.N * s.C_out * s.H_out() * s.W_out();
        const int64_t nw = s.C_in * (s.C_out / s.groups) * s.kH * s.kW;
        REQUIRE(nx == y_size(p));
        REQUIRE(ny == x_size(p));
        REQUIRE(nw == w_size(p));

        // Forward, float and double.
        const auto xd = cxr::test::random_uniform<double>(nx, 41);
        const auto wd = cxr::test::random_uniform<double>(nw, 42);
        const auto bd = cxr::test::random_uniform<double>(s.C_out, 43);
        std::vector<double> y_def(ny), y_got(ny);
        conv_transpose2d_scatter<double>(s, xd.data(), wd.data(), bd.data(), y_def.data());
        conv_transpose2d_forward<double>(p, xd.data(), wd.data(), bd.data(), y_got.data());
        CXR_REQUIRE_CLOSE(y_got.data(), y_def.data(), ny, 1e-12, 1e-12);

        const std::vector<float> xf(xd.begin(), xd.end()), wf(wd.begin(), wd.end()), bf(bd.begin(), bd.end());
        std::vector<float> yf_def(ny), yf_got(ny);
        conv_transpose2d_scatter<float>(s, xf.data(), wf.data(), bf.data(), yf_def.data());
        conv_transpose2d_forward<float>(p, xf.data(), wf.data(), bf.data(), yf_got.data());
        CXR_REQUIRE_CLOSE(yf_got.data(), yf_def.data(), ny, 1e-5, 1e-5);

        // Backward pieces through the adjoint identities against the scatter definition (no bias):
        //   <T(x; w), g> == <x, T_backward_input(g; w)> == <w, T_backward_weight(x, g)>.
        const auto g = cxr::test::random_uniform<double>(ny, 44);
        std::vector<double> y0(ny), gx(nx), gw(nw), gb(s.C_out);
        conv_transpose2d_scatter<double>(s, xd.data(), wd.data(), static_cast<const double*>(nullptr), y0.data());
        conv_transpose2d_backward_input<double>(p, g.data(), wd.data(), gx.data());
        conv_transpose2d_backward_weight<double>(p, xd.data(), g.data(), gw.data());
        const double lhs = dot(y0, g);
        const double magnitude = sum_abs_products(y0, g);
        CHECK(std::fabs(lhs - dot(xd, gx)) <= 1e-12 * magnitude);
        CHECK(std::fabs(lhs - dot(wd, gw)) <= 1e-12 * magnitude);
        // Bias gradient: per output channel sum.
        conv_transpose2d_backward_bias<double>(p, g.data(), gb.data());
        const int64_t hw = s.H_out() * s.W_out();
        for (int64_t o = 0; o < s.C_out; ++o) {
            double sum = 0.0;
            for (int64_t n = 0; n < s.N; ++n)
                for (int64_t i = 0; i < hw; ++i) sum += g[size_t((n * s.C_out + o) * hw + i)];
            CHECK(std::fabs(gb[o] - sum) <= 1e-12 * (1.0 + std::fabs(sum)));
        }
    }
}
