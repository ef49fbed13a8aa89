// Tests of the index family (tensor/ops/index.h): every case of the PyTorch fixture tests/fixtures/index.*
// (made by tests/fixtures/tools/make_index_fixtures.py) in f64 and in f32, f64 gradchecks of index_select,
// index_add, gather, scatter_add, embedding and masked_fill (duplicates, odd sizes, broadcast masks,
// non-contiguous inputs), one_hot values, bounds-check messages, and the loud failure on a CUDA tensor while the
// CUDA backend has no index kernels.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/index.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using Inputs = std::vector<Tensor>;

namespace {

FixtureTable index_cases() {
    FixtureTable c;
    c["index_select_d0_dup"] = {[](const Inputs& x) { return index_select(x[0], 0, x[1]); }};
    c["index_select_d1"] = {[](const Inputs& x) { return index_select(x[0], 1, x[1]); }};
    c["index_select_dm1_i32"] = {[](const Inputs& x) { return index_select(x[0], -1, x[1]); }};
    c["index_select_transposed"] = {[](const Inputs& x) { return index_select(x[0].transpose(0, 1), 1, x[1]); }};
    c["index_select_sliced"] = {[](const Inputs& x) { return index_select(x[0].narrow(1, 1, 4), 0, x[1]); }};
    c["index_add_d0_dup"] = {[](const Inputs& x) { return index_add(x[0], 0, x[1], x[2]); }};
    c["index_add_d1"] = {[](const Inputs& x) { return index_add(x[0], 1, x[1], x[2]); }};
    c["gather_d1"] = {[](const Inputs& x) { return gather(x[0], 1, x[1]); }};
    c["gather_d0_smaller"] = {[](const Inputs& x) { return gather(x[0], 0, x[1]); }};
    c["gather_dm1_transposed"] = {[](const Inputs& x) { return gather(x[0].transpose(0, 1), -1, x[1]); }};
    c["scatter_add_d0"] = {[](const Inputs& x) { return scatter_add(x[0], 0, x[1], x[2]); }};
    c["scatter_add_d1_larger_src"] = {[](const Inputs& x) { return scatter_add(x[0], 1, x[1], x[2]); }};
    c["embedding_dup"] = {[](const Inputs& x) { return embedding(x[0], x[1]); }};
    c["embedding_pad"] = {[](const Inputs& x) { return embedding(x[0], x[1], 2); }};
    c["embedding_pad_neg"] = {[](const Inputs& x) { return embedding(x[0], x[1], -1); }};
    c["embedding_3d_index"] = {[](const Inputs& x) { return embedding(x[0], x[1]); }};
    c["masked_fill_bcast"] = {[](const Inputs& x) { return masked_fill(x[0], x[1], -1.5); }};
    c["masked_fill_full"] = {[](const Inputs& x) { return masked_fill(x[0], x[1], 0.0); }};
    c["masked_fill_transposed"] = {[](const Inputs& x) { return masked_fill(x[0].transpose(0, 1), x[1], 2.25); }};
    c["one_hot_5"] = {[](const Inputs& x) { return one_hot(x[0], 5); }};
    c["one_hot_infer"] = {[](const Inputs& x) { return one_hot(x[0]); }};
    // pure data movement and exact sums of at most a few terms: f64 matches to rounding (f32: the default)
    for (auto& kv : c) kv.second.f64 = {1e-12, 1e-12};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

Tensor i64s(const std::vector<int64_t>& v, const Shape& shape) { return from_vector(v, shape); }

}  // namespace

TEST_CASE("index: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][index]") {
    cxr::testing::run_fixture_table("index", index_cases(), DType::f64);
}

TEST_CASE("index: PyTorch fixtures run in f32 against the f64 reference", "[cpu][index]") {
    cxr::testing::run_fixture_table("index", index_cases(), DType::f32);
}

// ---------------------------------------------------------------- gradchecks (f64 central differences)

TEST_CASE("index: gradcheck of index_select and index_add (duplicates, odd sizes, non-contiguous)",
          "[cpu][index]") {
    Tensor x = leaf({5, 3, 7}, 101);
    Tensor dup = i64s({4, 0, 4, 2, 4, 1}, {6});
    Tensor dup32 = cast(i64s({2, 2, 6, 0}, {4}), DType::i32);
    CXR_EXPECT_GRADCHECK([dup](const Inputs& in) { return index_select(in[0], 0, dup); }, {x});
    CXR_EXPECT_GRADCHECK([dup32](const Inputs& in) { return index_select(in[0], -1, dup32); }, {x});
    CXR_EXPECT_GRADCHECK([dup](const Inputs& in) { return index_select(in[0].transpose(0, 2), 2, dup); }, {x});
    CXR_EXPECT_GRADCHECK([](const Inputs& in) { return index_select(slice(in[0], 2, 1, 7, 2), 1, i64s({2}, {})); },
                         {x});
    Tensor self = leaf({4, 3}, 102);
    Tensor src = leaf({5, 3}, 103);
    Tensor idx = i64s({3, 1, 3, 3, 0}, {5});
    CXR_EXPECT_GRADCHECK([idx](const Inputs& in) { return index_add(in[0], 0, idx, in[1]); }, {self, src});
    Tensor srct = leaf({3, 5}, 104);  // used transposed -> [5, 3]
    CXR_EXPECT_GRADCHECK([idx](const Inputs& in) { return index_add(in[0], 0, idx, in[1].transpose(0, 1)); },
                         {self, srct});
}

TEST_CASE("index: gradcheck of gather and scatter_add", "[cpu][index]") {
    Tensor x = leaf({3, 5, 4}, 111);
    Tensor gi = i64s({0, 4, 4, 1, 2, 2, 3, 0, 4, 4, 4, 4, 1, 0, 2, 3, 1, 1, 0, 0, 2, 4, 3, 3}, {3, 2, 4});
    CXR_EXPECT_GRADCHECK([gi](const Inputs& in) { return gather(in[0], 1, gi); }, {x});
    // non-contiguous input, index smaller than x in the other dims and longer along the gather dim
    Tensor gi2 = i64s({2, 2, 0, 1, 1, 1, 2, 0, 0, 2, 2, 2}, {2, 6});
    CXR_EXPECT_GRADCHECK([gi2](const Inputs& in) { return gather(select(in[0].transpose(0, 2), 1, 3), 1, gi2); },
                         {x});
    Tensor self = leaf({4, 6}, 112);
    Tensor src = leaf({3, 7}, 113);  // larger than the index: the unused part gets a zero gradient
    Tensor si = i64s({5, 0, 5, 5, 1, 1, 0, 3}, {2, 4});
    CXR_EXPECT_GRADCHECK([si](const Inputs& in) { return scatter_add(in[0], 1, si, in[1]); }, {self, src});
    Tensor si0 = i64s({3, 3, 3, 0, 1, 2, 3, 0}, {2, 4});
    CXR_EXPECT_GRADCHECK([si0](const Inputs& in) { return scatter_add(in[0].transpose(0, 1), 0, si0, in[1]); },
                         {leaf({6, 4}, 114), src});
}

TEST_CASE("index: gradcheck of embedding (duplicates, padding_idx) and masked_fill (broadcast mask)",
          "[cpu][index]") {
    Tensor w = leaf({7, 3}, 121);
    Tensor ids = i64s({2, 5, 2, 0, 6, 2, 5, 5}, {2, 4});
    CXR_EXPECT_GRADCHECK([ids](const Inputs& in) { return embedding(ids, in[0]); }, {w});
    // padding_idx: by definition (as torch) the padding row gets no gradient although the forward reads it, so
    // the checked function zeroes the padding positions' output; the other rows must still accumulate exactly
    for (int64_t pad : {5, -1}) {
        const int64_t row = pad < 0 ? pad + 7 : pad;
        Tensor keep = cast(ne(ids, full({}, (double)row, DType::i64)), DType::f64).unsqueeze(-1);  // [2, 4, 1]
        INFO("padding_idx " << pad);
        CXR_EXPECT_GRADCHECK(
            [ids, pad, keep](const Inputs& in) { return mul(embedding(cast(ids, DType::i32), in[0], pad), keep); },
            {w});
    }
    // padding row really gets no gradient, the others accumulate
    Tensor wl = ones({7, 3}, DType::f64).set_requires_grad();
    sum(embedding(ids, wl, 5)).backward();
    std::vector<double> g = wl.grad().to_vector<double>();
    CHECK(g[2 * 3] == 3.0);   // row 2 used three times
    CHECK(g[5 * 3] == 0.0);   // padding row
    CHECK(g[1 * 3] == 0.0);   // unused row
    CHECK(embedding(ids, wl).sizes() == Shape{2, 4, 3});
    CHECK(embedding(i64s({3}, {}), wl).sizes() == Shape{3});

    Tensor x = leaf({3, 4, 5}, 122);
    Tensor mask = gt(cxr::testing::random_input({4, 1}, 123), 0.0);  // [4, 1] broadcast
    CXR_EXPECT_GRADCHECK([mask](const Inputs& in) { return masked_fill(in[0], mask, 7.0); }, {x});
    Tensor mask5 = from_vector(std::vector<int64_t>{1, 0, 0, 1, 1}, {5});
    Tensor mb = cast(mask5, DType::boolean);
    CXR_EXPECT_GRADCHECK([mb](const Inputs& in) { return masked_fill(in[0].transpose(0, 2), mb, -2.0); },
                         {leaf({5, 2, 3}, 124)});
}

// ---------------------------------------------------------------- values, dtypes and errors

TEST_CASE("index: values, dtypes and one_hot", "[cpu][index]") {
    Tensor x = from_vector(std::vector<double>{0, 1, 2, 3, 4, 5}, {2, 3});
    CHECK(index_select(x, 1, i64s({2, 0, 2}, {3})).to_vector<double>() == std::vector<double>{2, 0, 2, 5, 3, 5});
    CHECK(gather(x, 1, i64s({1, 1, 0, 2}, {2, 2})).to_vector<double>() == std::vector<double>{1, 1, 3, 5});
    // integer data: gather/index_select copy any dtype
    Tensor xi = from_vector(std::vector<int64_t>{10, 20, 30}, {3});
    CHECK(index_select(xi, 0, i64s({2, 2}, {2})).to_vector<int64_t>() == std::vector<int64_t>{30, 30});
    CHECK(scatter_add(zeros({3}, DType::i64), 0, i64s({0, 0, 2}, {3}), xi).to_vector<int64_t>() ==
          std::vector<int64_t>{30, 0, 30});
    Tensor f16 = cast(x, DType::f16);
    CHECK(index_select(f16, 0, i64s({1}, {1})).dtype() == DType::f16);
    // masked_fill keeps the input's dtype and shape
    Tensor m = cast(from_vector(std::vector<int64_t>{1, 0, 1}, {3}), DType::boolean);
    Tensor mf = masked_fill(xi, m, -1);
    CHECK(mf.dtype() == DType::i64);
    CHECK(mf.to_vector<int64_t>() == std::vector<int64_t>{-1, 20, -1});
    // one_hot
    Tensor oh = one_hot(i64s({2, 0, 1}, {3}), 4);
    CHECK(oh.dtype() == DType::i64);
    CHECK(oh.sizes() == Shape{3, 4});
    CHECK(oh.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0});
    CHECK(one_hot(cast(i64s({4, 1}, {2}), DType::i32)).sizes() == Shape{2, 5});
}

