// [gpu] The CUDA elementwise kernels (same single-source functors as the CPU) against the CPU reference, in f32,
// f64, f16 and bf16, on broadcast and non-contiguous operands; and the loud failure of ops that have no CUDA
// kernel yet. Skipped visibly on machines without a CUDA device.
#include "tests/support/testing.h"

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::random_input;

namespace {
const Device kGpu = Device::cuda(0);
const DType kFloatTypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16};
}  // namespace

TEST_CASE("cuda: every unary functor matches the CPU", "[gpu][elementwise]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : kFloatTypes) {
        Tensor x = random_input({7, 33}, 1, 0.1, 2.0, dt);  // positive: log/sqrt/rsqrt defined
        std::vector<UnaryOp> ops = {
#define CXR_ENTRY(name) UnaryOp::name,
            CXR_UNARY_OPS(CXR_ENTRY)
#undef CXR_ENTRY
        };
        for (UnaryOp op : ops) {
            EwParams p{0.3, 1.2};
            Tensor cpu = unary(op, x, p);
            Tensor gpu = unary(op, x.to(kGpu), p).to(Device::cpu());
            INFO("dtype " << dtype_name(dt) << " op " << (int)op);
            CXR_EXPECT_CLOSE(gpu, cpu, 2 * cxr::testing::default_atol(dt), 2 * cxr::testing::default_rtol(dt));
        }
    }
}

TEST_CASE("cuda: binary ops with broadcasting and non-contiguous operands match the CPU", "[gpu][elementwise]") {
    CXR_SKIP_WITHOUT_GPU();
    for (DType dt : kFloatTypes) {
        Tensor a = random_input({5, 9}, 2, 0.5, 2.0, dt).transpose(0, 1);  // [9, 5] non-contiguous
        Tensor b = random_input({1, 5}, 3, 0.5, 2.0, dt);
        for (auto f : {add, sub, mul, div, minimum, maximum}) {
            Tensor cpu = f(a, b);
            Tensor gpu = f(a.to(kGpu), b.to(kGpu)).to(Device::cpu());
            CXR_EXPECT_CLOSE(gpu, cpu, 2 * cxr::testing::default_atol(dt), 2 * cxr::testing::default_rtol(dt));
        }
        Tensor cmp = lt(a.to(kGpu), b.to(kGpu)).to(Device::cpu());
        CHECK(cmp.to_vector<bool>() == lt(a, b).to_vector<bool>());
        Tensor w = where(gt(a, 1.0), a, b);
        CXR_EXPECT_CLOSE(where(gt(a.to(kGpu), 1.0), a.to(kGpu), b.to(kGpu)).to(Device::cpu()), w, 0, 0);
    }
}

TEST_CASE("cuda: casts and fills agree with the CPU bit for bit", "[gpu][elementwise]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor x = random_input({64}, 4, -300.0, 300.0, DType::f32);
    for (DType dt : {DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::u8, DType::boolean}) {
        Tensor cpu = cast(x, dt);
        Tensor gpu = cast(x.to(kGpu), dt).to(Device::cpu());
        CHECK(gpu.to_vector<double>() == cpu.to_vector<double>());
    }
    CHECK(full({3, 3}, 2.5, Options(DType::bf16, kGpu)).to(Device::cpu()).to_vector<double>() ==
          std::vector<double>(9, 2.5));
}

TEST_CASE("cuda: autograd through elementwise ops on the GPU matches the CPU", "[gpu][elementwise][autograd]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor xc = random_input({4, 6}, 5, -1.0, 1.0, DType::f32).set_requires_grad();
    Tensor xg = xc.detach().to(kGpu).set_requires_grad();
    auto f = [](const Tensor& x) { return mul(silu(x), tanh(x)); };
    // an explicit upstream gradient (rather than sum()) keeps this test to the elementwise kernels
    Tensor g = ones({4, 6}, DType::f32);
    f(xc).backward(g);
    f(xg).backward(g.to(kGpu));
    CXR_EXPECT_CLOSE(xg.grad().to(Device::cpu()), xc.grad(), 1e-5, 1e-5);
}

// Every op of the CPU backend has a CUDA kernel now, so the registry seam itself is what is checked: a kernel name
// absent for CUDA is an error naming the op and the device, never a silent fallback.
TEST_CASE("cuda: an op without a CUDA kernel fails loudly, naming the op", "[gpu][backend]") {
    CXR_SKIP_WITHOUT_GPU();
    CHECK_THROWS_WITH(get_kernel<void()>("no_such_op", kGpu), Catch::Contains("no_such_op") && Catch::Contains("cuda"));
    for (const std::string& op : kernel_registry().ops(DeviceType::CPU)) {
        INFO("op " << op);
        CHECK(kernel_registry().find(op, DeviceType::CUDA) != nullptr);
    }
}

TEST_CASE("backend: CUDA tensors cannot be made in a build without CUDA", "[cpu][backend]") {
    if (backend_compiled(DeviceType::CUDA)) {
        SUCCEED("this build has the CUDA backend");
        return;
    }
    CHECK_THROWS_WITH(ones({2}, Options(DType::f32, Device::cuda(0))), Catch::Contains("no CUDA backend"));
}
