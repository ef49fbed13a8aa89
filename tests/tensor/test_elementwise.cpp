// Tests of the elementwise family (tensor/ops/elementwise.h): every case of the PyTorch fixture
// tests/fixtures/elementwise.* (made by tests/fixtures/tools/make_elementwise_fixtures.py) in f64 and again in f32,
// f64 central-difference gradchecks of every differentiable op (odd sizes, broadcasting, non-contiguous inputs),
// the type-promotion table of tensor/dtype.h, broadcasting errors, f16/bf16 arithmetic, printing, and the CUDA
// backend against the CPU reference when a GPU is present.
#include "tests/support/testing.h"
#include "tests/tensor/fixture_case.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::tensor;
using cxr::testing::FixtureTable;
using cxr::testing::Tol;
using Inputs = std::vector<Tensor>;

namespace {

// One entry per fixture case; the lambdas apply the same views as the Python script.
FixtureTable elementwise_cases() {
    const Tol transc{1e-12, 1e-10};
    FixtureTable c;
    c["add_same"] = {[](const Inputs& x) { return add(x[0], x[1]); }};
    c["add_bcast"] = {[](const Inputs& x) { return add(x[0], x[1]); }};
    c["add_scalar"] = {[](const Inputs& x) { return add(x[0], 2.5); }};
    c["sub_bcast"] = {[](const Inputs& x) { return sub(x[0], x[1]); }};
    c["sub_scalar"] = {[](const Inputs& x) { return sub(x[0], 0.75); }};
    c["mul_transposed"] = {[](const Inputs& x) { return mul(x[0].transpose(0, 2), x[1]); }};
    c["mul_bcast"] = {[](const Inputs& x) { return mul(x[0], x[1]); }};
    c["mul_scalar"] = {[](const Inputs& x) { return mul(x[0], -1.25); }};
    c["div_bcast"] = {[](const Inputs& x) { return div(x[0], x[1]); }};
    c["div_scalar"] = {[](const Inputs& x) { return div(x[0], 3.0); }};
    c["div_narrow"] = {[](const Inputs& x) { return div(x[0], x[1].narrow(1, 2, 7)); }};
    c["pow_tensor"] = {[](const Inputs& x) { return pow(x[0], x[1]); }, transc};
    c["pow_scalar_frac"] = {[](const Inputs& x) { return pow(x[0], 2.5); }, transc};
    c["pow_scalar_int_neg_base"] = {[](const Inputs& x) { return pow(x[0], 3.0); }, transc};
    c["pow_scalar_neg"] = {[](const Inputs& x) { return pow(x[0], -0.5); }, transc};
    c["minimum_bcast"] = {[](const Inputs& x) { return minimum(x[0], x[1]); }};
    c["maximum_bcast"] = {[](const Inputs& x) { return maximum(x[0], x[1]); }};
    c["minimum_ties"] = {[](const Inputs& x) { return minimum(x[0], x[1]); }};
    c["maximum_ties"] = {[](const Inputs& x) { return maximum(x[0], x[1]); }};

    c["neg"] = {[](const Inputs& x) { return neg(x[0]); }};
    c["abs"] = {[](const Inputs& x) { return abs(x[0]); }};
    c["exp"] = {[](const Inputs& x) { return exp(x[0]); }, transc};
    c["exp_transposed"] = {[](const Inputs& x) { return exp(x[0].transpose(0, 2)); }, transc};
    c["log"] = {[](const Inputs& x) { return log(x[0]); }, transc};
    c["sqrt"] = {[](const Inputs& x) { return sqrt(x[0]); }};
    c["rsqrt"] = {[](const Inputs& x) { return rsqrt(x[0]); }};
    c["sin"] = {[](const Inputs& x) { return sin(x[0]); }, transc};
    c["cos"] = {[](const Inputs& x) { return cos(x[0]); }, transc};
    c["tanh"] = {[](const Inputs& x) { return tanh(x[0]); }, transc};
    c["sigmoid"] = {[](const Inputs& x) { return sigmoid(x[0]); }, transc};
    c["sigmoid_narrow"] = {[](const Inputs& x) { return sigmoid(x[0].narrow(2, 1, 7)); }, transc};
    c["relu"] = {[](const Inputs& x) { return relu(x[0]); }};
    c["leaky_relu"] = {[](const Inputs& x) { return leaky_relu(x[0], 0.1); }};
    c["silu"] = {[](const Inputs& x) { return silu(x[0]); }, transc};
    c["gelu_erf"] = {[](const Inputs& x) { return gelu(x[0], GeluApprox::none); }, transc};
    c["gelu_tanh"] = {[](const Inputs& x) { return gelu(x[0], GeluApprox::tanh); }, transc};
    c["quick_gelu"] = {[](const Inputs& x) { return quick_gelu(x[0]); }, transc};
    c["softplus"] = {[](const Inputs& x) { return softplus(x[0]); }, transc};
    c["softplus_beta_threshold"] = {[](const Inputs& x) { return softplus(x[0], 2.0, 3.0); }, transc};
    c["clamp"] = {[](const Inputs& x) { return clamp(x[0], -0.5, 0.5); }};
    c["square"] = {[](const Inputs& x) { return square(x[0]); }};

    c["where_bcast"] = {[](const Inputs& x) { return where(x[0], x[1], x[2]); }};

    c["cmp_eq"] = {[](const Inputs& x) { return eq(x[0], x[1]); }};
    c["cmp_ne"] = {[](const Inputs& x) { return ne(x[0], x[1]); }};
    c["cmp_lt"] = {[](const Inputs& x) { return lt(x[0], x[1]); }};
    c["cmp_le"] = {[](const Inputs& x) { return le(x[0], x[1]); }};
    c["cmp_gt"] = {[](const Inputs& x) { return gt(x[0], x[1]); }};
    c["cmp_ge"] = {[](const Inputs& x) { return ge(x[0], x[1]); }};
    c["cmp_gt_scalar"] = {[](const Inputs& x) { return gt(x[0], 0.5); }};

    // f64 -> f32 -> f64 rounds to float: exact in the f64 run (same rounding as torch); not run in f32, where the
    // input is already f32 and the round trip is the identity
    c["cast_f32_roundtrip"] = {[](const Inputs& x) { return cast(cast(x[0], DType::f32), x[0].dtype()); },
                               {0.0, 0.0}};
    c["cast_f32_roundtrip"].run_f32 = false;
    c["cast_i32_trunc"] = {[](const Inputs& x) { return cast(x[0], DType::i32); }};
    c["cast_i64_trunc"] = {[](const Inputs& x) { return cast(x[0], DType::i64); }};
    c["cast_bool"] = {[](const Inputs& x) { return cast(x[0], DType::boolean); }};
    c["div_int"] = {[](const Inputs& x) { return div(x[0], x[1]); }, {0.0, 0.0}, {0.0, 0.0}};
    return c;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return cxr::testing::random_input(shape, seed, lo, hi).set_requires_grad();
}

// Random values in ±[0.2, 1.2): away from the kinks at 0.
Tensor leaf_away_from_zero(const Shape& shape, uint64_t seed) {
    Tensor u = cxr::testing::random_input(shape, seed, -1.0, 1.0);
    Tensor v = add(mul(sign(u), 0.2), u);
    return v.contiguous().clone().set_requires_grad();
}

}  // namespace