TEST_CASE("index: bounds and argument errors name the op, the value and the valid range", "[cpu][index]") {
    Tensor x = zeros({4, 3}, DType::f64);
    CHECK_THROWS_WITH(index_select(x, 0, i64s({1, 4}, {2})),
                      Catch::Contains("index_select") && Catch::Contains("index 4") &&
                          Catch::Contains("[0, 3]"));
    CHECK_THROWS_WITH(index_select(x, 1, i64s({-1}, {1})), Catch::Contains("index -1") && Catch::Contains("[0, 2]"));
    CHECK_THROWS_WITH(index_select(x, 0, from_vector(std::vector<double>{1}, {1})), Catch::Contains("i64 or i32"));
    CHECK_THROWS_WITH(index_select(x, 0, i64s({0, 1}, {1, 2})), Catch::Contains("1-d"));
    CHECK_THROWS_WITH(gather(x, 1, i64s({0, 3}, {1, 2})), Catch::Contains("gather") && Catch::Contains("index 3"));
    CHECK_THROWS_WITH(gather(x, 1, i64s({0, 1}, {2})), Catch::Contains("dims"));
    CHECK_THROWS_WITH(gather(x, 1, i64s({0, 0, 0, 0, 0}, {5, 1})), Catch::Contains("larger than the input"));
    CHECK_THROWS_WITH(scatter_add(x, 0, i64s({7}, {1, 1}), ones({1, 1}, DType::f64)),
                      Catch::Contains("scatter_add") && Catch::Contains("index 7"));
    CHECK_THROWS_WITH(scatter_add(x, 0, i64s({0}, {1, 1}), ones({1, 1}, DType::f32)), Catch::Contains("dtype"));
    CHECK_THROWS_WITH(index_add(x, 0, i64s({0}, {1}), ones({1, 2}, DType::f64)), Catch::Contains("does not match"));
    Tensor w = zeros({5, 2}, DType::f64);
    CHECK_THROWS_WITH(embedding(i64s({0, 5}, {2}), w),
                      Catch::Contains("index 5") && Catch::Contains("[0, 4]"));
    CHECK_THROWS_WITH(embedding(i64s({0}, {1}), w, 5), Catch::Contains("padding_idx"));
    CHECK_THROWS_WITH(embedding(i64s({0}, {1}), zeros({5}, DType::f64)), Catch::Contains("num_embeddings"));
    CHECK_THROWS_WITH(masked_fill(x, ones({4, 3}, DType::f64), 0.0), Catch::Contains("bool"));
    CHECK_THROWS_WITH(masked_fill(x, cast(ones({3, 1}, DType::i64), DType::boolean), 0.0),
                      Catch::Contains("does not broadcast"));
    CHECK_THROWS_WITH(one_hot(i64s({0, 5}, {2}), 5), Catch::Contains("class index 5") && Catch::Contains("[0, 4]"));
    CHECK_THROWS_WITH(one_hot(i64s({-1}, {1}), 3), Catch::Contains("class index -1"));
    CHECK_THROWS_WITH(one_hot(x), Catch::Contains("integer"));
}

