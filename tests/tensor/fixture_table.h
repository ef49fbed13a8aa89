// A table of PyTorch fixture cases for one op family: case name -> the cxr call that mirrors the Python lambda,
// with per-case tolerances for the f64 run (against the f64 fixture) and the f32 run (same case in single
// precision against the f64 reference). run_fixture_table() checks that the table and the fixture file list the
// same cases (so a case added on one side only is a failure, not a silent skip) and runs each case with
// check_fixture_case (tests/tensor/fixture_case.h): output and every stored gradient compared BY NAME.
#pragma once

#include <map>
#include <set>
#include <string>

#include "tests/tensor/fixture_case.h"

namespace cxr::testing {

struct FixtureEntry {
    FixtureFn fn;
    Tol f64{1e-10, 1e-8};
    Tol f32{2e-5, 2e-5};
};
using FixtureTable = std::map<std::string, FixtureEntry>;

inline void run_fixture_table(const std::string& stem, const FixtureTable& table, tensor::DType dtype) {
    Fixtures fx(stem);
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
        const Tol tol = dtype == tensor::DType::f64 ? kv.second.f64 : kv.second.f32;
        check_fixture_case(fx, kv.first, kv.second.fn, dtype, tol);
    }
}

}  // namespace cxr::testing