TEST_CASE("elementwise: PyTorch fixtures in f64 (outputs and gradients by name)", "[cpu][elementwise]") {
    cxr::testing::run_fixture_table("elementwise", elementwise_cases(), DType::f64);
}

TEST_CASE("elementwise: PyTorch fixtures run in f32 against the f64 reference", "[cpu][elementwise]") {
    cxr::testing::run_fixture_table("elementwise", elementwise_cases(), DType::f32);
}

TEST_CASE("elementwise: f32 results are the f64 results rounded, outputs are f32", "[cpu][elementwise]") {
    Tensor x = cxr::testing::random_input({3, 5, 7}, 3, -3, 3);
    Tensor y32 = sigmoid(cast(x, DType::f32));
    CHECK(y32.dtype() == DType::f32);
    CXR_EXPECT_CLOSE(y32, sigmoid(x), 1e-7, 1e-6);
}

// ---------------------------------------------------------------- gradchecks (f64 central differences)

TEST_CASE("elementwise: gradcheck of binary ops with broadcasting and non-contiguous inputs", "[cpu][elementwise]") {
    // [3,1,4] with [5,1] -> [3,5,4]; b2 is a [4,5] base used transposed -> [5,4]
    Tensor a = leaf({3, 1, 4}, 1);
    Tensor b = leaf({5, 1}, 2);
    Tensor bt = leaf({4, 5}, 3);
    Tensor pos_b = leaf({5, 1}, 4, 0.5, 2.0);
    Tensor pos_a = leaf({3, 1, 4}, 5, 0.5, 2.0);
    SECTION("add") { CXR_EXPECT_GRADCHECK([](const Inputs& x) { return add(x[0], x[1]); }, {a, b}); }
    SECTION("sub") { CXR_EXPECT_GRADCHECK([](const Inputs& x) { return sub(x[0], x[1]); }, {a, b}); }
    SECTION("mul transposed") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return mul(x[0], x[1].transpose(0, 1)); }, {a, bt});
    }
    SECTION("div") { CXR_EXPECT_GRADCHECK([](const Inputs& x) { return div(x[0], x[1]); }, {a, pos_b}); }
    SECTION("pow tensor-tensor") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return pow(x[0], x[1]); }, {pos_a, b});
    }
    SECTION("minimum/maximum (no ties)") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return minimum(x[0], x[1]); }, {a, b});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return maximum(x[0], x[1].transpose(0, 1)); }, {a, bt});
    }
    SECTION("scalar operands") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return div(sub(mul(add(x[0], 2.0), 3.0), 1.5), 0.7); }, {a});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return add(2.0 * x[0], neg(x[0]) + 1.0); }, {a});
    }
    SECTION("pow scalar") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return pow(x[0], 2.5); }, {pos_a});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return pow(x[0], 3.0); }, {a});
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return pow(x[0], -1.5); }, {pos_a});
    }
    SECTION("where") {
        Tensor cond = gt(cxr::testing::random_input({3, 1, 4}, 9), 0.0);  // [3,1,4] bool
        CXR_EXPECT_GRADCHECK([cond](const Inputs& x) { return where(cond, x[0], x[1]); }, {b, a});
    }
    SECTION("a chain of ops on two broadcast inputs") {
        CXR_EXPECT_GRADCHECK([](const Inputs& x) { return mul(exp(x[0]), sin(x[1])); }, {a, b});
    }
}