TEST_CASE("index: CUDA index kernels match the CPU (full conformance in test_cuda_gemm_conv.cpp)", "[gpu][index]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor x = cxr::testing::random_input({3, 5}, 131, -1, 1, DType::f32);
    Tensor xg = x.to(Device::cuda(0));
    Tensor i = i64s({0, 2, 2}, {3});
    Tensor ig = i.to(Device::cuda(0));
    CXR_EXPECT_CLOSE(index_select(xg, 1, ig).to(Device::cpu()), index_select(x, 1, i), 0, 0);
    Tensor gi = i64s({0, 1, 0, 1, 4, 4}, {3, 2});
    CXR_EXPECT_CLOSE(gather(xg, 1, gi.to(Device::cuda(0))).to(Device::cpu()), gather(x, 1, gi), 0, 0);
    CXR_EXPECT_CLOSE(embedding(ig, xg).to(Device::cpu()), embedding(i, x), 0, 0);
    CHECK_THROWS_WITH(index_select(xg, 1, i64s({7}, {1}).to(Device::cuda(0))),
                      Catch::Contains("index_select") && Catch::Contains("7"));
}

TEST_CASE("index: CUDA tensors need the CUDA backend (compile check in CPU-only builds)", "[cpu][index]") {
    if (backend_compiled(DeviceType::CUDA)) return;  // exercised by the [gpu] test
    CHECK_THROWS(index_select(full({2}, 1.0, Options(DType::f32, Device::cuda(0))), 0, i64s({0}, {1})));
}
