// Reductions: the reduced dims are moved last and made contiguous, one kernel reduces each row, and the
// result is reshaped to the output shape. mean, var, std and logsumexp are compositions of differentiable ops,
// so their gradients follow from the formulas in reduce.h by the chain rule.
#include "tensor/ops/reduce.h"

#include <algorithm>
#include <cmath>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

struct ReducePlan {
    Shape dims;          // sorted, unique, wrapped
    Shape keep_shape;    // output shape with keepdim
    Shape out_shape;     // output shape as requested
    int64_t n = 1;       // elements reduced per output
};

ReducePlan plan_reduce(const Tensor& x, const Shape& dims_in, bool keepdim) {
    ReducePlan p;
    if (dims_in.empty()) {
        for (int64_t d = 0; d < x.dim(); ++d) p.dims.push_back(d);
    } else {
        for (int64_t d : dims_in) p.dims.push_back(wrap_dim(d, x.dim()));
    }
    std::sort(p.dims.begin(), p.dims.end());
    CXR_CHECK(std::adjacent_find(p.dims.begin(), p.dims.end()) == p.dims.end(), "reduction dims repeated: ",
              shape_str(dims_in));
    p.keep_shape = x.sizes();
    for (int64_t d : p.dims) {
        if (x.dim() == 0) break;
        p.n *= x.size(d);
        p.keep_shape[d] = 1;
    }
    for (int64_t d = 0; d < x.dim(); ++d)
        if (keepdim || !std::binary_search(p.dims.begin(), p.dims.end(), d)) p.out_shape.push_back(p.keep_shape[d]);
    return p;
}

// Runs the reduce kernel; the result has the keepdim shape.
Tensor reduce_raw(ReduceOp op, const Tensor& x, const ReducePlan& p) {
    NoGradGuard ng;
    Shape perm;
    for (int64_t d = 0; d < x.dim(); ++d)
        if (!std::binary_search(p.dims.begin(), p.dims.end(), d)) perm.push_back(d);
    int64_t outer = shape_numel(p.keep_shape);
    for (int64_t d : p.dims) perm.push_back(d);
    Tensor rows = x.dim() == 0 ? x.reshape({1, 1}) : permute(x, perm).contiguous().reshape({outer, p.n});
    DType out_dt = x.dtype();
    if (op == ReduceOp::argmax || op == ReduceOp::argmin || (op == ReduceOp::sum && !is_floating(x.dtype())))
        out_dt = DType::i64;
    Tensor out = Tensor::empty({outer}, out_dt, x.device());
    get_kernel<ReduceKernel>("reduce", x.device())(op, rows, out);
    return out.reshape(p.keep_shape);
}

Tensor extreme(const Tensor& x, const Shape& dims, bool keepdim, bool is_max) {
    ReducePlan p = plan_reduce(x, dims, keepdim);
    Tensor keep = reduce_raw(is_max ? ReduceOp::amax : ReduceOp::amin, x, p);
    Tensor out = keep.reshape(p.out_shape);
    return record(is_max ? "amax" : "amin", out, {x},
                  [x = x.detach(), keep, p](const Tensor& g) -> std::vector<Tensor> {
                      // gradient shared evenly among the tied extreme elements
                      Tensor mask = cast(eq(x, keep), g.dtype());
                      Tensor count = sum(mask, p.dims, true);
                      return {mul(div(g.reshape(p.keep_shape), count), mask)};
                  });
}

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
    ReducePlan p = plan_reduce(x, dims, keepdim);
    Tensor out = reduce_raw(ReduceOp::sum, x, p).reshape(p.out_shape);
    return record("sum", out, {x}, [in = x.sizes(), p](const Tensor& g) -> std::vector<Tensor> {
        return {expand(g.reshape(p.keep_shape), in)};
    });
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
    CXR_CHECK(is_floating(x.dtype()), "mean needs a floating tensor, got ", dtype_name(x.dtype()));
    ReducePlan p = plan_reduce(x, dims, keepdim);
    return div(sum(x, dims, keepdim), (double)p.n);
}

Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
    CXR_CHECK(is_floating(x.dtype()), "var needs a floating tensor, got ", dtype_name(x.dtype()));
    ReducePlan p = plan_reduce(x, dims, keepdim);
    Tensor centred = sub(x, mean(x, dims, true));
    double denom = std::max<double>((double)(p.n - correction), 0.0);
    return div(sum(square(centred), dims, keepdim), denom);
}

Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
    CXR_CHECK(is_floating(x.dtype()), "std needs a floating tensor, got ", dtype_name(x.dtype()));
    ReducePlan p = plan_reduce(x, dims, keepdim);
    Tensor out;
    {
        NoGradGuard ng;
        out = sqrt(var(x, dims, correction, keepdim));
    }
    // dσ/dx = (x - m) / ((n - c) σ); where σ = 0 (a constant slice) the gradient is 0, as torch defines it.
    const double denom = std::max<double>((double)(p.n - correction), 0.0);
    return record("std", out, {x}, [x = x.detach(), out = out.detach(), p, dims, denom](const Tensor& g)
                      -> std::vector<Tensor> {
        Tensor sigma = out.reshape(p.keep_shape);
        Tensor centred = sub(x, mean(x, dims, true));
        Tensor safe_sigma = where(eq(sigma, 0.0), ones_like(sigma), sigma);
        Tensor gx = div(mul(g.reshape(p.keep_shape), centred), mul(safe_sigma, denom));
        return {where(eq(sigma, 0.0), zeros_like(gx), gx)};
    });
}

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
    CXR_CHECK(is_floating(x.dtype()), "logsumexp needs a floating tensor");
    Tensor m = amax(x, dims, true).detach();
    // where the maximum is ±inf, shift by 0 instead (keeps -inf rows at -inf and avoids inf - inf)
    Tensor finite_m = where(eq(abs(m), INFINITY), zeros_like(m), m);
    Tensor l = add(log(sum(exp(sub(x, finite_m)), dims, true)), finite_m);
    if (keepdim) return l;
    ReducePlan p = plan_reduce(x, dims, keepdim);
    return l.reshape(p.out_shape);
}

Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return extreme(x, dims, keepdim, true); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return extreme(x, dims, keepdim, false); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
    ReducePlan p = plan_reduce(x, {dim}, keepdim);
    return reduce_raw(ReduceOp::argmax, x, p).reshape(p.out_shape);
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
    ReducePlan p = plan_reduce(x, {dim}, keepdim);
    return reduce_raw(ReduceOp::argmin, x, p).reshape(p.out_shape);
}

}  // namespace cxr::tensor
