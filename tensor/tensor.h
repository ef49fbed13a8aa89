// Tensor: a cheap, shared handle to a strided view of typed storage on a device, plus autograd fields
// (DESIGN.md §3). Shapes and strides follow PyTorch order (NCHW); strides and offset count elements.
// Views (reshape, permute, narrow, expand, ...) share storage; kernels that need contiguity call contiguous().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"

namespace cxr::tensor {

using Shape = std::vector<int64_t>;

struct Node;  // autograd.h

// A block of device memory with the backend that frees it.
struct Storage {
    void* data = nullptr;
    size_t nbytes = 0;
    Device device;
    bool pinned = false;  // CPU storage in page-locked memory (tensor/backend.h allocate_pinned_host)
    Storage(size_t nbytes, Device device);
    // CPU storage, pinned when a backend can pin host memory and pageable otherwise (see `pinned`).
    struct PinnedHost {};
    Storage(size_t nbytes, PinnedHost);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape sizes;
    Shape strides;
    int64_t offset = 0;  // in elements
    DType dtype = DType::f32;
    // autograd
    bool requires_grad = false;
    bool retains_grad = false;
    std::shared_ptr<TensorImpl> grad;
    std::shared_ptr<Node> grad_fn;             // the node that made this tensor (null for leaves)
    std::weak_ptr<Node> grad_accumulator;      // leaves: the node that accumulates into .grad
    std::string name;                          // optional, for printing and errors
};

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // Uninitialised tensor with contiguous strides.
    static Tensor empty(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());
    // Uninitialised CPU tensor in pinned (page-locked) host memory when a CUDA device is present, in ordinary
    // memory otherwise; is_pinned() tells which. For batches that are copied to the GPU.
    static Tensor empty_pinned(const Shape& sizes, DType dtype = DType::f32);
    // A view of existing storage.
    static Tensor make_view(const std::shared_ptr<Storage>& storage, const Shape& sizes, const Shape& strides,
                            int64_t offset, DType dtype);

    bool defined() const { return impl_ != nullptr; }
    const Shape& sizes() const { return impl().sizes; }
    const Shape& shape() const { return impl().sizes; }
    const Shape& strides() const { return impl().strides; }
    int64_t size(int64_t dim) const;    // negative dims count from the end
    int64_t stride(int64_t dim) const;
    int64_t dim() const { return (int64_t)impl().sizes.size(); }
    int64_t numel() const;
    int64_t offset() const { return impl().offset; }
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().storage->device; }
    bool is_cpu() const { return device().is_cpu(); }
    bool is_pinned() const { return impl().storage->pinned; }
    bool is_cuda() const { return device().is_cuda(); }
    bool is_contiguous() const;
    size_t element_size() const { return dtype_size(dtype()); }
    const std::shared_ptr<Storage>& storage() const { return impl().storage; }

    // Raw pointer to the first element of this view (CPU or device address).
    void* raw_data() const;
    template <class T> T* data() const;

    // Value of a one-element tensor as a double (any dtype, any device).
    double item() const;
    // Copies the elements in row-major (logical) order to a host vector of T.
    template <class T> std::vector<T> to_vector() const;

    // ---- autograd ----
    bool requires_grad() const { return impl().requires_grad; }
    Tensor& set_requires_grad(bool on = true);
    bool is_leaf() const { return impl().grad_fn == nullptr; }
    Tensor grad() const;
    void set_grad(const Tensor& g);
    void zero_grad() { impl().grad.reset(); }
    const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
    void retain_grad();
    // Back-propagates from this tensor. A non-scalar needs an explicit gradient of its shape.
    void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
    // Same storage, cut from the graph.
    Tensor detach() const;

    // ---- conveniences that forward to the ops (tensor/ops/*.h) ----
    Tensor contiguous() const;
    Tensor to(DType dtype) const;
    Tensor to(Device device) const;
    Tensor clone() const;
    Tensor reshape(const Shape& sizes) const;
    Tensor view(const Shape& sizes) const;
    Tensor permute(const Shape& dims) const;
    Tensor transpose(int64_t d0, int64_t d1) const;
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
    Tensor expand(const Shape& sizes) const;
    Tensor squeeze(int64_t dim) const;
    Tensor unsqueeze(int64_t dim) const;
    Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

    // In-place, outside autograd (for optimizers, initialisers and buffers): copies src (broadcast, cast).
    Tensor& copy_(const Tensor& src);
    Tensor& fill_(double value);
    Tensor& zero_() { return fill_(0.0); }

    std::string str() const;  // a readable dump: shape, dtype, device and (abbreviated) values

    TensorImpl& impl() const;
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool same(const Tensor& o) const { return impl_ == o.impl_; }

private:
    std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Shape helpers.
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& sizes);
int64_t wrap_dim(int64_t dim, int64_t ndim);  // maps -1 to ndim-1, checks range
// Broadcast of two shapes by NumPy rules; throws naming both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);

}  // namespace cxr::tensor
