// Index ops: select, gather and scatter along a dimension, embedding lookup, masked fill and one-hot encoding,
// with the semantics of torch.index_select / gather / scatter_add / index_add / nn.functional.embedding /
// masked_fill / nn.functional.one_hot. Indices are integer tensors (i64, or i32 where noted; cast to i64
// internally); every index is bounds-checked by the kernel, and a bad one is an error naming the op, the
// value and the valid range. Negative indices are not accepted (as torch for these ops).
// Gradients of gathers are scatter-adds and vice versa; duplicate indices accumulate their gradients.
#pragma once

#include <optional>

#include "tensor/tensor.h"

namespace cxr::tensor {

// index_select: out = x with dim restricted to the rows listed in `index` (1-d or 0-d, i64 or i32).
//   out[..., k, ...] = x[..., index[k], ...]          out.size(dim) = index.numel()
//   dL/dx = index_add(zeros_like(x), dim, index, g)   (rows selected twice receive both gradients)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// index_add: out = self with the rows of src added at the rows `index` of dim (duplicates accumulate).
//   out = self;  out[..., index[k], ...] += src[..., k, ...]     src: self's shape with size(dim) = index.numel()
//   dL/dself = g,  dL/dsrc = index_select(g, dim, index)
Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);

// gather (torch semantics): index has x's number of dims, index.size(d) <= x.size(d) for d != dim; the output
// has index's shape. For dim = 1 of a 3-d tensor:
//   out[i][j][k] = x[i][index[i][j][k]][k]
//   dL/dx = scatter_add(zeros_like(x), dim, index, g)
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

// scatter_add (torch semantics): out = self; for every position p of index (dim = 1 of a 3-d tensor):
//   out[i][index[i][j][k]][k] += src[i][j][k]
// index.size(d) <= src.size(d) for all d and <= self.size(d) for d != dim; src elements beyond index's shape
// are not used.
//   dL/dself = g,  dL/dsrc = gather(g, dim, index) (zero where src is not read)
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);

// embedding: rows of a table. index: any shape, i64 or i32; weight: [num_embeddings, embedding_dim].
//   out[p, :] = weight[index[p], :]            out: index.shape + [embedding_dim]
//   dL/dweight[r, :] = Σ_{p: index[p] = r} g[p, :]   except r = padding_idx, whose row gets no gradient
// padding_idx may be negative (counts from the end, as torch).
Tensor embedding(const Tensor& index, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

// masked_fill: out = mask ? value : x, mask bool and broadcastable to x's shape (out has x's shape and dtype).
//   dL/dx = mask ? 0 : g
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// one_hot: out[..., c] = (index[...] == c) as i64, out: index.shape + [num_classes]. index is integer with
// values in [0, num_classes); num_classes = -1 uses max(index) + 1. Not differentiable.
Tensor one_hot(const Tensor& index, int64_t num_classes = -1);

}  // namespace cxr::tensor

namespace cxr::tensor {
// ---- kernel signatures (the backend seam); index is always contiguous i64 ----
// index_select: x contiguous, out contiguous of x's shape with size(dim) = index.numel().
using IndexSelectKernel = void(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// index_add: out (contiguous) += src (contiguous, out's shape with size(dim) = index.numel()) at rows index.
using IndexAddKernel = void(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
// gather: x any strides, out contiguous of index's shape, same dtype as x.
using GatherKernel = void(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// scatter_add: out (contiguous) += src (any strides, index's shape) at index along dim.
using ScatterAddKernel = void(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace cxr::tensor
