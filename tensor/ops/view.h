// Shape and view ops. Views share storage with their input (reshape of a contiguous tensor, view, permute,
// transpose, narrow/slice, expand, squeeze, unsqueeze); the others copy (contiguous, clone, cat, stack).
// Backward of each view is the corresponding inverse placement of the gradient.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cxr::tensor {

Tensor view(const Tensor& x, const Shape& sizes);     // requires compatible strides; one -1 allowed
Tensor reshape(const Tensor& x, const Shape& sizes);  // a view when possible, else a contiguous copy
Tensor permute(const Tensor& x, const Shape& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// Python-style slice x[..., start:end:step, ...] on one dim; negative start/end count from the end, clamped.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
// x[index] along dim (removes the dim).
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& sizes);  // -1 keeps a size; new leading dims allowed
Tensor squeeze(const Tensor& x, int64_t dim);        // no-op if that dim is not 1
Tensor squeeze(const Tensor& x);                     // all size-1 dims
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor contiguous(const Tensor& x);  // x itself when already contiguous
Tensor clone(const Tensor& x);       // always a fresh contiguous copy (differentiable)
Tensor to_device(const Tensor& x, Device device);  // differentiable

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// Pieces of `split_size` along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);
std::vector<Tensor> split_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);  // sizes as torch.chunk

// Copies src (broadcast to dst's shape, cast to dst's dtype, any device) into the view dst. No autograd.
void copy_into(const Tensor& dst, const Tensor& src);

}  // namespace cxr::tensor
