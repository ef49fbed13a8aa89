// CPU kernels for the elementwise family: fill, cast/copy, unary, binary, compare and where. They run the
// single-source functors of tensor/ops/elementwise_functors.h in the strided loop of loops.h. Operands arrive
// already broadcast to the output's shape (stride 0 on broadcast dims) and, except for cast, in the output's
// dtype; 16-bit floats are computed in float.
#include "tensor/cpu/kernels.h"

#include <type_traits>

#include "tensor/cpu/loops.h"
#include "tensor/ops/elementwise.h"

namespace cxr::tensor::cpu {

namespace {


void fill_kernel(const Tensor& out, double value) {
    CXR_DISPATCH_ALL(out.dtype(), "fill", {
        scalar_t v = convert_value<scalar_t>(value);
        scalar_t* p = out.data<scalar_t>();
        strided_loop<1>(out.sizes(), {out.strides()}, [&](const std::array<int64_t, 1>& o) { p[o[0]] = v; });
    });
}

void cast_kernel(const Tensor& src, const Tensor& dst) {
    CXR_DISPATCH_ALL(src.dtype(), "cast", {
        using src_t = scalar_t;
        const src_t* s = src.data<src_t>();
        CXR_DISPATCH_ALL(dst.dtype(), "cast", {
            scalar_t* d = dst.data<scalar_t>();
            strided_loop<2>(dst.sizes(), {dst.strides(), src.strides()},
                            [&](const std::array<int64_t, 2>& o) { d[o[0]] = convert_value<scalar_t>(s[o[1]]); });
        });
    });
}

template <class F, class scalar_t>
void run_unary(const Tensor& x, const Tensor& out, const EwParams& p) {
    using C = typename ComputeType<scalar_t>::type;
    if constexpr (!ew::functor_supports<F, C>()) {
        CXR_FAIL("unary op on integer dtype ", dtype_name(out.dtype()), " is not supported");
    } else {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* op = out.data<scalar_t>();
    F f;
    strided_loop<2>(out.sizes(), {out.strides(), x.strides()}, [&](const std::array<int64_t, 2>& o) {
        op[o[0]] = scalar_t(f(C(xp[o[1]]), p));
    });
    }
}

template <class F>
void unary_typed(const Tensor& x, const Tensor& out, const EwParams& p) {
    CXR_DISPATCH_NUMERIC(out.dtype(), "unary", run_unary<F, scalar_t>(x, out, p));
}

void unary_kernel(UnaryOp op, const Tensor& x, const Tensor& out, const EwParams& p) {
    switch (op) {
#define CXR_CASE(name) \
    case UnaryOp::name: unary_typed<ew::name>(x, out, p); break;
        CXR_UNARY_OPS(CXR_CASE)
#undef CXR_CASE
    }
}

template <class F, class scalar_t>
void run_binary(const Tensor& a, const Tensor& b, const Tensor& out, const EwParams& p) {
    using C = typename ComputeType<scalar_t>::type;
    if constexpr (!ew::functor_supports<F, C>()) {
        CXR_FAIL("binary op on integer dtype ", dtype_name(out.dtype()), " is not supported");
    } else {
    const scalar_t* ap = a.data<scalar_t>();
    const scalar_t* bp = b.data<scalar_t>();
    scalar_t* op = out.data<scalar_t>();
    F f;
    strided_loop<3>(out.sizes(), {out.strides(), a.strides(), b.strides()}, [&](const std::array<int64_t, 3>& o) {
        op[o[0]] = scalar_t(f(C(ap[o[1]]), C(bp[o[2]]), p));
    });
    }
}

template <class F>
void binary_typed(const Tensor& a, const Tensor& b, const Tensor& out, const EwParams& p) {
    CXR_DISPATCH_NUMERIC(out.dtype(), "binary", run_binary<F, scalar_t>(a, b, out, p));
}

void binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, const EwParams& p) {
    switch (op) {
#define CXR_CASE(name) \
    case BinaryOp::name: binary_typed<ew::name>(a, b, out, p); break;
        CXR_BINARY_OPS(CXR_CASE)
#undef CXR_CASE
    }
}

template <class F, class scalar_t>
void run_compare(const Tensor& a, const Tensor& b, const Tensor& out) {
    using C = typename ComputeType<scalar_t>::type;
    const scalar_t* ap = a.data<scalar_t>();
    const scalar_t* bp = b.data<scalar_t>();
    bool* op = out.data<bool>();
    F f;
    strided_loop<3>(out.sizes(), {out.strides(), a.strides(), b.strides()},
                    [&](const std::array<int64_t, 3>& o) { op[o[0]] = f(C(ap[o[1]]), C(bp[o[2]])); });
}

template <class F>
void compare_typed(const Tensor& a, const Tensor& b, const Tensor& out) {
    CXR_DISPATCH_ALL(a.dtype(), "compare", run_compare<F, scalar_t>(a, b, out));
}

void compare_kernel(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
    switch (op) {
#define CXR_CASE(name) \
    case CompareOp::name: compare_typed<ew::name>(a, b, out); break;
        CXR_COMPARE_OPS(CXR_CASE)
#undef CXR_CASE
    }
}

void where_kernel(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
    const bool* cp = cond.data<bool>();
    CXR_DISPATCH_ALL(out.dtype(), "where", {
        const scalar_t* ap = a.data<scalar_t>();
        const scalar_t* bp = b.data<scalar_t>();
        scalar_t* op = out.data<scalar_t>();
        strided_loop<4>(out.sizes(), {out.strides(), cond.strides(), a.strides(), b.strides()},
                        [&](const std::array<int64_t, 4>& o) { op[o[0]] = cp[o[1]] ? ap[o[2]] : bp[o[3]]; });
    });
}

}  // namespace

void register_elementwise_kernels(KernelRegistry& r) {
    register_kernel<FillKernel>(r, "fill", DeviceType::CPU, fill_kernel);
    register_kernel<CastKernel>(r, "cast", DeviceType::CPU, cast_kernel);
    register_kernel<UnaryKernel>(r, "unary", DeviceType::CPU, unary_kernel);
    register_kernel<BinaryKernel>(r, "binary", DeviceType::CPU, binary_kernel);
    register_kernel<CompareKernel>(r, "compare", DeviceType::CPU, compare_kernel);
    register_kernel<WhereKernel>(r, "where", DeviceType::CPU, where_kernel);
}

}  // namespace cxr::tensor::cpu