TEST_CASE("elementwise: gradcheck of unary ops (odd sizes, non-contiguous views)", "[cpu][elementwise]") {
    // x: [3,5] odd shape; xt: a [5,3] base used transposed; xn: a [3,7] base narrowed to [3,5]
    Tensor x = leaf({3, 5}, 11, -2.0, 2.0);
    Tensor xt = leaf({5, 3}, 12, -2.0, 2.0);
    Tensor xn = leaf({3, 7}, 13, -2.0, 2.0);
    Tensor pos = leaf({3, 5}, 14, 0.3, 3.0);
    Tensor pos_t = leaf({5, 3}, 15, 0.3, 3.0);
    Tensor kinkless = leaf_away_from_zero({3, 5}, 16);
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> smooth = {
        {"neg", [](const Tensor& t) { return neg(t); }},
        {"exp", [](const Tensor& t) { return exp(t); }},
        {"sin", [](const Tensor& t) { return sin(t); }},
        {"cos", [](const Tensor& t) { return cos(t); }},
        {"tanh", [](const Tensor& t) { return tanh(t); }},
        {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
        {"silu", [](const Tensor& t) { return silu(t); }},
        {"gelu_erf", [](const Tensor& t) { return gelu(t); }},
        {"gelu_tanh", [](const Tensor& t) { return gelu(t, GeluApprox::tanh); }},
        {"quick_gelu", [](const Tensor& t) { return quick_gelu(t); }},
        {"softplus", [](const Tensor& t) { return softplus(t); }},
        {"square", [](const Tensor& t) { return square(t); }},
    };
    for (const auto& op : smooth) {
        INFO("unary op " << op.first);
        auto f = op.second;
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0]); }, {x});
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0].transpose(0, 1)); }, {xt});
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0].narrow(1, 1, 5)); }, {xn});
    }
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> positive = {
        {"log", [](const Tensor& t) { return log(t); }},
        {"sqrt", [](const Tensor& t) { return sqrt(t); }},
        {"rsqrt", [](const Tensor& t) { return rsqrt(t); }},
    };
    for (const auto& op : positive) {
        INFO("unary op " << op.first);
        auto f = op.second;
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0]); }, {pos});
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0].transpose(0, 1)); }, {pos_t});
    }
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> kinked = {
        {"abs", [](const Tensor& t) { return abs(t); }},
        {"relu", [](const Tensor& t) { return relu(t); }},
        {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.2); }},
        {"clamp", [](const Tensor& t) { return clamp(t, -0.7, 0.9); }},
        {"clamp one-sided", [](const Tensor& t) { return clamp(t, -std::numeric_limits<double>::infinity(), 0.5); }},
    };
    for (const auto& op : kinked) {
        INFO("unary op " << op.first << " (inputs away from its kinks)");
        auto f = op.second;
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0]); }, {kinkless});
        CXR_EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0].transpose(0, 1)); }, {kinkless});
    }
    SECTION("softplus with beta and a threshold crossing") {
        // beta 2, threshold 3: linear above x = 1.5; inputs in [-3, 3) straddle it (none within 1e-3 of it)
        Tensor s = leaf({4, 5}, 17, -3.0, 3.0);
        CXR_EXPECT_GRADCHECK([](const Inputs& in) { return softplus(in[0], 2.0, 3.0); }, {s});
    }
}

