// Runs one PyTorch fixture case (tests/fixtures/tools/fixture_common.py layout) against a cxr op:
//   <case>.in0, .in1, ...  inputs (float64, or integer/bool stored as they are)
//   <case>.out             the reference output
//   <case>.w               the weighting w of the scalar loss L = sum(out * w)
//   <case>.grad<i>         dL/d in<i> (only for floating inputs that receive a gradient)
// The floating inputs are cast to `dtype` (f64 checks against the fixture at f64 tolerances, f32 runs the same
// case in single precision against the f64 reference), marked requires_grad, passed to `fn`, and the output and
// every stored gradient are compared BY NAME with |a - b| <= atol + rtol |ref|.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tests/support/testing.h"

#include "tensor/dtype.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/tensor.h"

namespace cxr::testing {

using FixtureFn = std::function<tensor::Tensor(const std::vector<tensor::Tensor>&)>;

struct Tol {
    double atol;
    double rtol;
};

// Tolerances of a single-precision run against the double-precision reference.
inline Tol f32_tol() { return {2e-5, 2e-5}; }

// Checks case `name` of fixture file `fx` in `dtype`; `tol` applies to the output and to every gradient.
inline void check_fixture_case(const Fixtures& fx, const std::string& name, const FixtureFn& fn, tensor::DType dtype,
                               Tol tol) {
    using namespace cxr::tensor;
    INFO("fixture case '" << name << "' in " << dtype_name(dtype) << " (" << fx.path() << ")");
    std::vector<Tensor> inputs;
    for (int i = 0; fx.has(name + ".in" + std::to_string(i)); ++i) {
        Tensor t = fx.get(name + ".in" + std::to_string(i));
        if (is_floating(t.dtype())) {
            t = cast(t, dtype).clone();  // a fresh leaf of the run's dtype
            t.set_requires_grad(true);
        }
        inputs.push_back(t);
    }
    REQUIRE(!inputs.empty());
    Tensor out = fn(inputs);
    Tensor ref = fx.get(name + ".out");
    {
        INFO("output of " << name);
        if (is_floating(ref.dtype()) && is_floating(out.dtype())) {
            CXR_EXPECT_CLOSE(out, ref, tol.atol, tol.rtol);
        } else {
            // integer/bool results: exact, and of the same dtype as PyTorch's
            CHECK(dtype_name(out.dtype()) == std::string(dtype_name(ref.dtype())));
            CXR_EXPECT_CLOSE(out, ref, 0.0, 0.0);
        }
    }
    if (!fx.has(name + ".w")) return;
    REQUIRE(out.requires_grad());
    Tensor w = cast(fx.get(name + ".w"), out.dtype());
    sum(mul(out, w)).backward();
    for (size_t i = 0; i < inputs.size(); ++i) {
        const std::string gname = name + ".grad" + std::to_string(i);
        if (!fx.has(gname)) continue;
        INFO("gradient " << gname);
        Tensor g = inputs[i].grad();
        REQUIRE(g.defined());
        CHECK(g.dtype() == dtype);
        CXR_EXPECT_CLOSE(g, fx.get(gname), tol.atol, tol.rtol);
    }
}

}  // namespace cxr::testing
