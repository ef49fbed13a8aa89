// Tests of the shape/view family (tensor/ops/view.h): every case of the PyTorch fixture tests/fixtures/view.*
// (made by tests/fixtures/tools/make_view_fixtures.py) in f64 and in f32, f64 gradchecks of every view and copy op
// (including non-contiguous inputs and gradients through each split/chunk piece), storage sharing, view vs
// reshape on non-viewable strides, copy_ through views, and argument errors.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

// cat([(i + 1) * piece.reshape(-1)]): the Python script's pieces_weighted.
Tensor pieces_weighted(const std::vector<Tensor>& pieces) {
    std::vector<Tensor> flat;
    for (size_t i = 0; i < pieces.size(); ++i) flat.push_back(mul(pieces[i].reshape({-1}), (double)(i + 1)));
    return cat(flat, 0);
}

FixtureTable view_cases() {
    FixtureTable c;
    c["reshape"] = {[](const Inputs& x) { return reshape(x[0], {6, 5}); }};
    c["reshape_infer"] = {[](const Inputs& x) { return reshape(x[0], {5, -1, 2}); }};
    c["reshape_transposed"] = {[](const Inputs& x) { return reshape(x[0].transpose(0, 2), {-1, 10}); }};
    c["view"] = {[](const Inputs& x) { return view(x[0], {2, 15}); }};
    c["view_narrowed"] = {[](const Inputs& x) { return view(x[0].narrow(2, 1, 5), {6, 5}); }};
    c["permute"] = {[](const Inputs& x) { return permute(x[0], {2, 0, 1}); }};
    c["permute_neg"] = {[](const Inputs& x) { return permute(x[0], {-1, -3, -2}); }};
    c["transpose"] = {[](const Inputs& x) { return transpose(x[0], 0, 2); }};
    c["transpose_neg"] = {[](const Inputs& x) { return transpose(x[0], -1, 1); }};
    c["slice_step"] = {[](const Inputs& x) { return slice(x[0], 2, 1, 5, 2); }};
    c["slice_neg_start"] = {[](const Inputs& x) { return slice(x[0], 2, -4, INT64_MAX, 3); }};
    c["slice_neg_end"] = {[](const Inputs& x) { return slice(slice(x[0], 0, 0, -1), 2, 2, -2); }};
    c["slice_transposed"] = {[](const Inputs& x) {
        return slice(slice(x[0].transpose(0, 2), 1, 0, INT64_MAX, 2), 2, 1, INT64_MAX);
    }};
    c["select"] = {[](const Inputs& x) { return select(x[0], 1, 2); }};
    c["select_neg"] = {[](const Inputs& x) { return select(x[0], -1, -1); }};
    c["narrow"] = {[](const Inputs& x) { return narrow(x[0], 2, 1, 4); }};
    c["narrow_transposed"] = {[](const Inputs& x) { return narrow(x[0].transpose(0, 2), 2, 1, 3); }};
    c["expand"] = {[](const Inputs& x) { return expand(x[0], {2, 3, 4, 5}); }};
    c["expand_keep"] = {[](const Inputs& x) { return expand(x[0], {-1, 4, -1}); }};
    c["squeeze_dim"] = {[](const Inputs& x) { return squeeze(x[0], 1); }};
    c["squeeze_all"] = {[](const Inputs& x) { return squeeze(x[0]); }};
    c["unsqueeze"] = {[](const Inputs& x) { return unsqueeze(x[0], 1); }};
    c["unsqueeze_end"] = {[](const Inputs& x) { return unsqueeze(x[0], -1); }};
    c["flatten"] = {[](const Inputs& x) { return flatten(x[0]); }};
    c["flatten_1"] = {[](const Inputs& x) { return flatten(x[0], 1); }};
    c["flatten_transposed"] = {[](const Inputs& x) { return flatten(x[0].transpose(0, 2), 0, 1); }};
    c["contiguous_transposed"] = {[](const Inputs& x) { return contiguous(x[0].transpose(0, 2)); }};
    c["cat_dim1"] = {[](const Inputs& x) { return cat({x[0], x[1], x[2]}, 1); }};
    c["cat_neg_dim_transposed"] = {[](const Inputs& x) { return cat({x[0], x[1].transpose(0, 2)}, -1); }};
    c["stack_dim0"] = {[](const Inputs& x) { return stack({x[0], x[1], x[2]}, 0); }};
    c["stack_dim_last"] = {[](const Inputs& x) { return stack({x[0], x[1].transpose(0, 1)}, -1); }};
    c["split_equal"] = {[](const Inputs& x) { return pieces_weighted(split(x[0], 2, 1)); }};
    c["split_sizes"] = {[](const Inputs& x) { return pieces_weighted(split_sizes(x[0], {1, 3, 1}, 2)); }};
    c["chunk"] = {[](const Inputs& x) { return pieces_weighted(chunk(x[0], 3, 2)); }};
    c["chunk_uneven"] = {[](const Inputs& x) { return pieces_weighted(chunk(x[0], 4, 2)); }};
    c["chunk_transposed"] = {[](const Inputs& x) { return pieces_weighted(chunk(x[0].transpose(0, 2), 2, 0)); }};
    // views only move values: outputs are exact in f64; gradients of expand are sums whose order may differ
    // from PyTorch's (a few ulp); in f32 everything is the f64 value rounded (a few roundings at most)
    for (auto& kv : c) {
        kv.second.f64 = {0.0, 1e-15};
        kv.second.f32 = {0.0, 4e-7};
    }
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed) {
    return cxr::testing::random_input(shape, seed).set_requires_grad();
}

}  // namespace

