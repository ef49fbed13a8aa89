// Normalisation ops: argument checks, the f16/bf16 → f32 compute path, kernel dispatch and the autograd nodes.
// x is viewed as [N, C, S]: group_norm and batch_norm as [N, C, prod(spatial)], layer_norm as [M, D, 1] with one
// group (so its elementwise affine is the per-"channel" affine of the group kernel). The formulas are in norm.h.
#include "tensor/ops/norm.h"

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

bool is_half(DType d) { return d == DType::f16 || d == DType::bf16; }

// The dtype the kernels compute in.
DType work_dtype(DType d) { return is_half(d) ? DType::f32 : d; }

// An optional parameter cast (differentiably) to dt and reshaped to `shape`; undefined stays undefined.
Tensor param_as(const Tensor& p, DType dt, const Shape& shape) {
    return p.defined() ? reshape(cast(p, dt), shape) : p;
}

Tensor contiguous_or_undefined(const Tensor& t) { return t.defined() ? contiguous(t) : t; }
Tensor detach_or_undefined(const Tensor& t) { return t.defined() ? t.detach() : t; }
bool wants_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

void check_param(const char* op, const char* what, const Tensor& p, const Shape& expected, const Tensor& x) {
    if (!p.defined()) return;
    CXR_CHECK(is_floating(p.dtype()), op, ": ", what, " must be floating, got ", dtype_name(p.dtype()));
    CXR_CHECK(p.sizes() == expected, op, ": ", what, " has shape ", shape_str(p.sizes()), ", expected ",
              shape_str(expected), " for input ", shape_str(x.sizes()));
    CXR_CHECK(p.device() == x.device(), op, ": ", what, " is on ", p.device().str(), ", input on ", x.device().str());
}

