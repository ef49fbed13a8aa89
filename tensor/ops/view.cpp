// Shape and view ops with their backward. View ops build a new TensorImpl over the same storage; their
// backward places the gradient back into the input's shape (reshape back, inverse permutation, zero-padded
// scatter for slices, sum over expanded dims).
#include "tensor/ops/view.h"

#include <algorithm>
#include <numeric>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"

namespace cxr::tensor {

namespace {

Tensor make_view_of(const Tensor& x, const Shape& sizes, const Shape& strides, int64_t offset) {
    return Tensor::make_view(x.storage(), sizes, strides, offset, x.dtype());
}

Shape infer_size(const Shape& sizes, int64_t numel) {
    Shape out = sizes;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == -1) {
            CXR_CHECK(infer < 0, "shape ", shape_str(sizes), " has more than one -1");
            infer = (int64_t)i;
        } else {
            CXR_CHECK(out[i] >= 0, "invalid size in shape ", shape_str(sizes));
            known *= out[i];
        }
    }
    if (infer >= 0) {
        CXR_CHECK(known != 0 && numel % known == 0, "shape ", shape_str(sizes), " is invalid for ", numel, " elements");
        out[infer] = numel / known;
    }
    CXR_CHECK(shape_numel(out) == numel, "shape ", shape_str(sizes), " is invalid for an input of ", numel,
              " elements");
    return out;
}

