// Softmax and log-softmax: argument checks, kernel dispatch ("softmax" / "softmax_backward") and the autograd
// node; the forward and backward formulas are in softmax.h. The backward needs only the saved output y.
#include "tensor/ops/softmax.h"

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
    const char* name = log ? "log_softmax" : "softmax";
    CXR_CHECK(is_floating(x.dtype()), name, " needs a floating tensor, got ", dtype_name(x.dtype()), " of shape ",
              shape_str(x.sizes()));
    const Shape work_shape = x.dim() == 0 ? Shape{1} : x.sizes();  // a 0-d input is one row of one element
    const int64_t d = wrap_dim(dim, (int64_t)work_shape.size());
    Tensor out;  // x's shape
    {
        NoGradGuard ng;
        Tensor xc = contiguous(x).reshape(work_shape);
        Tensor y = Tensor::empty(work_shape, x.dtype(), x.device());
        get_kernel<SoftmaxKernel>("softmax", x.device())(xc, y, d, log);
        out = y.reshape(x.sizes());
    }
    return record(name, out, {x}, [y = out.detach(), work_shape, d, log](const Tensor& g) -> std::vector<Tensor> {
        Tensor gc = contiguous(cast(g, y.dtype())).reshape(work_shape);
        Tensor dx = Tensor::empty(work_shape, y.dtype(), y.device());
        get_kernel<SoftmaxBackwardKernel>("softmax_backward", y.device())(y.reshape(work_shape), gc, dx, d, log);
        return {dx.reshape(y.sizes())};
    });
}

}  // namespace

// Both are f32 ops under autocast (tensor/autocast.h).
Tensor softmax(const Tensor& x, int64_t dim) {
    Tensor xf = autocast_f32(x);
    AutocastGuard off(std::nullopt);
    return softmax_impl(xf, dim, false);
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
    Tensor xf = autocast_f32(x);
    AutocastGuard off(std::nullopt);
    return softmax_impl(xf, dim, true);
}

}  // namespace cxr::tensor