TEST_CASE("view: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][view]") {
    cxr::testing::run_fixture_table("view", view_cases(), DType::f64);
}

TEST_CASE("view: PyTorch fixtures run in f32 against the f64 reference", "[cpu][view]") {
    cxr::testing::run_fixture_table("view", view_cases(), DType::f32);
}

// ---------------------------------------------------------------- gradchecks (f64 central differences)

TEST_CASE("view: gradcheck of every view and copy op", "[cpu][view]") {
    Tensor x = leaf({3, 4, 5}, 51);   // [3, 4, 5]
    Tensor xt = leaf({5, 4, 3}, 52);  // used as xt.transpose(0, 2) -> [3, 4, 5]
    Tensor y = leaf({3, 1, 5}, 53);
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> ops = {
        {"reshape", [](const Tensor& t) { return reshape(t, {4, -1}); }},
        {"view-or-reshape", [](const Tensor& t) { return t.is_contiguous() ? view(t, {12, 5}) : reshape(t, {12, 5}); }},
        {"permute", [](const Tensor& t) { return permute(t, {1, 2, 0}); }},
        {"transpose", [](const Tensor& t) { return transpose(t, 1, 2); }},
        {"slice step", [](const Tensor& t) { return slice(t, 2, 0, 5, 2); }},
        {"slice negative", [](const Tensor& t) { return slice(t, 1, -3, -1); }},
        {"select", [](const Tensor& t) { return select(t, 1, 2); }},
        {"narrow", [](const Tensor& t) { return narrow(t, 0, 1, 2); }},
        {"expand", [](const Tensor& t) { return expand(unsqueeze(t, 0), {2, 3, 4, 5}); }},
        {"squeeze/unsqueeze", [](const Tensor& t) { return squeeze(unsqueeze(t, 2), 2); }},
        {"flatten", [](const Tensor& t) { return flatten(t, 1, 2); }},
        {"contiguous", [](const Tensor& t) { return contiguous(t); }},
        {"clone", [](const Tensor& t) { return clone(t); }},
        {"split", [](const Tensor& t) { return pieces_weighted(split(t, 2, 2)); }},
        {"split_sizes", [](const Tensor& t) { return pieces_weighted(split_sizes(t, {2, 1, 1}, 1)); }},
        {"chunk", [](const Tensor& t) { return pieces_weighted(chunk(t, 2, 0)); }},
    };
    for (const auto& op : ops) {
        INFO(op.first);
        auto f = op.second;
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0]); }, {x});
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0].transpose(0, 2)); }, {xt});
    }
    SECTION("expand of a broadcast dim") {
        CXR_EXPECT_GRADCHECK([](const Inputs& in) { return expand(in[0], {2, 3, 4, 5}); }, {y});
    }
    SECTION("cat and stack of several inputs, one transposed") {
        Tensor a = leaf({3, 2, 5}, 54);
        CXR_EXPECT_GRADCHECK([](const Inputs& in) { return cat({in[0], in[1].transpose(0, 2)}, 1); }, {a, xt});
        Tensor b = leaf({5, 4}, 55), c = leaf({4, 5}, 56);
        CXR_EXPECT_GRADCHECK([](const Inputs& in) { return stack({in[0].transpose(0, 1), in[1], in[1]}, 1); },
                             {b, c});
    }
    SECTION("only some pieces used: the others get zero gradient") {
        CXR_EXPECT_GRADCHECK([](const Inputs& in) { return mul(split(in[0], 2, 1)[1], 3.0); }, {x});
    }
}

