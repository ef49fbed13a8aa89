// CPU reference kernels for softmax / log-softmax (formulas in tensor/ops/softmax.h). The tensor is contiguous
// and seen as [outer, n, inner]; each of the outer·inner rows (stride `inner`) is handled independently with
// the maximum subtracted and the sums accumulated in double. Rows run in parallel (OpenMP) when large.
#include <cmath>
#include <limits>

#include "tensor/cpu/kernels.h"
#include "tensor/ops/softmax.h"

namespace cxr::tensor::cpu {

namespace {

struct RowGeometry {
    int64_t outer = 1, n = 1, inner = 1;
};

RowGeometry geometry(const Tensor& x, int64_t dim) {
    RowGeometry g;
    g.n = x.size(dim);
    for (int64_t d = 0; d < dim; ++d) g.outer *= x.size(d);
    for (int64_t d = dim + 1; d < x.dim(); ++d) g.inner *= x.size(d);
    return g;
}

constexpr int64_t kParallelWork = 1 << 15;  // elements below which a single thread is faster

template <class T>
void softmax_forward(const T* x, T* y, RowGeometry g, bool log) {
    using C = typename ComputeType<T>::type;
    const int64_t rows = g.outer * g.inner;
#pragma omp parallel for if (rows * g.n > kParallelWork)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t base = (r / g.inner) * g.n * g.inner + r % g.inner;
        const T* xr = x + base;
        T* yr = y + base;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < g.n; ++j) {
            const double v = (double)C(xr[j * g.inner]);
            if (v > m) m = v;
        }
        double s = 0.0;
        for (int64_t j = 0; j < g.n; ++j) s += std::exp((double)C(xr[j * g.inner]) - m);
        if (log) {
            const double log_s = std::log(s);
            for (int64_t j = 0; j < g.n; ++j) yr[j * g.inner] = T(C((double)C(xr[j * g.inner]) - m - log_s));
        } else {
            const double inv_s = 1.0 / s;
            for (int64_t j = 0; j < g.n; ++j)
                yr[j * g.inner] = T(C(std::exp((double)C(xr[j * g.inner]) - m) * inv_s));
        }
    }
}

template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, RowGeometry g, bool log) {
    using C = typename ComputeType<T>::type;
    const int64_t rows = g.outer * g.inner;
#pragma omp parallel for if (rows * g.n > kParallelWork)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t base = (r / g.inner) * g.n * g.inner + r % g.inner;
        const T* yr = y + base;
        const T* gr = dy + base;
        T* dr = dx + base;
        double acc = 0.0;  // softmax: Σ g·y; log_softmax: Σ g
        for (int64_t j = 0; j < g.n; ++j) {
            const double gj = (double)C(gr[j * g.inner]);
            acc += log ? gj : gj * (double)C(yr[j * g.inner]);
        }
        for (int64_t j = 0; j < g.n; ++j) {
            const double yj = (double)C(yr[j * g.inner]);
            const double gj = (double)C(gr[j * g.inner]);
            dr[j * g.inner] = T(C(log ? gj - std::exp(yj) * acc : yj * (gj - acc)));
        }
    }
}

void softmax_kernel(const Tensor& x, const Tensor& out, int64_t dim, bool log) {
    CXR_DISPATCH_FLOAT(x.dtype(), "softmax", {
        softmax_forward<scalar_t>(x.data<scalar_t>(), out.data<scalar_t>(), geometry(x, dim), log);
    });
}

void softmax_backward_kernel(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t dim, bool log) {
    CXR_CHECK(y.dtype() == dy.dtype(), "softmax backward: gradient dtype ", dtype_name(dy.dtype()),
              " differs from the output's ", dtype_name(y.dtype()));
    CXR_DISPATCH_FLOAT(y.dtype(), "softmax_backward", {
        softmax_backward<scalar_t>(y.data<scalar_t>(), dy.data<scalar_t>(), dx.data<scalar_t>(), geometry(y, dim),
                                   log);
    });
}

}  // namespace

void register_softmax_kernels(KernelRegistry& r) {
    register_kernel<SoftmaxKernel>(r, "softmax", DeviceType::CPU, softmax_kernel);
    register_kernel<SoftmaxBackwardKernel>(r, "softmax_backward", DeviceType::CPU, softmax_backward_kernel);
}

}  // namespace cxr::tensor::cpu
