// Matrix products: torch.matmul dimension rules, batch broadcasting, linear and baddbmm as compositions, and
// the backward of the batched product (dA = dC Bᵀ, dB = Aᵀ dC, summed back over broadcast batch dims).
// The formulas are in matmul.h.
#include "tensor/ops/matmul.h"

#include <algorithm>

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

bool is_half(DType d) { return d == DType::f16 || d == DType::bf16; }

// Storage layout of a matrix view [R, C] with element strides (sr, sc) as a GEMM operand: row-major with
// leading dimension ld >= C, or (trans) column-major with ld >= R. The stride of a size-1 dim is irrelevant
// and is normalised away.
struct MatLayout {
    bool ok = false;
    bool trans = false;
    int64_t sr = 0, sc = 0;  // normalised strides
};

MatLayout mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc) {
    MatLayout l;
    int64_t r_sr = R == 1 ? std::max<int64_t>(C, 1) : sr, r_sc = C == 1 ? 1 : sc;  // row-major reading
    if (r_sc == 1 && r_sr >= C) return {true, false, r_sr, r_sc};
    int64_t c_sr = R == 1 ? 1 : sr, c_sc = C == 1 ? std::max<int64_t>(R, 1) : sc;  // column-major reading
    if (c_sr == 1 && c_sc >= R) return {true, true, c_sr, c_sc};
    return l;
}

// t [batch..., R, C] (already expanded to the broadcast batch shape) as a [B, R, C] operand of the kernel.
Tensor as_batched_operand(const Tensor& t, int64_t B, int64_t R, int64_t C) {
    Tensor t3 = reshape(t, {B, R, C});  // a view when the batch dims merge, else a copy
    MatLayout l = mat_layout(R, C, t3.stride(1), t3.stride(2));
    if (!l.ok) {
        t3 = contiguous(t3);
        l = mat_layout(R, C, t3.stride(1), t3.stride(2));
    }
    const int64_t sb = B == 1 ? 0 : t3.stride(0);
    return Tensor::make_view(t3.storage(), {B, R, C}, {sb, l.sr, l.sc}, t3.offset(), t3.dtype());
}

