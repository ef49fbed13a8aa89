// CPU kernels of the conv family, registered as "conv2d_forward", "conv2d_backward_input" and
// "conv2d_backward_weight": thin adapters from tensors to the raw-pointer kernels of tensor/cpu/conv2d.h
// (math written there). The fast im2col + GEMM versions run by default; set_cpu_reference_kernels(true) or
// CXR_CPU_REFERENCE=1 selects the direct-loop references (double accumulation).
#include "tensor/cpu/conv2d.h"
#include "tensor/cpu/kernels.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/matmul.h"

namespace cxr::tensor::cpu {

namespace {

void check_contiguous(const char* what, std::initializer_list<const Tensor*> ts) {
    for (const Tensor* t : ts)
        CXR_CHECK(!t->defined() || t->is_contiguous(), what, ": CPU kernel expects contiguous tensors, got strides ",
                  shape_str(t->strides()), " for shape ", shape_str(t->sizes()));
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

void forward_kernel(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
    check_contiguous("conv2d_forward", {&x, &w, &bias, &y});
    const bool ref = cpu_reference_kernels();
    switch (x.dtype()) {
        case DType::f32:
            (ref ? conv2d_forward_reference<float> : conv2d_forward_fast<float>)(
                p, x.data<float>(), w.data<float>(), ptr_or_null<float>(bias), y.data<float>());
            break;
        case DType::f64:
            (ref ? conv2d_forward_reference<double> : conv2d_forward_fast<double>)(
                p, x.data<double>(), w.data<double>(), ptr_or_null<double>(bias), y.data<double>());
            break;
        default: CXR_FAIL("conv2d_forward: dtype ", dtype_name(x.dtype()), " is not supported on the CPU (f32, f64)");
    }
}

void backward_input_kernel(const Conv2dParams& p, const Tensor& grad_y, const Tensor& w, const Tensor& grad_x) {
    check_contiguous("conv2d_backward_input", {&grad_y, &w, &grad_x});
    const bool ref = cpu_reference_kernels();
    switch (grad_y.dtype()) {
        case DType::f32:
            (ref ? conv2d_backward_input_reference<float> : conv2d_backward_input_fast<float>)(
                p, grad_y.data<float>(), w.data<float>(), grad_x.data<float>());
            break;
        case DType::f64:
            (ref ? conv2d_backward_input_reference<double> : conv2d_backward_input_fast<double>)(
                p, grad_y.data<double>(), w.data<double>(), grad_x.data<double>());
            break;
        default:
            CXR_FAIL("conv2d_backward_input: dtype ", dtype_name(grad_y.dtype()),
                     " is not supported on the CPU (f32, f64)");
    }
}

void backward_weight_kernel(const Conv2dParams& p, const Tensor& x, const Tensor& grad_y, const Tensor& grad_w) {
    check_contiguous("conv2d_backward_weight", {&x, &grad_y, &grad_w});
    const bool ref = cpu_reference_kernels();
    switch (x.dtype()) {
        case DType::f32:
            (ref ? conv2d_backward_weight_reference<float> : conv2d_backward_weight_fast<float>)(
                p, x.data<float>(), grad_y.data<float>(), grad_w.data<float>());
            break;
        case DType::f64:
            (ref ? conv2d_backward_weight_reference<double> : conv2d_backward_weight_fast<double>)(
                p, x.data<double>(), grad_y.data<double>(), grad_w.data<double>());
            break;
        default:
            CXR_FAIL("conv2d_backward_weight: dtype ", dtype_name(x.dtype()),
                     " is not supported on the CPU (f32, f64)");
    }
}

}  // namespace

void register_conv_kernels(KernelRegistry& r) {
    register_kernel<Conv2dForwardKernel>(r, "conv2d_forward", DeviceType::CPU, forward_kernel);
    register_kernel<Conv2dBackwardInputKernel>(r, "conv2d_backward_input", DeviceType::CPU, backward_input_kernel);
    register_kernel<Conv2dBackwardWeightKernel>(r, "conv2d_backward_weight", DeviceType::CPU, backward_weight_kernel);
}

}  // namespace cxr::tensor::cpu
