// Pooling ops: output geometry, argument checks, kernel dispatch and each op's backward (formulas in pool.h).
#include "tensor/ops/pool.h"

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

bool is_half(DType d) { return d == DType::f16 || d == DType::bf16; }

void check_input(const char* op, const Tensor& x) {
    CXR_CHECK(x.defined(), op, ": undefined input");
    CXR_CHECK(x.dim() == 3 || x.dim() == 4, op, ": input must be [N, C, H, W] or [C, H, W], got ",
              shape_str(x.sizes()));
    CXR_CHECK(is_floating(x.dtype()), op, ": expected a floating input, got ", dtype_name(x.dtype()));
    CXR_CHECK(x.size(-1) >= 1 && x.size(-2) >= 1, op, ": empty spatial size in ", shape_str(x.sizes()));
}

Shape out_shape_of(const Tensor& x, int64_t h_out, int64_t w_out) {
    Shape s = x.sizes();
    s[s.size() - 2] = h_out;
    s[s.size() - 1] = w_out;
    return s;
}

Pool2dParams window_params(const char* op, const Tensor& x, Size2 kernel, Size2 stride, Size2 padding,
                           Size2 dilation, bool ceil_mode, bool is_max) {
    if (stride[0] == 0 && stride[1] == 0) stride = kernel;
    CXR_CHECK(kernel[0] >= 1 && kernel[1] >= 1 && stride[0] >= 1 && stride[1] >= 1 && dilation[0] >= 1 &&
                  dilation[1] >= 1 && padding[0] >= 0 && padding[1] >= 0,
              op, ": kernel ", size2_str(kernel), ", stride ", size2_str(stride), " and dilation ",
              size2_str(dilation), " must be >= 1 and padding ", size2_str(padding), " >= 0");
    for (int d = 0; d < 2; ++d) {
        // torch: padding at most half the (effective, for max pooling) kernel size
        const int64_t eff = is_max ? (kernel[d] - 1) * dilation[d] + 1 : kernel[d];
        CXR_CHECK(padding[d] <= eff / 2, op, ": padding ", size2_str(padding),
                  " must be at most half of the kernel ", size2_str(kernel));
    }
    Pool2dParams p;
    p.H = x.size(-2), p.W = x.size(-1);
    p.planes = x.numel() / (p.H * p.W);
    p.kH = kernel[0], p.kW = kernel[1], p.stride_h = stride[0], p.stride_w = stride[1];
    p.pad_h = padding[0], p.pad_w = padding[1], p.dil_h = dilation[0], p.dil_w = dilation[1];
    p.H_out = pool_output_size(p.H, p.kH, p.stride_h, p.pad_h, p.dil_h, ceil_mode);
    p.W_out = pool_output_size(p.W, p.kW, p.stride_w, p.pad_w, p.dil_w, ceil_mode);
    CXR_CHECK(p.H_out >= 1 && p.W_out >= 1, op, ": output size ", p.H_out, "x", p.W_out, " is empty for input ",
              shape_str(x.sizes()), " and kernel ", size2_str(kernel));
    return p;
}

// Runs an (in -> out) pooling kernel by name; out has `out_sizes`.
Tensor run_pool_kernel(const char* name, const Pool2dParams& p, const Tensor& in, const Shape& out_sizes) {
    NoGradGuard ng;
    auto* k = get_kernel<Pool2dKernel>(name, in.device());
    Tensor out = Tensor::empty(out_sizes, in.dtype(), in.device());
    k(p, contiguous(in), out);
    return out;
}

}  // namespace

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
    const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
    if (span < 0) return 0;
    int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) --out;  // the last window must start inside input or left pad
    return out;
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding,
                                                  Size2 dilation, bool ceil_mode) {
    check_input("max_pool2d", x);
    if (is_half(x.dtype())) {
        auto r = max_pool2d_with_indices(cast(x, DType::f32), kernel, stride, padding, dilation, ceil_mode);
        return {cast(r.first, x.dtype()), r.second};
    }
    const Pool2dParams p = window_params("max_pool2d", x, kernel, stride, padding, dilation, ceil_mode, true);
    const Shape out_sizes = out_shape_of(x, p.H_out, p.W_out);
    Tensor y, idx;
    {
        NoGradGuard ng;
        auto* k = get_kernel<MaxPool2dForwardKernel>("max_pool2d_forward", x.device());
        y = Tensor::empty(out_sizes, x.dtype(), x.device());
        idx = Tensor::empty(out_sizes, DType::i64, x.device());
        k(p, contiguous(x), y, idx);
    }
    y = record("max_pool2d", y, {x}, [p, idx, in_sizes = x.sizes()](const Tensor& g) -> std::vector<Tensor> {
        auto* k = get_kernel<MaxPool2dBackwardKernel>("max_pool2d_backward", g.device());
        Tensor gx = Tensor::empty(in_sizes, g.dtype(), g.device());
        k(p, contiguous(g), idx, gx);
        return {gx};
    });
    return {y, idx};
}

Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation, bool ceil_mode) {
    return max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, bool ceil_mode,
                  bool count_include_pad) {
    check_input("avg_pool2d", x);
    if (is_half(x.dtype()))
        return cast(avg_pool2d(cast(x, DType::f32), kernel, stride, padding, ceil_mode, count_include_pad),
                    x.dtype());
    Pool2dParams p = window_params("avg_pool2d", x, kernel, stride, padding, {1, 1}, ceil_mode, false);
    p.count_include_pad = count_include_pad;
    Tensor y = run_pool_kernel("avg_pool2d_forward", p, x, out_shape_of(x, p.H_out, p.W_out));
    return record("avg_pool2d", y, {x}, [p, in_sizes = x.sizes()](const Tensor& g) -> std::vector<Tensor> {
        return {run_pool_kernel("avg_pool2d_backward", p, g, in_sizes)};
    });
}

Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size) {
    check_input("adaptive_avg_pool2d", x);
    CXR_CHECK(output_size[0] >= 1 && output_size[1] >= 1, "adaptive_avg_pool2d: output size ",
              size2_str(output_size), " must be positive");
    if (is_half(x.dtype())) return cast(adaptive_avg_pool2d(cast(x, DType::f32), output_size), x.dtype());
    Pool2dParams p;
    p.H = x.size(-2), p.W = x.size(-1), p.planes = x.numel() / (p.H * p.W);
    p.H_out = output_size[0], p.W_out = output_size[1];
    Tensor y = run_pool_kernel("adaptive_avg_pool2d_forward", p, x, out_shape_of(x, p.H_out, p.W_out));
    return record("adaptive_avg_pool2d", y, {x}, [p, in_sizes = x.sizes()](const Tensor& g) -> std::vector<Tensor> {
        return {run_pool_kernel("adaptive_avg_pool2d_backward", p, g, in_sizes)};
    });
}

}  // namespace cxr::tensor
