// Dropout: draws the keep mask from the Philox stream, scales it by 1/(1 − p) and multiplies; the autograd node
// "dropout" multiplies the incoming gradient by the same scaled mask. Formulas in dropout.h.
#include "tensor/ops/dropout.h"

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"

namespace cxr::tensor {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
    CXR_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability ", p, " outside [0, 1]");
    CXR_CHECK(is_floating(x.dtype()), "dropout needs a floating tensor, got ", dtype_name(x.dtype()));
    if (!training || p == 0.0) return x;
    Tensor scaled_mask;  // x's shape and dtype: m / (1 − p), or zeros when p == 1
    Tensor out;
    {
        NoGradGuard ng;
        if (p == 1.0)
            scaled_mask = zeros(x.sizes(), Options(x.dtype(), x.device()));
        else
            scaled_mask = mul(bernoulli(x.sizes(), 1.0 - p, Options(x.dtype(), x.device()), gen), 1.0 / (1.0 - p));
        out = binary(BinaryOp::mul, x, scaled_mask);
    }
    return record("dropout", out, {x}, [scaled_mask](const Tensor& g) -> std::vector<Tensor> {
        return {mul(g, scaled_mask)};
    });
}

}  // namespace cxr::tensor