TEST_CASE("elementwise: gradient of a cast between floating types is cast back", "[cpu][elementwise]") {
    Tensor x = cxr::testing::random_input({2, 3}, 21).set_requires_grad();
    Tensor y = cast(x, DType::f32);
    CHECK(y.requires_grad());
    sum(mul(y, 2.0)).backward();
    REQUIRE(x.grad().defined());
    CHECK(x.grad().dtype() == DType::f64);
    CXR_EXPECT_CLOSE(x.grad(), full({2, 3}, 2.0, DType::f64), 0, 0);
    // to an integer type the graph is cut
    CHECK_FALSE(cast(x, DType::i64).requires_grad());
}

// ---------------------------------------------------------------- dtypes

TEST_CASE("elementwise: type promotion table through add (tensor/dtype.h)", "[cpu][elementwise]") {
    struct Row {
        DType a, b, want;
    };
    const std::vector<Row> table = {
        {DType::f32, DType::f32, DType::f32},  {DType::f32, DType::f64, DType::f64},
        {DType::f16, DType::f32, DType::f32},  {DType::bf16, DType::f32, DType::f32},
        {DType::f16, DType::bf16, DType::f32}, {DType::f16, DType::f16, DType::f16},
        {DType::bf16, DType::bf16, DType::bf16}, {DType::f64, DType::f16, DType::f64},
        {DType::i32, DType::i64, DType::i64},  {DType::u8, DType::i32, DType::i32},
        {DType::u8, DType::i64, DType::i64},   {DType::u8, DType::u8, DType::u8},
        {DType::i64, DType::f16, DType::f16},  {DType::i32, DType::f32, DType::f32},
        {DType::u8, DType::bf16, DType::bf16}, {DType::i64, DType::f64, DType::f64},
        {DType::boolean, DType::i32, DType::i32}, {DType::boolean, DType::f32, DType::f32},
        {DType::boolean, DType::u8, DType::u8},
    };
    for (const Row& r : table) {
        INFO(dtype_name(r.a) << " + " << dtype_name(r.b));
        CHECK(promote_types(r.a, r.b) == r.want);
        CHECK(promote_types(r.b, r.a) == r.want);
        Tensor a = full({2, 3}, 1.0, r.a);
        Tensor b = full({3}, 1.0, r.b);
        Tensor s = add(a, b);
        CHECK(s.dtype() == r.want);
        CHECK(s.sizes() == Shape{2, 3});
        CHECK(s.to_vector<double>() == std::vector<double>(6, 2.0));
    }
    CHECK(promote_types(DType::boolean, DType::boolean) == DType::boolean);
    // Scalar operands (documented in dtype.h): a floating tensor keeps its type; an integer tensor stays integral
    // for an integral scalar and becomes f32 for a fractional one; a bool tensor with an integral scalar gives i64.
    CHECK(add(full({2}, 1.0, DType::f16), 2.5).dtype() == DType::f16);
    CHECK(add(full({2}, 1.0, DType::f32), 2.0).dtype() == DType::f32);
    CHECK(add(full({2}, 1.0, DType::i32), 2.0).dtype() == DType::i32);
    Tensor frac = add(full({2}, 1.0, DType::i32), 2.5);
    CHECK(frac.dtype() == DType::f32);
    CHECK(frac.to_vector<double>() == std::vector<double>{3.5, 3.5});
    CHECK(add(full({2}, 1.0, DType::boolean), 1.0).dtype() == DType::i64);
}

