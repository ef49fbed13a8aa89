// Runs PyTorch fixture cases (tests/fixtures/tools/fixture_common.py layout) against cxr ops:
//   <case>.in0, .in1, ...  inputs (float64, or integer/bool stored as they are)
//   <case>.out             the reference output
//   <case>.w               the weighting w of the scalar loss L = sum(out * w)
//   <case>.grad<i>         dL/d in<i> (only for floating inputs that receive a gradient)
//
// check_fixture_case() runs one case: the floating inputs are cast to `dtype` (f64 checks against the fixture at
// f64 tolerances, f32 runs the same case in single precision against the f64 reference), marked requires_grad,
// passed to `fn`, and the output and every stored gradient are compared BY NAME with |a - b| <= atol + rtol |ref|.
//
// A FixtureTable lists the cases of one op family: case name -> the cxr call that mirrors the Python lambda, with
// per-case tolerances for the f64 run and the f32 run. run_fixture_table() checks that the table and the fixture
// file list the same cases (so a case added on one side only is a failure, not a silent skip) and runs every
// case with check_fixture_case in the given dtype.
#pragma once

#include <functional>
#include <map>
#include <set>
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

struct FixtureEntry {
    FixtureFn fn;
    Tol f64{1e-10, 1e-8};
    Tol f32{2e-5, 2e-5};  // a single-precision run against the double-precision reference
    // false: the f32 run skips this case (for a case that means nothing in f32, e.g. an f64 -> f32 -> f64 round
    // trip); the f64 run and the coverage check still include it
    bool run_f32 = true;
};
using FixtureTable = std::map<std::string, FixtureEntry>;

// Runs `table` against the already opened fixture file `fx` (for tables whose entries read extra tensors of `fx`,
// e.g. a mask or running statistics; such entries may hold a reference to `fx`, which must outlive the call).
inline void run_fixture_table(const Fixtures& fx, const FixtureTable& table, tensor::DType dtype) {
    std::set<std::string> in_file;
    for (const std::string& name : fx.names_with_prefix(""))
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".out") == 0) in_file.insert(name.substr(0, name.size() - 4));
    std::set<std::string> in_table;
    for (const auto& kv : table) in_table.insert(kv.first);
    for (const std::string& c : in_file) {
        INFO("fixture case '" << c << "' of " << fx.path() << " has no entry in the C++ table");
        CHECK(in_table.count(c) == 1);
    }
    for (const auto& kv : table) {
        INFO("table entry '" << kv.first << "' is missing from " << fx.path() << " (regenerate the fixtures)");
        REQUIRE(in_file.count(kv.first) == 1);
        if (dtype == tensor::DType::f32 && !kv.second.run_f32) continue;
        const Tol tol = dtype == tensor::DType::f64 ? kv.second.f64 : kv.second.f32;
        check_fixture_case(fx, kv.first, kv.second.fn, dtype, tol);
    }
}

// Opens tests/fixtures/<stem>.* and runs `table` against it.
inline void run_fixture_table(const std::string& stem, const FixtureTable& table, tensor::DType dtype) {
    run_fixture_table(Fixtures(stem), table, dtype);
}

}  // namespace cxr::testing
