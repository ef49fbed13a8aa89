// Index ops (tensor/ops/index.h): argument checks, index normalisation (i32 -> contiguous i64), kernel dispatch
// and each op's backward next to its forward. index_select/index_add and gather/scatter_add are each other's
// adjoints; embedding is index_select of rows with an index_add backward; masked_fill is where(mask, value, x)
// and one_hot compares the index against arange(num_classes).
#include "tensor/ops/index.h"

#include <algorithm>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

void check_index_tensor(const char* op, const Tensor& index, const Tensor& x) {
    CXR_CHECK(index.defined() && x.defined(), op, ": undefined tensor argument");
    CXR_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, op,
              ": index must be an i64 or i32 tensor, got ", dtype_name(index.dtype()));
    CXR_CHECK(index.device() == x.device(), op, ": index on ", index.device().str(), " but the tensor on ",
              x.device().str());
}

// Contiguous i64 copy (or the tensor itself when it already is one).
Tensor as_i64(const Tensor& index) {
    NoGradGuard ng;
    return cast(index, DType::i64).contiguous();
}

// The kernels without autograd: out = x[..., idx, ...] along dim; out += src at rows idx.
Tensor index_select_raw(const Tensor& x, int64_t dim, const Tensor& idx) {
    NoGradGuard ng;
    Tensor xc = x.contiguous();
    Shape shape = x.sizes();
    shape[dim] = idx.numel();
    Tensor out = Tensor::empty(shape, x.dtype(), x.device());
    get_kernel<IndexSelectKernel>("index_select", x.device())(xc, dim, idx, out);
    return out;
}

Tensor index_add_raw(const Tensor& self, int64_t dim, const Tensor& idx, const Tensor& src) {
    NoGradGuard ng;
    Tensor out = clone(self);  // fresh contiguous copy that the kernel adds into
    get_kernel<IndexAddKernel>("index_add", self.device())(out, dim, idx, src.contiguous());
    return out;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
    check_index_tensor("index_select", index, x);
    CXR_CHECK(x.dim() >= 1, "index_select: expected a tensor with at least one dim, got a 0-d tensor");
    CXR_CHECK(index.dim() <= 1, "index_select: index must be 1-d (or 0-d), got shape ", shape_str(index.sizes()));
    const int64_t d = wrap_dim(dim, x.dim());
    Tensor idx = as_i64(index).reshape({index.numel()});  // [K]
    Tensor out = index_select_raw(x, d, idx);
    return record("index_select", out, {x}, [x = x.detach(), d, idx](const Tensor& g) -> std::vector<Tensor> {
        return {index_add_raw(zeros_like(x), d, idx, g)};
    });
}

Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
    check_index_tensor("index_add", index, self);
    CXR_CHECK(self.dim() >= 1, "index_add: expected a tensor with at least one dim, got a 0-d tensor");
    CXR_CHECK(index.dim() <= 1, "index_add: index must be 1-d (or 0-d), got shape ", shape_str(index.sizes()));
    CXR_CHECK(src.device() == self.device(), "index_add: src on ", src.device().str(), " but self on ",
              self.device().str());
    CXR_CHECK(src.dtype() == self.dtype(), "index_add: src has dtype ", dtype_name(src.dtype()), " but self ",
              dtype_name(self.dtype()));
    const int64_t d = wrap_dim(dim, self.dim());
    Tensor idx = as_i64(index).reshape({index.numel()});  // [K]
    Shape expect = self.sizes();
    expect[d] = idx.numel();
    CXR_CHECK(src.sizes() == expect, "index_add: src of shape ", shape_str(src.sizes()), " does not match ",
              shape_str(expect), " (self ", shape_str(self.sizes()), " with dim ", d, " of size index.numel() = ",
              idx.numel(), ")");
    Tensor out = index_add_raw(self, d, idx, src);
    return record("index_add", out, {self, src}, [d, idx](const Tensor& g) -> std::vector<Tensor> {
        return {g, index_select_raw(g, d, idx)};
    });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
    check_index_tensor("gather", index, x);
    CXR_CHECK(x.dim() >= 1, "gather: expected a tensor with at least one dim, got a 0-d tensor");
    CXR_CHECK(index.dim() == x.dim(), "gather: index of shape ", shape_str(index.sizes()),
              " must have as many dims as the input ", shape_str(x.sizes()));
    const int64_t d = wrap_dim(dim, x.dim());
    for (int64_t k = 0; k < x.dim(); ++k)
        CXR_CHECK(k == d || index.size(k) <= x.size(k), "gather: index of shape ", shape_str(index.sizes()),
                  " is larger than the input ", shape_str(x.sizes()), " in dim ", k, " (gather dim ", d, ")");
    Tensor idx = as_i64(index);  // index's shape
    Tensor out;
    {
        NoGradGuard ng;
        out = Tensor::empty(idx.sizes(), x.dtype(), x.device());
        get_kernel<GatherKernel>("gather", x.device())(x, d, idx, out);
    }
    return record("gather", out, {x}, [x = x.detach(), d, idx](const Tensor& g) -> std::vector<Tensor> {
        return {scatter_add(zeros_like(x), d, idx, g)};
    });
}

Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
    check_index_tensor("scatter_add", index, self);
    CXR_CHECK(self.dim() >= 1, "scatter_add: expected a tensor with at least one dim, got a 0-d tensor");
    CXR_CHECK(src.device() == self.device(), "scatter_add: src on ", src.device().str(), " but self on ",
              self.device().str());
    CXR_CHECK(src.dtype() == self.dtype(), "scatter_add: src has dtype ", dtype_name(src.dtype()), " but self ",
              dtype_name(self.dtype()));
    CXR_CHECK(index.dim() == self.dim() && src.dim() == self.dim(), "scatter_add: self ", shape_str(self.sizes()),
              ", index ", shape_str(index.sizes()), " and src ", shape_str(src.sizes()),
              " must have the same number of dims");
    const int64_t d = wrap_dim(dim, self.dim());
    for (int64_t k = 0; k < self.dim(); ++k) {
        CXR_CHECK(index.size(k) <= src.size(k), "scatter_add: index of shape ", shape_str(index.sizes()),
                  " is larger than src ", shape_str(src.sizes()), " in dim ", k);
        CXR_CHECK(k == d || index.size(k) <= self.size(k), "scatter_add: index of shape ", shape_str(index.sizes()),
                  " is larger than self ", shape_str(self.sizes()), " in dim ", k, " (scatter dim ", d, ")");
    }
    Tensor idx = as_i64(index);  // index's shape
    Tensor out;
    {
        NoGradGuard ng;
        Tensor src_used = src;  // the part of src that index covers (a view)
        for (int64_t k = 0; k < src.dim(); ++k) src_used = src_used.narrow(k, 0, idx.size(k));
        out = clone(self);
        get_kernel<ScatterAddKernel>("scatter_add", self.device())(out, d, idx, src_used);
    }
    return record("scatter_add", out, {self, src},
                  [d, idx, src = src.detach()](const Tensor& g) -> std::vector<Tensor> {
                      Tensor gs = gather(g, d, idx);  // index's shape
                      if (gs.sizes() == src.sizes()) return {g, gs};
                      Tensor full_gs = zeros_like(src);
                      Tensor part = full_gs;
                      for (int64_t k = 0; k < src.dim(); ++k) part = part.narrow(k, 0, idx.size(k));
                      copy_into(part, gs);
                      return {g, full_gs};
                  });
}