TEST_CASE("elementwise: integer arithmetic stays integral, integer division gives f32", "[cpu][elementwise]") {
    Tensor a = from_vector(std::vector<int64_t>{7, -7, 9, 1}, {4});
    Tensor b = from_vector(std::vector<int64_t>{2, 2, -4, 3}, {4});
    CHECK(add(a, b).dtype() == DType::i64);
    CHECK(mul(a, b).to_vector<int64_t>() == std::vector<int64_t>{14, -14, -36, 3});
    Tensor q = div(a, b);
    CHECK(q.dtype() == DType::f32);
    CXR_EXPECT_CLOSE(q, from_vector(std::vector<float>{3.5f, -3.5f, -2.25f, 1.0f / 3.0f}, {4}), 0, 0);
    Tensor qi = div(from_vector(std::vector<int32_t>{1, 2}, {2}), 4.0);
    CHECK(qi.dtype() == DType::f32);
    CHECK(qi.to_vector<float>() == std::vector<float>{0.25f, 0.5f});
    // float-only functions on integers compute in f32, as PyTorch does
    CHECK(exp(from_vector(std::vector<int32_t>{0, 1}, {2})).dtype() == DType::f32);
    CHECK(abs(from_vector(std::vector<int32_t>{-3, 4}, {2})).to_vector<int32_t>() == std::vector<int32_t>{3, 4});
}

TEST_CASE("elementwise: incompatible broadcasting names both shapes", "[cpu][elementwise]") {
    Tensor a = zeros({3, 4});
    Tensor b = zeros({5});
    CHECK_THROWS_WITH(add(a, b), Catch::Contains("[3, 4]") && Catch::Contains("[5]"));
    CHECK_THROWS_WITH(mul(zeros({2, 3, 1}), zeros({4, 2})), Catch::Contains("[2, 3, 1]") && Catch::Contains("[4, 2]"));
    CHECK_THROWS_WITH(where(zeros({3}, DType::boolean), zeros({4}), zeros({3})), Catch::Contains("[4]"));
    CHECK_THROWS(clamp(zeros({2}), 1.0, -1.0));
}

