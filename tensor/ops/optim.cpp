// The fused optimizer op family ("optim"): argument checks for adam_step_ and the dispatch to the device's
// "adam_step" kernel (formulas in tensor/ops/optim.h; CPU kernel tensor/cpu/optim.cpp, CUDA kernel
// tensor/cuda/optim.cu).
#include "tensor/ops/optim.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {

// Tensor i of list `what` is defined, has params[i]'s shape, dtype and device and (unless it is a gradient) is
// contiguous.
void check_like(const char* what, size_t i, const Tensor& t, const Tensor& param, bool need_contiguous) {
    CXR_CHECK(t.defined(), "adam_step_: ", what, "[", i, "] is undefined");
    CXR_CHECK(t.sizes() == param.sizes(), "adam_step_: ", what, "[", i, "] has shape ", shape_str(t.sizes()),
              " but params[", i, "] has shape ", shape_str(param.sizes()));
    CXR_CHECK(t.device() == param.device(), "adam_step_: ", what, "[", i, "] is on ", t.device().str(),
              " but params[", i, "] is on ", param.device().str());
    if (need_contiguous) {
        CXR_CHECK(t.dtype() == param.dtype(), "adam_step_: ", what, "[", i, "] is ", dtype_name(t.dtype()),
                  " but params[", i, "] is ", dtype_name(param.dtype()));
        CXR_CHECK(t.is_contiguous(), "adam_step_: ", what, "[", i,
                  "] is not contiguous (state tensors are updated in place)");
    } else {
        CXR_CHECK(is_floating(t.dtype()), "adam_step_: ", what, "[", i, "] must be floating, got ",
                  dtype_name(t.dtype()));
    }
}

}  // namespace

void adam_step_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                const std::vector<Tensor>& max_exp_avg_sqs, const AdamStepParams& p) {
    const size_t n = params.size();
    CXR_CHECK(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n,
              "adam_step_: the lists differ in length (params ", n, ", grads ", grads.size(), ", exp_avgs ",
              exp_avgs.size(), ", exp_avg_sqs ", exp_avg_sqs.size(), ")");
    CXR_CHECK(max_exp_avg_sqs.size() == (p.amsgrad ? n : 0), "adam_step_: max_exp_avg_sqs has ",
              max_exp_avg_sqs.size(), " tensors; expected ", p.amsgrad ? n : 0,
              p.amsgrad ? " (one per parameter with amsgrad)" : " (it is used only with amsgrad)");
    CXR_CHECK(p.step >= 1, "adam_step_: step count must be >= 1 (the count after this update), got ", p.step);
    CXR_CHECK(p.lr >= 0.0 && std::isfinite(p.lr), "adam_step_: invalid learning rate ", p.lr);
    CXR_CHECK(p.beta1 >= 0.0 && p.beta1 < 1.0, "adam_step_: invalid beta1 ", p.beta1);
    CXR_CHECK(p.beta2 >= 0.0 && p.beta2 < 1.0, "adam_step_: invalid beta2 ", p.beta2);
    CXR_CHECK(p.eps >= 0.0, "adam_step_: invalid eps ", p.eps);
    CXR_CHECK(p.weight_decay >= 0.0, "adam_step_: invalid weight_decay ", p.weight_decay);
    if (n == 0) return;

    const DType dt = params[0].defined() ? params[0].dtype() : DType::f32;
    const Device dev = params[0].defined() ? params[0].device() : Device::cpu();
    std::vector<Tensor> g(n);  // the gradients in the param dtype, contiguous
    {
        NoGradGuard ng;
        for (size_t i = 0; i < n; ++i) {
            const Tensor& q = params[i];
            CXR_CHECK(q.defined(), "adam_step_: params[", i, "] is undefined");
            CXR_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::f64, "adam_step_: params[", i, "] is ",
                      dtype_name(q.dtype()), "; the fused update supports f32 and f64 (use the composed path)");
            CXR_CHECK(q.dtype() == dt, "adam_step_: params[", i, "] is ", dtype_name(q.dtype()), " but params[0] is ",
                      dtype_name(dt), " (one dtype per call)");
            CXR_CHECK(q.device() == dev, "adam_step_: params[", i, "] is on ", q.device().str(),
                      " but params[0] is on ", dev.str(), " (one device per call)");
            CXR_CHECK(q.is_contiguous(), "adam_step_: params[", i,
                      "] is not contiguous (parameters are updated in place)");
            check_like("grads", i, grads[i], q, false);
            check_like("exp_avgs", i, exp_avgs[i], q, true);
            check_like("exp_avg_sqs", i, exp_avg_sqs[i], q, true);
            if (p.amsgrad) check_like("max_exp_avg_sqs", i, max_exp_avg_sqs[i], q, true);
            g[i] = contiguous(cast(grads[i].detach(), dt));
        }
    }
    get_kernel<AdamStepKernel>("adam_step", dev)(params, g, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, p);
}

}  // namespace cxr::tensor