Tensor embedding(const Tensor& index, const Tensor& weight, std::optional<int64_t> padding_idx) {
    check_index_tensor("embedding", index, weight);
    CXR_CHECK(weight.dim() == 2, "embedding: weight must be [num_embeddings, embedding_dim], got ",
              shape_str(weight.sizes()));
    const int64_t num = weight.size(0);
    const int64_t width = weight.size(1);
    int64_t pad = -1;  // none
    if (padding_idx) {
        pad = *padding_idx < 0 ? *padding_idx + num : *padding_idx;
        CXR_CHECK(pad >= 0 && pad < num, "embedding: padding_idx ", *padding_idx, " is out of range for ", num,
                  " embeddings (valid range [", -num, ", ", num - 1, "])");
    }
    Tensor flat = as_i64(index).reshape({index.numel()});  // [M]
    Shape out_shape = index.sizes();
    out_shape.push_back(width);
    Tensor out = index_select_raw(weight, 0, flat).reshape(out_shape);  // index.shape + [D]
    return record("embedding", out, {weight},
                  [weight = weight.detach(), flat, pad, width](const Tensor& g) -> std::vector<Tensor> {
                      Tensor rows = g.reshape({flat.numel(), width});  // [M, D]
                      if (pad >= 0) {
                          Tensor keep = ne(flat, full({}, (double)pad, DType::i64)).unsqueeze(1);  // [M, 1]
                          rows = where(keep, rows, zeros({}, Options(rows.dtype(), rows.device())));
                      }
                      return {index_add_raw(zeros_like(weight), 0, flat, rows)};
                  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
    CXR_CHECK(x.defined() && mask.defined(), "masked_fill: undefined tensor argument");
    CXR_CHECK(mask.dtype() == DType::boolean, "masked_fill: mask must be bool, got ", dtype_name(mask.dtype()));
    CXR_CHECK(mask.device() == x.device(), "masked_fill: mask on ", mask.device().str(), " but the tensor on ",
              x.device().str());
    bool broadcasts = true;
    try {
        broadcasts = broadcast_shapes(mask.sizes(), x.sizes()) == x.sizes();
    } catch (const Error&) {
        broadcasts = false;
    }
    CXR_CHECK(broadcasts, "masked_fill: mask of shape ", shape_str(mask.sizes()),
              " does not broadcast to the input's shape ", shape_str(x.sizes()));
    // where() records the gradient: g where the mask is false, 0 where it is true.
    return where(mask, full({}, value, Options(x.dtype(), x.device())), x);
}

Tensor one_hot(const Tensor& index, int64_t num_classes) {
    CXR_CHECK(index.defined(), "one_hot: undefined index");
    CXR_CHECK(is_integral(index.dtype()), "one_hot: index must be an integer tensor, got ",
              dtype_name(index.dtype()));
    std::vector<int64_t> values = cast(index, DType::i64).to_vector<int64_t>();
    if (num_classes == -1) {
        CXR_CHECK(!values.empty(), "one_hot: cannot infer num_classes from an empty index; pass num_classes");
        num_classes = *std::max_element(values.begin(), values.end()) + 1;
    }
    CXR_CHECK(num_classes >= 1, "one_hot: num_classes must be positive (or -1 to infer), got ", num_classes);
    for (int64_t v : values)
        CXR_CHECK(v >= 0 && v < num_classes, "one_hot: class index ", v, " is out of range for num_classes ",
                  num_classes, " (valid range [0, ", num_classes - 1, "])");
    NoGradGuard ng;
    Tensor classes = arange(num_classes, Options(DType::i64, index.device()));  // [C]
    return cast(eq(cast(index, DType::i64).unsqueeze(-1), classes), DType::i64);
}

}  // namespace cxr::tensor