TEST_CASE("elementwise: f16/bf16 round trips are exact and arithmetic is float rounded once", "[cpu][elementwise]") {
    // values representable in both half formats (small integers, powers of two and short binary fractions)
    const std::vector<double> exact = {0.0, 1.0, -2.0, 0.5, 0.375, -1.75, 3.0, 96.0, -0.0078125, 256.0};
    for (DType dt : {DType::f16, DType::bf16}) {
        INFO(dtype_name(dt));
        Tensor h = cast(from_vector(exact, {(int64_t)exact.size()}), dt);
        CHECK(h.dtype() == dt);
        CHECK(cast(h, DType::f64).to_vector<double>() == exact);
        CHECK(cast(cast(h, DType::f32), dt).to_vector<double>() == exact);
    }
    // f16 has 11 significant bits: 2048 + 1 is a tie -> 2048 (even), 2048 + 3 -> 2052 (even), 2048 + 2 exact.
    Tensor a = full({3}, 2048.0, DType::f16);
    Tensor b = cast(from_vector(std::vector<double>{1.0, 3.0, 2.0}, {3}), DType::f16);
    Tensor s = add(a, b);
    CHECK(s.dtype() == DType::f16);
    CHECK(s.to_vector<double>() == std::vector<double>{2048.0, 2052.0, 2050.0});
    // general values: each result equals the float computation rounded once to the 16-bit type
    Tensor x = cxr::testing::random_input({37}, 5, -40.0, 40.0);
    Tensor y = cxr::testing::random_input({37}, 6, 0.5, 3.0);
    for (DType dt : {DType::f16, DType::bf16}) {
        INFO(dtype_name(dt));
        Tensor xh = cast(x, dt), yh = cast(y, dt);
        std::vector<float> xf = cast(xh, DType::f32).to_vector<float>();
        std::vector<float> yf = cast(yh, DType::f32).to_vector<float>();
        std::vector<double> got_mul = mul(xh, yh).to_vector<double>();
        std::vector<double> got_div = div(xh, yh).to_vector<double>();
        std::vector<double> got_exp = exp(div(xh, 20.0)).to_vector<double>();
        for (size_t i = 0; i < xf.size(); ++i) {
            const float m = xf[i] * yf[i], d = xf[i] / yf[i];
            if (dt == DType::f16) {
                CHECK(got_mul[i] == (double)(float)Half(m));
                CHECK(got_div[i] == (double)(float)Half(d));
                // exp(x / 20): the division result is rounded to f16 before exp, as PyTorch does for f16 tensors
                CHECK(got_exp[i] == (double)(float)Half(std::exp((float)Half(xf[i] / 20.0f))));
            } else {
                CHECK(got_mul[i] == (double)(float)BFloat16(m));
                CHECK(got_div[i] == (double)(float)BFloat16(d));
                CHECK(got_exp[i] == (double)(float)BFloat16(std::exp((float)BFloat16(xf[i] / 20.0f))));
            }
        }
    }
}

