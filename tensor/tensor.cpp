// Tensor handle: storage allocation through the backend, shape/stride queries, element access for tests and
// printing, and the thin forwarding methods to the op functions.
#include "tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

Storage::Storage(size_t n, Device dev) : nbytes(n), device(dev) {
    data = backend_for(dev.type).allocate(n, dev);
}

Storage::Storage(size_t n, PinnedHost) : nbytes(n), device(Device::cpu()) {
    data = n ? allocate_pinned_host(n) : nullptr;
    pinned = data != nullptr;
    if (!pinned) data = backend_for(DeviceType::CPU).allocate(n, device);
}

Storage::~Storage() {
    if (!data) return;
    if (pinned)
        deallocate_pinned_host(data);
    else
        backend_for(device.type).deallocate(data, nbytes, device);
}

// ---- shape helpers ----
std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << "]";
    return os.str();
}

int64_t shape_numel(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

Shape contiguous_strides(const Shape& sizes) {
    Shape st(sizes.size());
    int64_t acc = 1;
    for (int64_t i = (int64_t)sizes.size() - 1; i >= 0; --i) {
        st[i] = acc;
        acc *= std::max<int64_t>(sizes[i], 1);
    }
    return st;
}

int64_t wrap_dim(int64_t dim, int64_t ndim) {
    int64_t lim = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1
    CXR_CHECK(dim >= -lim && dim < lim, "dimension ", dim, " out of range for a tensor with ", ndim, " dims");
    return dim < 0 ? dim + lim : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        CXR_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
                  " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

// ---- Tensor ----
Tensor Tensor::empty(const Shape& sizes, DType dtype, Device device) {
    for (int64_t s : sizes) CXR_CHECK(s >= 0, "negative size in shape ", shape_str(sizes));
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(shape_numel(sizes) * dtype_size(dtype), device);
    impl->sizes = sizes;
    impl->strides = contiguous_strides(sizes);
    impl->dtype = dtype;
    return Tensor(impl);
}

Tensor Tensor::empty_pinned(const Shape& sizes, DType dtype) {
    for (int64_t s : sizes) CXR_CHECK(s >= 0, "negative size in shape ", shape_str(sizes));
    auto storage = std::make_shared<Storage>(shape_numel(sizes) * dtype_size(dtype), Storage::PinnedHost{});
    return make_view(storage, sizes, contiguous_strides(sizes), 0, dtype);
}

Tensor Tensor::make_view(const std::shared_ptr<Storage>& storage, const Shape& sizes, const Shape& strides,
                         int64_t offset, DType dtype) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = storage;
    impl->sizes = sizes;
    impl->strides = strides;
    impl->offset = offset;
    impl->dtype = dtype;
    return Tensor(impl);
}

TensorImpl& Tensor::impl() const {
    CXR_CHECK(impl_, "use of an undefined tensor");
    return *impl_;
}

int64_t Tensor::size(int64_t d) const {
    CXR_CHECK(dim() > 0, "size(", d, ") of a 0-d tensor: it has no dimensions");
    return sizes()[wrap_dim(d, dim())];
}
int64_t Tensor::stride(int64_t d) const {
    CXR_CHECK(dim() > 0, "stride(", d, ") of a 0-d tensor: it has no dimensions");
    return strides()[wrap_dim(d, dim())];
}
int64_t Tensor::numel() const { return shape_numel(sizes()); }

bool Tensor::is_contiguous() const {
    int64_t expected = 1;
    for (int64_t i = dim() - 1; i >= 0; --i) {
        if (sizes()[i] == 1) continue;
        if (strides()[i] != expected) return false;
        expected *= sizes()[i];
    }
    return true;
}

void* Tensor::raw_data() const {
    return static_cast<char*>(impl().storage->data) + impl().offset * (int64_t)element_size();
}

template <class T> T* Tensor::data() const {
    CXR_CHECK(dtype_of<T>() == dtype(), "data<", dtype_name(dtype_of<T>()), ">() on a tensor of dtype ",
              dtype_name(dtype()));
    return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template Half* Tensor::data<Half>() const;
template BFloat16* Tensor::data<BFloat16>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;
template bool* Tensor::data<bool>() const;

template <class T> std::vector<T> Tensor::to_vector() const {
    NoGradGuard ng;
    Tensor c = cast(to_device(*this, Device::cpu()), dtype_of<T>()).contiguous();
    const T* p = c.data<T>();
    return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

double Tensor::item() const {
    CXR_CHECK(numel() == 1, "item() needs a tensor with one element, got shape ", shape_str(sizes()));
    return to_vector<double>()[0];
}

Tensor& Tensor::set_requires_grad(bool on) {
    CXR_CHECK(!on || is_floating(dtype()), "only floating tensors can require grad (dtype ", dtype_name(dtype()), ")");
    CXR_CHECK(is_leaf() || on, "cannot turn off requires_grad on a non-leaf tensor; use detach()");
    impl().requires_grad = on;
    return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
    if (!g.defined()) {
        impl().grad.reset();
        return;
    }
    CXR_CHECK(g.sizes() == sizes(), "grad shape ", shape_str(g.sizes()), " != tensor shape ", shape_str(sizes()));
    CXR_CHECK(g.dtype() == dtype() && g.device() == device(), "grad of dtype ", dtype_name(g.dtype()), " on ",
              g.device().str(), " for a tensor of dtype ", dtype_name(dtype()), " on ", device().str());
    impl().grad = g.impl_ptr();
}

void Tensor::retain_grad() {
    CXR_CHECK(requires_grad(), "retain_grad() on a tensor that does not require grad");
    if (!is_leaf()) impl().retains_grad = true;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
    Tensor g = gradient;
    if (!g.defined()) {
        CXR_CHECK(numel() == 1, "backward() without a gradient needs a one-element tensor, got shape ",
                  shape_str(sizes()), "; pass the gradient of the output");
        g = full(sizes(), 1.0, Options(dtype(), device()));
    }
    run_backward(*this, g, retain_graph);
}

Tensor Tensor::detach() const {
    Tensor t = make_view(storage(), sizes(), strides(), offset(), dtype());
    return t;
}

Tensor Tensor::contiguous() const { return tensor::contiguous(*this); }
Tensor Tensor::to(DType d) const { return cast(*this, d); }
Tensor Tensor::to(Device d) const { return to_device(*this, d); }
Tensor Tensor::clone() const { return tensor::clone(*this); }
Tensor Tensor::reshape(const Shape& s) const { return tensor::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const { return tensor::view(*this, s); }
Tensor Tensor::permute(const Shape& d) const { return tensor::permute(*this, d); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return tensor::transpose(*this, a, b); }
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return tensor::narrow(*this, d, s, l); }
Tensor Tensor::expand(const Shape& s) const { return tensor::expand(*this, s); }
Tensor Tensor::squeeze(int64_t d) const { return tensor::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return tensor::unsqueeze(*this, d); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return tensor::flatten(*this, s, e); }

Tensor& Tensor::copy_(const Tensor& src) {
    CXR_CHECK(!(grad_enabled() && requires_grad()),
              "copy_ into a tensor that requires grad while gradients are recorded; wrap it in NoGradGuard");
    copy_into(*this, src);
    return *this;
}

Tensor& Tensor::fill_(double value) {
    CXR_CHECK(!(grad_enabled() && requires_grad()),
              "fill_ on a tensor that requires grad while gradients are recorded; wrap it in NoGradGuard");
    get_kernel<FillKernel>("fill", device())(*this, value);
    return *this;
}

std::string Tensor::str() const {
    std::ostringstream os;
    if (!defined()) return "Tensor(undefined)";
    os << "Tensor(shape=" << shape_str(sizes()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
    if (requires_grad()) os << ", requires_grad" << (grad_fn() ? ", grad_fn=" + grad_fn()->name : "");
    os << ")\n";
    std::vector<double> v = to_vector<double>();
    const int64_t limit = 64;
    os << std::setprecision(6);
    // Row-major listing with brackets per dimension, abbreviated after `limit` elements.
    Shape st = contiguous_strides(sizes());
    for (int64_t i = 0; i < (int64_t)v.size() && i < limit; ++i) {
        for (int64_t d = 0; d < dim(); ++d)
            if (i % (st[d] * sizes()[d]) == 0) os << "[";
        os << v[i];
        int closes = 0;
        for (int64_t d = 0; d < dim(); ++d)
            if ((i + 1) % (st[d] * sizes()[d]) == 0) ++closes;
        for (int c = 0; c < closes; ++c) os << "]";
        if (i + 1 < (int64_t)v.size()) os << (closes ? "\n" : ", ");
    }
    if ((int64_t)v.size() > limit) os << "... (" << v.size() << " elements)";
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace cxr::tensor
