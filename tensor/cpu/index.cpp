// CPU reference kernels of the index family (tensor/ops/index.h): index_select / index_add over a contiguous
// [outer, n, inner] view, and gather / scatter_add walking the index tensor's coordinates. Every index is
// checked against the size of the indexed dimension before it is used. Scatter-adds run sequentially in index
// order, so duplicate indices accumulate deterministically; 16-bit floats are accumulated in float.
#include "tensor/cpu/kernels.h"

#include <algorithm>
#include <vector>

#include "tensor/ops/index.h"

namespace cxr::tensor::cpu {

namespace {

// Throws unless 0 <= i < n, naming the op, the bad value and the valid range.
inline void check_index(const char* op, int64_t i, int64_t dim, int64_t n) {
    if (i >= 0 && i < n) return;
    if (n == 0) CXR_FAIL(op, ": index ", i, " is out of range for dimension ", dim, " of size 0 (no valid index)");
    CXR_FAIL(op, ": index ", i, " is out of range for dimension ", dim, " of size ", n, " (valid range [0, ",
             n - 1, "])");
}

// [outer, n, inner] split of a shape around dim.
struct Split3 {
    int64_t outer = 1, n = 1, inner = 1;
};

Split3 split_at(const Shape& sizes, int64_t dim) {
    Split3 s;
    for (int64_t d = 0; d < (int64_t)sizes.size(); ++d) {
        if (d < dim)
            s.outer *= sizes[d];
        else if (d == dim)
            s.n = sizes[d];
        else
            s.inner *= sizes[d];
    }
    return s;
}

// Calls body(coord, linear) for every coordinate of `sizes` in row-major order (linear = 0, 1, 2, ...).
template <class Body>
void for_each_coord(const Shape& sizes, Body&& body) {
    const int64_t nd = (int64_t)sizes.size();
    int64_t total = 1;
    for (int64_t s : sizes) total *= s;
    std::vector<int64_t> coord(nd, 0);
    for (int64_t lin = 0; lin < total; ++lin) {
        body(coord, lin);
        for (int64_t d = nd - 1; d >= 0; --d) {
            if (++coord[d] < sizes[d]) break;
            coord[d] = 0;
        }
    }
}

// Element offset of `coord` in a tensor with `strides`, with coord[dim] replaced by `at`.
inline int64_t offset_with(const std::vector<int64_t>& coord, const Shape& strides, int64_t dim, int64_t at) {
    int64_t off = 0;
    for (size_t d = 0; d < coord.size(); ++d) off += ((int64_t)d == dim ? at : coord[d]) * strides[d];
    return off;
}

template <class T>
inline void add_to(T& dst, T v) {
    using C = typename ComputeType<T>::type;
    if constexpr (std::is_same_v<T, bool>)
        dst = dst || v;
    else
        dst = T(C(C(dst) + C(v)));
}

void index_select_kernel(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    const Split3 s = split_at(x.sizes(), dim);
    const int64_t k_count = index.numel();
    const int64_t* idx = index.data<int64_t>();
    for (int64_t k = 0; k < k_count; ++k) check_index("index_select", idx[k], dim, s.n);
    CXR_DISPATCH_ALL(x.dtype(), "index_select", {
        const scalar_t* xp = x.data<scalar_t>();
        scalar_t* op = out.data<scalar_t>();
        for (int64_t o = 0; o < s.outer; ++o)
            for (int64_t k = 0; k < k_count; ++k) {
                const scalar_t* src = xp + (o * s.n + idx[k]) * s.inner;
                std::copy(src, src + s.inner, op + (o * k_count + k) * s.inner);
            }
    });
}

void index_add_kernel(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    const Split3 s = split_at(out.sizes(), dim);
    const int64_t k_count = index.numel();
    const int64_t* idx = index.data<int64_t>();
    for (int64_t k = 0; k < k_count; ++k) check_index("index_add", idx[k], dim, s.n);
    CXR_DISPATCH_ALL(out.dtype(), "index_add", {
        scalar_t* op = out.data<scalar_t>();
        const scalar_t* sp = src.data<scalar_t>();
        for (int64_t o = 0; o < s.outer; ++o)
            for (int64_t k = 0; k < k_count; ++k) {
                scalar_t* dst = op + (o * s.n + idx[k]) * s.inner;
                const scalar_t* row = sp + (o * k_count + k) * s.inner;
                for (int64_t i = 0; i < s.inner; ++i) add_to(dst[i], row[i]);
            }
    });
}

void gather_kernel(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
    const int64_t n = x.size(dim);
    const int64_t* idx = index.data<int64_t>();
    CXR_DISPATCH_ALL(x.dtype(), "gather", {
        const scalar_t* xp = x.data<scalar_t>();
        scalar_t* op = out.data<scalar_t>();
        for_each_coord(index.sizes(), [&](const std::vector<int64_t>& c, int64_t lin) {
            const int64_t i = idx[lin];
            check_index("gather", i, dim, n);
            op[lin] = xp[offset_with(c, x.strides(), dim, i)];
        });
    });
}

void scatter_add_kernel(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
    const int64_t n = out.size(dim);
    const int64_t* idx = index.data<int64_t>();
    CXR_DISPATCH_ALL(out.dtype(), "scatter_add", {
        scalar_t* op = out.data<scalar_t>();
        const scalar_t* sp = src.data<scalar_t>();
        for_each_coord(index.sizes(), [&](const std::vector<int64_t>& c, int64_t lin) {
            const int64_t i = idx[lin];
            check_index("scatter_add", i, dim, n);
            add_to(op[offset_with(c, out.strides(), dim, i)], sp[offset_with(c, src.strides(), dim, c[dim])]);
        });
    });
}

}  // namespace

void register_index_kernels(KernelRegistry& r) {
    register_kernel<IndexSelectKernel>(r, "index_select", DeviceType::CPU, index_select_kernel);
    register_kernel<IndexAddKernel>(r, "index_add", DeviceType::CPU, index_add_kernel);
    register_kernel<GatherKernel>(r, "gather", DeviceType::CPU, gather_kernel);
    register_kernel<ScatterAddKernel>(r, "scatter_add", DeviceType::CPU, scatter_add_kernel);
}

}  // namespace cxr::tensor::cpu