// Both operands have >= 2 dims: a [..., M, K] @ b [..., K, N] -> [broadcast(...), M, N].
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
    const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    CXR_CHECK(b.size(-2) == K, "matmul: inner dimensions differ: ", shape_str(a.sizes()), " @ ", shape_str(b.sizes()));
    // A matrix on the right of a batched left operand: fold the batch into M (one large GEMM, and a single
    // GEMM for dB in the backward instead of a per-batch product summed afterwards).
    if (a.dim() >= 3 && b.dim() == 2) {
        Shape out_shape(a.sizes().begin(), a.sizes().end() - 1);
        out_shape.push_back(N);
        return reshape(matmul_nd(reshape(a, {-1, K}), b), out_shape);
    }
    auto* kernel = get_kernel<MatmulKernel>("matmul", a.device());
    Shape batch_a(a.sizes().begin(), a.sizes().end() - 2), batch_b(b.sizes().begin(), b.sizes().end() - 2);
    Shape batch = broadcast_shapes(batch_a, batch_b);
    const int64_t B = shape_numel(batch);
    Shape out_shape = batch;
    out_shape.push_back(M);
    out_shape.push_back(N);
    Tensor out;
    {
        NoGradGuard ng;
        if (K == 0 || B * M * N == 0) {
            out = zeros(out_shape, Options(a.dtype(), a.device()));
        } else {
            out = Tensor::empty(out_shape, a.dtype(), a.device());
            Shape sa = batch, sb = batch;
            sa.insert(sa.end(), {M, K});
            sb.insert(sb.end(), {K, N});
            Tensor a3 = as_batched_operand(expand(a, sa), B, M, K);  // [B, M, K]
            Tensor b3 = as_batched_operand(expand(b, sb), B, K, N);  // [B, K, N]
            kernel(a3, b3, out.view({B, M, N}));
        }
    }
    return record("matmul", out, {a, b}, [a = a.detach(), b = b.detach(), need_a = a.requires_grad(),
                                          need_b = b.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
        Tensor ga, gb;
        if (need_a) ga = sum_to(matmul_nd(g, transpose(b, -1, -2)), a.sizes());  // dC Bᵀ
        if (need_b) gb = sum_to(matmul_nd(transpose(a, -1, -2), g), b.sizes());  // Aᵀ dC
        return {ga, gb};
    });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
    CXR_CHECK(a.defined() && b.defined(), "matmul: undefined operand");
    if (autocast_dtype()) {  // a lower-precision op (tensor/autocast.h)
        Tensor al = autocast_lower(a), bl = autocast_lower(b);
        AutocastGuard off(std::nullopt);
        return matmul(al, bl);
    }
    CXR_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least one dim, got ",
              shape_str(a.sizes()), " and ", shape_str(b.sizes()));
    CXR_CHECK(a.device() == b.device(), "matmul: operands on different devices (", a.device().str(), " and ",
              b.device().str(), ")");
    CXR_CHECK(a.dtype() == b.dtype(), "matmul: operands of different dtypes (", dtype_name(a.dtype()), " and ",
              dtype_name(b.dtype()), ")");
    CXR_CHECK(is_floating(a.dtype()), "matmul: expected floating operands, got ", dtype_name(a.dtype()));
    // The CPU computes f16/bf16 in f32 and rounds the result; CUDA runs them natively (cuBLAS or the tiled GEMM,
    // f32 accumulation).
    if (is_half(a.dtype()) && a.is_cpu()) return cast(matmul(cast(a, DType::f32), cast(b, DType::f32)), a.dtype());
    if (a.dim() == 1 && b.dim() == 1) {
        CXR_CHECK(a.size(0) == b.size(0), "matmul: dot product of vectors of different sizes ",
                  shape_str(a.sizes()), " and ", shape_str(b.sizes()));
        return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
    }
    if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
    if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
    return matmul_nd(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    CXR_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
    if (autocast_dtype()) {  // a lower-precision op (tensor/autocast.h): the bias too, as torch
        Tensor xl = autocast_lower(x), wl = autocast_lower(weight), bl = autocast_lower(bias);
        AutocastGuard off(std::nullopt);
        return linear(xl, wl, bl);
    }
    CXR_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", shape_str(weight.sizes()));
    CXR_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", shape_str(x.sizes()),
              " does not end in in_features = ", weight.size(1), " of weight ", shape_str(weight.sizes()));
    Tensor y = matmul(x, transpose(weight, 0, 1));  // [..., out]
    if (!bias.defined()) return y;
    CXR_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias must be [", weight.size(0),
              "], got ", shape_str(bias.sizes()));
    return add(y, bias);
}

Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, double beta, double alpha) {
    if (autocast_dtype()) {  // a lower-precision op (tensor/autocast.h)
        Tensor il = autocast_lower(input), b1 = autocast_lower(batch1), b2 = autocast_lower(batch2);
        AutocastGuard off(std::nullopt);
        return baddbmm(il, b1, b2, beta, alpha);
    }
    CXR_CHECK(batch1.dim() == 3 && batch2.dim() == 3, "baddbmm: batch1 and batch2 must be 3-d, got ",
              shape_str(batch1.sizes()), " and ", shape_str(batch2.sizes()));
    CXR_CHECK(batch1.size(0) == batch2.size(0) && batch1.size(2) == batch2.size(1), "baddbmm: cannot multiply ",
              shape_str(batch1.sizes()), " by ", shape_str(batch2.sizes()));
    Shape out_shape{batch1.size(0), batch1.size(1), batch2.size(2)};
    bool fits = input.defined() && input.dim() <= 3;
    for (int64_t i = 1; fits && i <= input.dim(); ++i)
        fits = input.size(-i) == 1 || input.size(-i) == out_shape[3 - i];
    CXR_CHECK(fits, "baddbmm: input ", input.defined() ? shape_str(input.sizes()) : std::string("(undefined)"),
              " does not broadcast to the product's shape ", shape_str(out_shape));
    Tensor prod = matmul(batch1, batch2);  // [B, n, p]
    if (alpha != 1.0) prod = mul(prod, alpha);
    if (beta == 0.0) {
        // The input takes no part (NaN/Inf in it do not propagate); its gradient is zero, as in torch.
        return record("baddbmm", prod.detach(), {input, prod},
                      [in = input.detach()](const Tensor& g) -> std::vector<Tensor> { return {zeros_like(in), g}; });
    }
    return add(beta == 1.0 ? input : mul(input, beta), prod);
}

}  // namespace cxr::tensor
