// Scaled dot-product attention as a composition of differentiable ops (matmul, softmax, where, add); the math
// and the mask conventions are in attention.h. Autograd follows from the composition.
// The unmasked (or causal) f32/f16/bf16 case goes to the fused kernels instead ("attention_forward" /
// "attention_backward": tensor/cpu/attention.cpp on the CPU, tensor/cuda/attention.cu on CUDA, the latter only
// for its supported head dims) with its own autograd node below, unless CXR_ATTN_FUSED=OFF.
#include "tensor/ops/attention.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/softmax.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

// True unless the environment variable `name` is "OFF", "off", "0" or "false" (read at each call, as the other
// CXR_* switches, e.g. CXR_ATTN_TC and CXR_CUBLAS in tensor/cuda).
bool env_switch_on(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return true;
    return !(std::strcmp(v, "OFF") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "0") == 0 ||
             std::strcmp(v, "false") == 0);
}

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

// Batch dims of a [..., rows, E] tensor.
Shape batch_dims(const Tensor& x) { return Shape(x.sizes().begin(), x.sizes().end() - 2); }

// The fused path: q, k, v broadcast to one batch shape and flattened to [B, L or S, E] (differentiable views, so
// that gradients of broadcast inputs are summed by expand's backward), one kernel call forward, one backward.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool is_causal, double scale) {
    const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1);
    const Shape batch = broadcast_shapes(broadcast_shapes(batch_dims(q), batch_dims(k)), batch_dims(v));
    const int64_t B = shape_numel(batch);
    auto flat = [&](const Tensor& x, int64_t rows) {  // [B, rows, E]
        Shape full = batch;
        full.push_back(rows);
        full.push_back(E);
        return reshape(expand(x, full), {B, rows, E});
    };
    const Tensor q3 = flat(q, L), k3 = flat(k, S), v3 = flat(v, S);
    const Device device = q.device();
    Tensor out, lse, qc, kc, vc;  // out [B, L, E] (q's dtype), lse [B, L] f32
    {
        NoGradGuard ng;
        qc = contiguous(q3).detach();
        kc = contiguous(k3).detach();
        vc = contiguous(v3).detach();
        out = Tensor::empty({B, L, E}, q.dtype(), device);
        lse = Tensor::empty({B, L}, DType::f32, device);
        get_kernel<AttentionForwardKernel>("attention_forward", device)(qc, kc, vc, scale, is_causal, out, lse);
    }
    Tensor y = record("scaled_dot_product_attention_fused", out, {q3, k3, v3},
                      [qc, kc, vc, o = out.detach(), lse, scale, is_causal](const Tensor& g) -> std::vector<Tensor> {
                          Tensor gc = contiguous(cast(g, o.dtype()));  // [B, L, E]
                          Tensor dq = Tensor::empty(qc.sizes(), qc.dtype(), qc.device());
                          Tensor dk = Tensor::empty(kc.sizes(), kc.dtype(), kc.device());
                          Tensor dv = Tensor::empty(vc.sizes(), vc.dtype(), vc.device());
                          get_kernel<AttentionBackwardKernel>("attention_backward", qc.device())(
                              qc, kc, vc, o, gc, lse, scale, is_causal, dq, dk, dv);
                          return {dq, dk, dv};
                      });
    Shape out_shape = batch;  // [..., L, E]
    out_shape.push_back(L);
    out_shape.push_back(E);
    return reshape(y, out_shape);
}

}  // namespace

bool attention_uses_fused_kernel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                 bool is_causal) {
    (void)is_causal;  // the causal rule is built into the kernels
    if (attn_mask.defined() || q.dim() < 2 || k.dim() < 2 || v.dim() < 2) return false;
    if (!env_switch_on("CXR_ATTN_FUSED")) return false;
    if (!(k.device() == q.device()) || !(v.device() == q.device())) return false;
    const DType dt = q.dtype();
    if (!(dt == DType::f32 || dt == DType::f16 || dt == DType::bf16) || k.dtype() != dt || v.dtype() != dt)
        return false;
    const int64_t E = q.size(-1);
    if (E < 1 || k.size(-1) != E || v.size(-1) != E) return false;
    if (q.is_cuda() && (E < kAttentionMinHeadDim || E > kAttentionMaxHeadDim)) return false;  // CPU: any E >= 1
    if (q.size(-2) == 0 || k.size(-2) == 0 || v.size(-2) != k.size(-2)) return false;
    return kernel_registry().find("attention_forward", q.device().type) != nullptr &&
           kernel_registry().find("attention_backward", q.device().type) != nullptr;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    bool is_causal, std::optional<double> scale) {
    if (autocast_dtype()) {  // a lower-precision op (tensor/autocast.h); a float mask is cast too, a bool one is not
        Tensor ql = autocast_lower(q), kl = autocast_lower(k), vl = autocast_lower(v), ml = autocast_lower(attn_mask);
        AutocastGuard off(std::nullopt);
        return scaled_dot_product_attention(ql, kl, vl, ml, is_causal, scale);
    }
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
    if (attention_uses_fused_kernel(q, k, v, attn_mask, is_causal)) return fused_attention(q, k, v, is_causal, s);

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
