// Scaled dot-product attention as a composition of differentiable ops (matmul, softmax, where, add); the math
// and the mask conventions are in attention.h. Autograd follows from the composition.
#include "tensor/ops/attention.h"

#include <cmath>
#include <limits>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

// [L, S] bool: true where j <= i (the causal lower triangle, top-left aligned).
Tensor causal_mask(int64_t L, int64_t S, Device device) {
    Tensor m = Tensor::empty({L, S}, DType::boolean, Device::cpu());
    bool* p = m.data<bool>();
    for (int64_t i = 0; i < L; ++i)
        for (int64_t j = 0; j < S; ++j) p[i * S + j] = j <= i;
    return m.to(device);
}

// True when `from` broadcasts to exactly `to` (NumPy rules, `to` unchanged).
bool broadcasts_to(const Shape& from, const Shape& to) {
    if (from.size() > to.size()) return false;
    const size_t lead = to.size() - from.size();
    for (size_t i = 0; i < from.size(); ++i)
        if (from[i] != 1 && from[i] != to[lead + i]) return false;
    return true;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    bool is_causal, std::optional<double> scale) {
    const char* op = "scaled_dot_product_attention";
    CXR_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, op, ": q, k, v need at least 2 dims, got q ",
              shape_str(q.sizes()), ", k ", shape_str(k.sizes()), ", v ", shape_str(v.sizes()));
    CXR_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(), op,
              ": q, k, v must share one floating dtype, got ", dtype_name(q.dtype()), ", ", dtype_name(k.dtype()),
              ", ", dtype_name(v.dtype()));
    CXR_CHECK(q.size(-1) == k.size(-1), op, ": q [..., L, E] and k [..., S, E] differ in E: q ",
              shape_str(q.sizes()), ", k ", shape_str(k.sizes()));
    CXR_CHECK(k.size(-2) == v.size(-2), op, ": k [..., S, E] and v [..., S, Ev] differ in S: k ",
              shape_str(k.sizes()), ", v ", shape_str(v.sizes()));
    CXR_CHECK(!(is_causal && attn_mask.defined()), op, ": an explicit attn_mask cannot be combined with is_causal");
    const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1);
    const double s = scale ? *scale : 1.0 / std::sqrt((double)E);

    Tensor scores = mul(matmul(q, transpose(k, -2, -1)), s);  // [..., L, S]
    const Tensor neg_inf = full({}, -std::numeric_limits<double>::infinity(), Options(scores.dtype(), q.device()));
    bool may_mask_rows = false;  // can a whole row be −∞?
    if (is_causal) {
        scores = where(causal_mask(L, S, q.device()), scores, neg_inf);
        may_mask_rows = S == 0;
    } else if (attn_mask.defined()) {
        CXR_CHECK(broadcasts_to(attn_mask.sizes(), scores.sizes()), op, ": attn_mask ",
                  shape_str(attn_mask.sizes()), " does not broadcast to the attention weights ",
                  shape_str(scores.sizes()));
        if (attn_mask.dtype() == DType::boolean) {
            scores = where(attn_mask, scores, neg_inf);
        } else {
            CXR_CHECK(is_floating(attn_mask.dtype()), op, ": attn_mask must be bool or floating, got ",
                      dtype_name(attn_mask.dtype()));
            scores = add(scores, cast(attn_mask, scores.dtype()));
        }
        may_mask_rows = true;
    }
    Tensor probs;  // [..., L, S]
    if (may_mask_rows) {
        // Safe softmax: rows that are entirely −∞ are replaced by zeros before the softmax (no NaN in the forward
        // or the backward) and their probabilities set to 0 after it.
        Tensor dead;  // [..., L, 1] bool
        {
            NoGradGuard ng;
            dead = eq(amax(scores.detach(), {-1}, true), -std::numeric_limits<double>::infinity());
        }
        const Tensor zero = zeros({}, Options(scores.dtype(), q.device()));
        probs = where(dead, zero, softmax(where(dead, zero, scores), -1));
    } else {
        probs = softmax(scores, -1);
    }
    return matmul(probs, v);  // [..., L, Ev]
}

}  // namespace cxr::tensor