TEST_CASE("elementwise: item, to_vector and printing", "[cpu][elementwise]") {
    Tensor t = from_vector(std::vector<double>{1.5, -2.0, 3.25, 4.0, 5.0, 6.5}, {2, 3});
    CHECK(t.to_vector<double>() == std::vector<double>{1.5, -2.0, 3.25, 4.0, 5.0, 6.5});
    CHECK(t.transpose(0, 1).to_vector<double>() == std::vector<double>{1.5, 4.0, -2.0, 5.0, 3.25, 6.5});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 4, 5, 6});
    CHECK(sum(t).item() == 18.25);
    CHECK(full({1, 1}, 7.0, DType::i32).item() == 7.0);
    CHECK_THROWS_WITH(t.item(), Catch::Contains("[2, 3]"));
    std::string s = t.str();
    CHECK_THAT(s, Catch::Contains("[2, 3]") && Catch::Contains("f64") && Catch::Contains("cpu"));
    CHECK_THAT(s, Catch::Contains("3.25"));
    CHECK_THAT(full({4}, 1.0, DType::bf16).str(), Catch::Contains("bf16") && Catch::Contains("[4]"));
    CHECK_THAT(zeros({100}).str(), Catch::Contains("100 elements"));
    std::ostringstream os;
    os << full({}, 2.0, DType::i64);
    CHECK_THAT(os.str(), Catch::Contains("i64"));
}

// ---------------------------------------------------------------- CUDA backend

TEST_CASE("elementwise: the CUDA kernels match the CPU reference", "[gpu][elementwise]") {
    CXR_SKIP_WITHOUT_GPU();
    Tensor a = cxr::testing::random_input({3, 1, 7}, 31, -2, 2, DType::f32);
    Tensor b = cxr::testing::random_input({5, 1}, 32, 0.5, 2, DType::f32);
    Device gpu = Device::cuda(0);
    Tensor ag = a.to(gpu), bg = b.to(gpu);
    CXR_EXPECT_CLOSE(add(ag, bg), add(a, b), 0, 0);
    CXR_EXPECT_CLOSE(div(ag.transpose(0, 2), bg), div(a.transpose(0, 2), b), 1e-7, 1e-6);
    CXR_EXPECT_CLOSE(gelu(ag), gelu(a), 1e-6, 1e-5);
    CXR_EXPECT_CLOSE(sigmoid(ag), sigmoid(a), 1e-6, 1e-5);
    CXR_EXPECT_CLOSE(lt(ag, bg), lt(a, b), 0, 0);
    CXR_EXPECT_CLOSE(where(gt(ag, 0.0), ag, bg), where(gt(a, 0.0), a, b), 0, 0);
    CXR_EXPECT_CLOSE(cast(ag, DType::f16), cast(a, DType::f16), 0, 0);
    // an op family without CUDA kernels fails loudly instead of falling back to the CPU
    if (!cxr::tensor::kernel_registry().find("reduce", DeviceType::CUDA))
        CHECK_THROWS_WITH(sum(ag), Catch::Contains("no kernel") && Catch::Contains("cuda"));
}

TEST_CASE("elementwise: a CUDA tensor in a CPU-only build is a clear error", "[cpu][elementwise]") {
    if (cxr::tensor::backend_compiled(DeviceType::CUDA)) return;  // covered by the [gpu] test above
    CHECK_THROWS(zeros({2}, Options(DType::f32, Device::cuda(0))));
}

// Floating -> integer casts go through int64 on every backend (tensor/dtype.h convert_value, torch's rule): a
// negative float cast to u8 wraps modulo 256 instead of being undefined (x86 and CUDA disagree without it).
TEST_CASE("cast: floating to integer goes through int64, as torch", "[cpu][elementwise]") {
    const Tensor x = from_vector(std::vector<float>{-100.5f, 300.7f, 2.9f, -0.5f, -1.0f}, {5});
    CHECK(cast(x, DType::u8).to_vector<int64_t>() == std::vector<int64_t>{156, 44, 2, 0, 255});
    CHECK(cast(x, DType::i32).to_vector<int64_t>() == std::vector<int64_t>{-100, 300, 2, 0, -1});
    CHECK(cast(x, DType::boolean).to_vector<bool>() == std::vector<bool>{true, true, true, true, true});
    CHECK(full({2}, -3.7, Options(DType::u8)).to_vector<int64_t>() == std::vector<int64_t>{253, 253});
}