// Group statistics on x3 [N, C, S] (work dtype), weight / bias [C] or undefined (work dtype).
Tensor grouped_norm(const char* name, const Tensor& x3, const Tensor& weight, const Tensor& bias, int64_t groups,
                    double eps) {
    const int64_t N = x3.size(0);
    Tensor y, mean, rstd, xc, wc;  // y [N, C, S]; mean, rstd [N, G]
    {
        NoGradGuard ng;
        xc = contiguous(x3);
        wc = contiguous_or_undefined(weight);
        Tensor bc = contiguous_or_undefined(bias);
        y = Tensor::empty(xc.sizes(), xc.dtype(), xc.device());
        mean = Tensor::empty({N, groups}, xc.dtype(), xc.device());
        rstd = Tensor::empty({N, groups}, xc.dtype(), xc.device());
        get_kernel<GroupNormKernel>("group_norm", xc.device())(xc, wc, bc, groups, eps, y, mean, rstd);
    }
    const bool need_x = wants_grad(x3), need_w = wants_grad(weight), need_b = wants_grad(bias);
    return record(name, y, {x3, weight, bias},
                  [x = xc.detach(), w = detach_or_undefined(wc), mean, rstd, groups, need_x, need_w,
                   need_b](const Tensor& g) -> std::vector<Tensor> {
                      Tensor gc = contiguous(cast(g, x.dtype()));
                      const int64_t C = x.size(1);
                      Tensor dx = need_x ? Tensor::empty(x.sizes(), x.dtype(), x.device()) : Tensor();
                      Tensor dw = need_w ? Tensor::empty({C}, x.dtype(), x.device()) : Tensor();
                      Tensor db = need_b ? Tensor::empty({C}, x.dtype(), x.device()) : Tensor();
                      get_kernel<GroupNormBackwardKernel>("group_norm_backward", x.device())(gc, x, mean, rstd, w,
                                                                                           groups, dx, dw, db);
                      return {dx, dw, db};
                  });
}

}  // namespace

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
    if (autocast_dtype()) {  // an f32 op (tensor/autocast.h)
        Tensor xf = autocast_f32(x);
        AutocastGuard off(std::nullopt);
        return group_norm(xf, groups, weight, bias, eps);
    }
    CXR_CHECK(is_floating(x.dtype()), "group_norm needs a floating input, got ", dtype_name(x.dtype()));
    CXR_CHECK(x.dim() >= 2, "group_norm expects x [N, C, ...], got ", shape_str(x.sizes()));
    const int64_t N = x.size(0), C = x.size(1);
    CXR_CHECK(groups > 0 && C % groups == 0, "group_norm: ", C, " channels of input ", shape_str(x.sizes()),
              " cannot be split into ", groups, " groups");
    check_param("group_norm", "weight", weight, {C}, x);
    check_param("group_norm", "bias", bias, {C}, x);
    const DType wdt = work_dtype(x.dtype());
    const int64_t S = N * C == 0 ? 0 : x.numel() / (N * C);
    Tensor x3 = reshape(cast(x, wdt), {N, C, S});  // [N, C, S]
    Tensor y = grouped_norm("group_norm", x3, param_as(weight, wdt, {C}), param_as(bias, wdt, {C}), groups, eps);
    return cast(reshape(y, x.sizes()), x.dtype());
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
    if (autocast_dtype()) {  // an f32 op (tensor/autocast.h)
        Tensor xf = autocast_f32(x);
        AutocastGuard off(std::nullopt);
        return layer_norm(xf, normalized_shape, weight, bias, eps);
    }
    CXR_CHECK(is_floating(x.dtype()), "layer_norm needs a floating input, got ", dtype_name(x.dtype()));
    const int64_t k = (int64_t)normalized_shape.size();
    bool trailing = k >= 1 && k <= x.dim();
    for (int64_t i = 0; trailing && i < k; ++i) trailing = x.size(x.dim() - k + i) == normalized_shape[i];
    CXR_CHECK(trailing, "layer_norm: normalized_shape ", shape_str(normalized_shape),
              " is not the trailing part of the input shape ", shape_str(x.sizes()));
    check_param("layer_norm", "weight", weight, normalized_shape, x);
    check_param("layer_norm", "bias", bias, normalized_shape, x);
    int64_t M = 1;
    for (int64_t d = 0; d < x.dim() - k; ++d) M *= x.size(d);
    const int64_t D = shape_numel(normalized_shape);
    const DType wdt = work_dtype(x.dtype());
    Tensor x3 = reshape(cast(x, wdt), {M, D, 1});  // [M, D, 1]: one group of D "channels"
    Tensor y = grouped_norm("layer_norm", x3, param_as(weight, wdt, {D}), param_as(bias, wdt, {D}), 1, eps);
    return cast(reshape(y, x.sizes()), x.dtype());
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
    if (autocast_dtype()) {  // an f32 op (tensor/autocast.h)
        Tensor xf = autocast_f32(x);
        AutocastGuard off(std::nullopt);
        return batch_norm(xf, running_mean, running_var, weight, bias, training, momentum, eps);
    }
    CXR_CHECK(is_floating(x.dtype()), "batch_norm needs a floating input, got ", dtype_name(x.dtype()));
    CXR_CHECK(x.dim() >= 2, "batch_norm expects x [N, C, ...], got ", shape_str(x.sizes()));
    const int64_t N = x.size(0), C = x.size(1);
    const int64_t S = N * C == 0 ? 0 : x.numel() / (N * C);
    check_param("batch_norm", "weight", weight, {C}, x);
    check_param("batch_norm", "bias", bias, {C}, x);
    check_param("batch_norm", "running_mean", running_mean, {C}, x);
    check_param("batch_norm", "running_var", running_var, {C}, x);
    CXR_CHECK(training || (running_mean.defined() && running_var.defined()),
              "batch_norm in eval mode needs running_mean and running_var");
    CXR_CHECK(!training || N * S > 1, "batch_norm in training mode needs more than one value per channel, got input ",
              shape_str(x.sizes()));
    const DType wdt = work_dtype(x.dtype());
    Tensor x3 = reshape(cast(x, wdt), {N, C, S});  // [N, C, S]
    Tensor w = param_as(weight, wdt, {C}), b = param_as(bias, wdt, {C});

    Tensor y, save_mean, save_rstd, xc, wc;  // y [N, C, S]; save_mean, save_rstd [C]
    {
        NoGradGuard ng;
        xc = contiguous(x3);
        wc = contiguous_or_undefined(w);
        Tensor bc = contiguous_or_undefined(b);
        // Running stats in the work dtype, contiguous: the kernel updates them in place; a converted copy is
        // written back afterwards.
        Tensor rm = running_mean.defined() ? contiguous(cast(running_mean.detach(), wdt)) : Tensor();
        Tensor rv = running_var.defined() ? contiguous(cast(running_var.detach(), wdt)) : Tensor();
        y = Tensor::empty(xc.sizes(), wdt, xc.device());
        save_mean = Tensor::empty({C}, wdt, xc.device());
        save_rstd = Tensor::empty({C}, wdt, xc.device());
        get_kernel<BatchNormKernel>("batch_norm", xc.device())(xc, wc, bc, rm, rv, training, momentum, eps, y,
                                                               save_mean, save_rstd);
        if (training) {
            if (rm.defined() && rm.storage() != running_mean.storage()) running_mean.detach().copy_(rm);
            if (rv.defined() && rv.storage() != running_var.storage()) running_var.detach().copy_(rv);
        }
    }
    const bool need_x = wants_grad(x3), need_w = wants_grad(w), need_b = wants_grad(b);
    y = record("batch_norm", y, {x3, w, b},
               [x = xc.detach(), wd = detach_or_undefined(wc), save_mean, save_rstd, training, need_x, need_w,
                need_b](const Tensor& g) -> std::vector<Tensor> {
                   Tensor gc = contiguous(cast(g, x.dtype()));
                   const int64_t C = x.size(1);
                   Tensor dx = need_x ? Tensor::empty(x.sizes(), x.dtype(), x.device()) : Tensor();
                   Tensor dw = need_w ? Tensor::empty({C}, x.dtype(), x.device()) : Tensor();
                   Tensor db = need_b ? Tensor::empty({C}, x.dtype(), x.device()) : Tensor();
                   get_kernel<BatchNormBackwardKernel>("batch_norm_backward", x.device())(
                       gc, x, save_mean, save_rstd, wd, training, dx, dw, db);
                   return {dx, dw, db};
               });
    return cast(reshape(y, x.sizes()), x.dtype());
}

}  // namespace cxr::tensor