// Strides for viewing (sizes, strides) as new_sizes without a copy, or false if impossible. Contiguous runs of the
// old shape (chunks whose dims are stride-compatible) must map onto whole runs of the new shape.
bool view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes, Shape& new_strides) {
    new_strides.assign(new_sizes.size(), 0);
    if (shape_numel(sizes) == 0 || sizes.empty()) {
        new_strides = contiguous_strides(new_sizes);
        return true;
    }
    int64_t view_d = (int64_t)new_sizes.size() - 1;
    int64_t chunk_base_stride = strides.back();
    int64_t tensor_numel = 1, view_numel = 1;
    for (int64_t d = (int64_t)sizes.size() - 1; d >= 0; --d) {
        tensor_numel *= sizes[d];
        if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
                new_strides[view_d] = view_numel * chunk_base_stride;
                view_numel *= new_sizes[view_d];
                --view_d;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& sizes) {
    Shape shape = infer_size(sizes, x.numel());
    Shape st;
    CXR_CHECK(view_strides(x.sizes(), x.strides(), shape, st), "view: cannot view a tensor of shape ",
              shape_str(x.sizes()), " with strides ", shape_str(x.strides()), " as ", shape_str(shape),
              " without a copy; use reshape()");
    Tensor out = make_view_of(x, shape, st, x.offset());
    return record("view", out, {x}, [in = x.sizes()](const Tensor& g) -> std::vector<Tensor> {
        return {reshape(g, in)};
    });
}

Tensor reshape(const Tensor& x, const Shape& sizes) {
    Shape shape = infer_size(sizes, x.numel());
    Shape st;
    if (view_strides(x.sizes(), x.strides(), shape, st)) return view(x, shape);
    return view(contiguous(x), shape);
}

Tensor permute(const Tensor& x, const Shape& dims) {
    const int64_t n = x.dim();
    CXR_CHECK((int64_t)dims.size() == n, "permute: ", dims.size(), " dims given for a ", n, "-d tensor");
    Shape sizes(n), strides(n), inverse(n);
    std::vector<bool> used(n, false);
    for (int64_t i = 0; i < n; ++i) {
        int64_t d = wrap_dim(dims[i], n);
        CXR_CHECK(!used[d], "permute: dim ", d, " repeated in ", shape_str(dims));
        used[d] = true;
        sizes[i] = x.size(d);
        strides[i] = x.stride(d);
        inverse[d] = i;
    }
    Tensor out = make_view_of(x, sizes, strides, x.offset());
    return record("permute", out, {x}, [inverse](const Tensor& g) -> std::vector<Tensor> {
        return {permute(g, inverse)};
    });
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
    Shape dims(x.dim());
    std::iota(dims.begin(), dims.end(), 0);
    if (x.dim() == 0) return x;
    std::swap(dims[wrap_dim(d0, x.dim())], dims[wrap_dim(d1, x.dim())]);
    return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
    dim = wrap_dim(dim, x.dim());
    CXR_CHECK(step > 0, "slice: step must be positive, got ", step);
    const int64_t n = x.size(dim);
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, start, n);
    Shape sizes = x.sizes(), strides = x.strides();
    sizes[dim] = (end - start + step - 1) / step;
    strides[dim] *= step;
    Tensor out = make_view_of(x, sizes, strides, x.offset() + start * x.stride(dim));
    return record("slice", out, {x},
                  [in = x.sizes(), dt = x.dtype(), dim, start, end, step](const Tensor& g) -> std::vector<Tensor> {
                      Tensor gx = zeros(in, Options(g.dtype(), g.device()));
                      copy_into(slice(gx, dim, start, end, step), g);
                      return {gx};
                  });
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
    dim = wrap_dim(dim, x.dim());
    if (start < 0) start += x.size(dim);
    CXR_CHECK(start >= 0 && length >= 0 && start + length <= x.size(dim), "narrow: [", start, ", ", start + length,
              ") out of range for dim ", dim, " of size ", x.size(dim));
    return slice(x, dim, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
    dim = wrap_dim(dim, x.dim());
    const int64_t n = x.size(dim);
    if (index < 0) index += n;
    CXR_CHECK(index >= 0 && index < n, "select: index ", index, " out of range for dim ", dim, " of size ", n);
    return squeeze(narrow(x, dim, index, 1), dim);
}

Tensor expand(const Tensor& x, const Shape& sizes) {
    const int64_t n = (int64_t)sizes.size();
    CXR_CHECK(n >= x.dim(), "expand: target ", shape_str(sizes), " has fewer dims than ", shape_str(x.sizes()));
    const int64_t lead = n - x.dim();
    Shape out_sizes(n), out_strides(n);
    for (int64_t i = 0; i < n; ++i) {
        if (i < lead) {
            CXR_CHECK(sizes[i] >= 0, "expand: -1 not allowed for new leading dims");
            out_sizes[i] = sizes[i];
            out_strides[i] = 0;
            continue;
        }
        int64_t src = x.size(i - lead);
        CXR_CHECK(sizes[i] >= -1, "expand: invalid size ", sizes[i], " in ", shape_str(sizes));
        int64_t want = sizes[i] == -1 ? src : sizes[i];
        CXR_CHECK(src == want || src == 1, "expand: cannot expand ", shape_str(x.sizes()), " to ", shape_str(sizes));
        out_sizes[i] = want;
        out_strides[i] = (src == want) ? x.stride(i - lead) : 0;
    }
    if (out_sizes == x.sizes()) return x;
    Tensor out = make_view_of(x, out_sizes, out_strides, x.offset());
    return record("expand", out, {x}, [in = x.sizes()](const Tensor& g) -> std::vector<Tensor> {
        return {sum_to(g, in)};
    });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
    if (x.dim() == 0) return x;
    dim = wrap_dim(dim, x.dim());
    if (x.size(dim) != 1) return x;
    Shape sizes = x.sizes();
    sizes.erase(sizes.begin() + dim);
    return reshape(x, sizes);
}

Tensor squeeze(const Tensor& x) {
    Shape sizes;
    for (int64_t s : x.sizes())
        if (s != 1) sizes.push_back(s);
    return reshape(x, sizes);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
    dim = wrap_dim(dim, x.dim() + 1);
    Shape sizes = x.sizes();
    sizes.insert(sizes.begin() + dim, 1);
    return reshape(x, sizes);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
    if (x.dim() == 0) return reshape(x, {1});
    start_dim = wrap_dim(start_dim, x.dim());
    end_dim = wrap_dim(end_dim, x.dim());
    CXR_CHECK(start_dim <= end_dim, "flatten: start_dim after end_dim");
    Shape sizes(x.sizes().begin(), x.sizes().begin() + start_dim);
    int64_t merged = 1;
    for (int64_t d = start_dim; d <= end_dim; ++d) merged *= x.size(d);
    sizes.push_back(merged);
    sizes.insert(sizes.end(), x.sizes().begin() + end_dim + 1, x.sizes().end());
    return reshape(x, sizes);
}

void copy_into(const Tensor& dst, const Tensor& src) {
    NoGradGuard ng;
    Tensor s = expand(src, dst.sizes());
    if (s.device() == dst.device()) {
        get_kernel<CastKernel>("cast", dst.device())(s, dst);
        return;
    }
    // Across devices: make a contiguous buffer of dst's dtype on the source device, transfer, then place it.
    Tensor packed = cast(s, dst.dtype()).contiguous();
    Tensor landed = dst.is_contiguous() ? dst : Tensor::empty(dst.sizes(), dst.dtype(), dst.device());
    Backend& b = backend_for(dst.is_cpu() ? src.device().type : dst.device().type);
    b.copy(landed.raw_data(), landed.device(), packed.raw_data(), packed.device(), packed.numel() * packed.element_size());
    if (!landed.same(dst)) get_kernel<CastKernel>("cast", dst.device())(landed, dst);
}

Tensor contiguous(const Tensor& x) {
    if (x.is_contiguous()) return x;
    return clone(x);
}

Tensor clone(const Tensor& x) {
    Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
    copy_into(out, x);
    return record("clone", out, {x}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

Tensor to_device(const Tensor& x, Device device) {
    if (x.device() == device) return x;
    Tensor out = Tensor::empty(x.sizes(), x.dtype(), device);
    copy_into(out, x);
    return record("to_device", out, {x}, [from = x.device()](const Tensor& g) -> std::vector<Tensor> {
        return {to_device(g, from)};
    });
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
    CXR_CHECK(!xs.empty(), "cat: empty list of tensors");
    const Tensor& first = xs[0];
    CXR_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated (use stack)");
    dim = wrap_dim(dim, first.dim());
    DType dt = first.dtype();
    Shape sizes = first.sizes();
    int64_t total = 0;
    for (const Tensor& t : xs) {
        CXR_CHECK(t.dim() == first.dim(), "cat: tensors have different numbers of dims (", shape_str(first.sizes()),
                  " vs ", shape_str(t.sizes()), ")");
        CXR_CHECK(t.device() == first.device(), "cat: tensors on different devices");
        for (int64_t d = 0; d < t.dim(); ++d)
            CXR_CHECK(d == dim || t.size(d) == sizes[d], "cat: shape ", shape_str(t.sizes()), " does not match ",
                      shape_str(sizes), " outside dim ", dim);
        total += t.size(dim);
        dt = promote_types(dt, t.dtype());
    }
    sizes[dim] = total;
    Tensor out = Tensor::empty(sizes, dt, first.device());
    std::vector<int64_t> lengths;
    int64_t at = 0;
    for (const Tensor& t : xs) {
        copy_into(narrow(out.detach(), dim, at, t.size(dim)), t);
        lengths.push_back(t.size(dim));
        at += t.size(dim);
    }
    std::vector<DType> dtypes;
    for (const Tensor& t : xs) dtypes.push_back(t.dtype());
    return record("cat", out, xs, [lengths, dim, dtypes](const Tensor& g) -> std::vector<Tensor> {
        std::vector<Tensor> grads;
        int64_t start = 0;
        for (size_t i = 0; i < lengths.size(); ++i) {
            grads.push_back(cast(narrow(g, dim, start, lengths[i]), dtypes[i]));
            start += lengths[i];
        }
        return grads;
    });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
    CXR_CHECK(!xs.empty(), "stack: empty list of tensors");
    dim = wrap_dim(dim, xs[0].dim() + 1);
    std::vector<Tensor> us;
    for (const Tensor& t : xs) {
        CXR_CHECK(t.sizes() == xs[0].sizes(), "stack: shapes differ (", shape_str(xs[0].sizes()), " vs ",
                  shape_str(t.sizes()), ")");
        us.push_back(unsqueeze(t, dim));
    }
    return cat(us, dim);
}

std::vector<Tensor> split_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
    dim = wrap_dim(dim, x.dim());
    int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
    CXR_CHECK(total == x.size(dim), "split: sizes sum to ", total, " but dim ", dim, " has size ", x.size(dim));
    std::vector<Tensor> out;
    int64_t at = 0;
    for (int64_t s : sizes) {
        out.push_back(narrow(x, dim, at, s));
        at += s;
    }
    return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
    CXR_CHECK(split_size > 0, "split: split_size must be positive");
    dim = wrap_dim(dim, x.dim());
    std::vector<int64_t> sizes;
    for (int64_t at = 0; at < x.size(dim); at += split_size) sizes.push_back(std::min(split_size, x.size(dim) - at));
    if (sizes.empty()) sizes.push_back(0);  // an empty dim splits into one empty piece, as torch
    return split_sizes(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
    CXR_CHECK(chunks > 0, "chunk: chunks must be positive");
    dim = wrap_dim(dim, x.dim());
    int64_t size = (x.size(dim) + chunks - 1) / chunks;
    return split(x, std::max<int64_t>(size, 1), dim);
}

}  // namespace cxr::tensor