// ---------------------------------------------------------------- storage semantics

TEST_CASE("view: views share storage; writing through a view changes the base", "[cpu][view]") {
    Tensor base = arange(0.0, 24.0, 1.0, DType::f64).reshape({2, 3, 4});  // [2, 3, 4]
    CHECK(base.is_contiguous());
    for (const Tensor& v : {view(base, {6, 4}), permute(base, {2, 0, 1}), transpose(base, 0, 1),
                            narrow(base, 2, 1, 2), slice(base, 1, 0, 3, 2), select(base, 0, 1), squeeze(base, 0),
                            unsqueeze(base, 1), flatten(base), expand(narrow(base, 0, 0, 1), {5, 3, 4}),
                            reshape(base, {4, 6})}) {
        CHECK(v.storage() == base.storage());
    }
    // copy_ into a strided view writes into the base at the right places
    Tensor col = slice(base, 2, 1, 4, 2);  // [2, 3, 2], elements 1 and 3 of each row
    CHECK_FALSE(col.is_contiguous());
    col.copy_(full({2, 3, 2}, -1.0, DType::f64));
    std::vector<double> v = base.to_vector<double>();
    for (int64_t i = 0; i < 24; ++i) CHECK(v[i] == ((i % 4 == 1 || i % 4 == 3) ? -1.0 : (double)i));
    // copy_ broadcasts and casts
    Tensor row = select(transpose(base, 0, 2), 0, 0);  // [3, 2] view of base[:, :, 0] transposed
    row.copy_(from_vector(std::vector<float>{7.f, 8.f}, {2}));
    v = base.to_vector<double>();
    CHECK(v[0] == 7.0);
    CHECK(v[4] == 7.0);
    CHECK(v[12] == 8.0);
    CHECK(v[20] == 8.0);
    // fill_ through a transposed view
    transpose(base, 0, 1).fill_(0.5);
    CHECK(sum(base).item() == 12.0);
    // a detached tensor shares storage too; clone and contiguous-of-transposed do not
    CHECK(base.detach().storage() == base.storage());
    CHECK(clone(base).storage() != base.storage());
    CHECK(contiguous(base.transpose(0, 1)).storage() != base.storage());
    CHECK(contiguous(base).same(base));
}

TEST_CASE("view: view on non-viewable strides throws, reshape copies", "[cpu][view]") {
    Tensor x = arange(0.0, 12.0, 1.0, DType::f64).reshape({3, 4});
    Tensor t = x.transpose(0, 1);  // [4, 3], strides [1, 4]
    CHECK_FALSE(t.is_contiguous());
    CHECK_THROWS_WITH(view(t, {12}), Catch::Contains("reshape") && Catch::Contains("[4, 3]"));
    Tensor r = reshape(t, {12});
    CHECK(r.storage() != x.storage());
    CHECK(r.to_vector<double>() == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
    // some non-contiguous tensors are still viewable: splitting a dim, or merging dims that stay in step
    Tensor split_dim = view(t, {2, 2, 3});
    CHECK(split_dim.storage() == x.storage());
    CHECK(split_dim.to_vector<double>() == t.to_vector<double>());
    Tensor n = narrow(arange(0.0, 24.0, 1.0, DType::f64).reshape({2, 3, 4}), 2, 0, 2);  // [2, 3, 2]
    CHECK_THROWS(view(n, {12}));
    CHECK(view(n.transpose(1, 2).contiguous(), {12}).numel() == 12);
    CHECK(view(expand(full({1, 3}, 1.0), {4, 3}), {4, 3, 1}).sizes() == Shape{4, 3, 1});
}

TEST_CASE("view: shapes, negative dims and argument errors", "[cpu][view]") {
    Tensor x = zeros({2, 3, 4});
    CHECK(reshape(x, {-1}).sizes() == Shape{24});
    CHECK(reshape(x, {4, -1, 2}).sizes() == Shape{4, 3, 2});
    CHECK_THROWS_WITH(reshape(x, {5, -1}), Catch::Contains("[5, -1]"));
    CHECK_THROWS_WITH(reshape(x, {-1, -1}), Catch::Contains("more than one -1"));
    CHECK_THROWS_WITH(reshape(x, {7}), Catch::Contains("24"));
    CHECK_THROWS(permute(x, {0, 0, 1}));
    CHECK_THROWS(permute(x, {0, 1}));
    CHECK_THROWS_WITH(narrow(x, 2, 3, 2), Catch::Contains("out of range"));
    CHECK_THROWS(select(x, 1, 3));
    CHECK(select(x, 1, -3).sizes() == Shape{2, 4});
    CHECK_THROWS(slice(x, 0, 0, 2, 0));
    CHECK(slice(x, 2, 10, 20).sizes() == Shape{2, 3, 0});  // clamped like Python
    CHECK(slice(x, 2, -100, 100).sizes() == Shape{2, 3, 4});
    CHECK(slice(x, 2, 3, 1).sizes() == Shape{2, 3, 0});
    CHECK_THROWS_WITH(expand(x, {2, 5, 4}), Catch::Contains("[2, 3, 4]"));
    CHECK_THROWS(expand(x, {3, 4}));
    CHECK(squeeze(x, 1).sizes() == Shape{2, 3, 4});  // not size 1: unchanged
    CHECK(unsqueeze(x, 3).sizes() == Shape{2, 3, 4, 1});
    CHECK(unsqueeze(x, -4).sizes() == Shape{1, 2, 3, 4});
    CHECK(flatten(full({}, 1.0)).sizes() == Shape{1});
    CHECK(flatten(x, 0, 1).sizes() == Shape{6, 4});
    CHECK(transpose(full({}, 1.0), 0, -1).sizes() == Shape{});
    CHECK_THROWS_WITH(cat({zeros({2, 3}), zeros({3, 3})}, 1), Catch::Contains("[3, 3]"));
    CHECK_THROWS(cat({}, 0));
    CHECK_THROWS(stack({zeros({2, 3}), zeros({3, 2})}, 0));
    CHECK(cat({zeros({2, 3}), zeros({2, 1}, DType::f64)}, 1).dtype() == DType::f64);
    CHECK_THROWS_WITH(split_sizes(x, {1, 1}, 2), Catch::Contains("sum to 2"));
    // chunk sizes as torch.chunk: ceil(n / chunks) per chunk, fewer chunks when that covers n
    auto sizes_of = [](const std::vector<Tensor>& ps, int64_t d) {
        std::vector<int64_t> s;
        for (const Tensor& p : ps) s.push_back(p.size(d));
        return s;
    };
    CHECK(sizes_of(chunk(zeros({5}), 4, 0), 0) == std::vector<int64_t>{2, 2, 1});
    CHECK(sizes_of(chunk(zeros({6}), 4, 0), 0) == std::vector<int64_t>{2, 2, 2});
    CHECK(sizes_of(chunk(zeros({3}), 5, 0), 0) == std::vector<int64_t>{1, 1, 1});
    CHECK(sizes_of(split(zeros({7}), 3, 0), 0) == std::vector<int64_t>{3, 3, 1});
}
