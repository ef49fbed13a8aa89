// Tests of the "philox_fill" kernel seam (tensor/ops/random.h) and of the random creation ops that use it.
// [cpu]: the CPU kernel against values derived directly from philox_u32 and the word->value conversions of
//        tensor/philox.h (both checked against the Random123 known answers in test_philox.cpp), at offsets that
//        are not multiples of 4; the generator offsets rand/randn/randint consume; every argument error.
// [gpu][cuda]: the CUDA kernel (tensor/cuda/random.cu) against the CPU kernel for many (seed, offset, n):
//        uniforms and randint bit for bit, normals to a few ulp (CUDA log/sin/cos, see philox.h); and rand, randn,
//        randint, bernoulli and dropout on a CUDA device against the same calls on the CPU.
#include "tests/support/testing.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <type_traits>
#include <sstream>
#include <vector>

#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/dropout.h"
#include "tensor/ops/random.h"
#include "tensor/philox.h"

using namespace cxr::tensor;

namespace {

const Device kGpu = Device::cuda(0);

PhiloxFillParams params(PhiloxDist dist, uint64_t seed, uint64_t offset, double a = 0.0, double b = 1.0) {
    PhiloxFillParams p;
    p.dist = dist;
    p.seed = seed;
    p.offset = offset;
    p.a = a;
    p.b = b;
    return p;
}

PhiloxFillParams randint_params(uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
    PhiloxFillParams p;
    p.dist = PhiloxDist::randint;
    p.seed = seed;
    p.offset = offset;
    p.low = low;
    p.high = high;
    return p;
}

Tensor fill_on(Device dev, const PhiloxFillParams& p, int64_t n, DType dt) {
    Tensor out = Tensor::empty({n}, dt, dev);
    get_kernel<PhiloxFillKernel>("philox_fill", dev)(out, p);
    return out.to(Device::cpu());
}

uint32_t W(uint64_t seed, uint64_t offset, uint64_t j) { return philox_u32(seed, offset + j); }

// Compares two CPU tensors of the same dtype byte for byte; the message names the draw and the first mismatch.
template <class T>
void expect_bitwise(const Tensor& got, const Tensor& want, const std::string& what) {
    REQUIRE(got.numel() == want.numel());
    const T* g = got.data<T>();
    const T* w = want.data<T>();
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < got.numel(); ++i)
        if (std::memcmp(&g[i], &w[i], sizeof(T)) != 0) {
            if (first < 0) first = i;
            ++bad;
        }
    std::ostringstream msg;
    msg << what << ": " << bad << " of " << got.numel() << " values differ";
    if (first >= 0) msg << "; first at " << first << ": got " << (double)g[first] << ", want " << (double)w[first];
    INFO(msg.str());
    CHECK(bad == 0);
}

// Normals: |got - want| <= ulps * ulp(max(|want|, 1)) per value; reports the largest error in units of that ulp.
template <class T>
void expect_ulps(const Tensor& got, const Tensor& want, double ulps, const std::string& what) {
    REQUIRE(got.numel() == want.numel());
    const T* g = got.data<T>();
    const T* w = want.data<T>();
    const double eps = std::is_same_v<T, float> ? 1.1920928955078125e-07 : 2.220446049250313e-16;
    double worst = 0.0;
    int64_t worst_i = -1, identical = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
        const double scale = std::max(std::fabs((double)w[i]), 1.0) * eps;
        double e = std::fabs((double)g[i] - (double)w[i]) / scale;
        if (g[i] == w[i]) ++identical;
        if (std::isnan(e)) e = INFINITY;
        if (worst_i < 0 || e > worst) {
            worst = e;
            worst_i = i;
        }
    }
    std::ostringstream msg;
    msg << what << ": max error " << worst << " ulp (limit " << ulps << ") at " << worst_i << "; " << identical
        << " of " << got.numel() << " bit-identical";
    INFO(msg.str());
    CHECK(worst <= ulps);
}

}  // namespace

// ------------------------------------------------------------------------------------------------ CPU

TEST_CASE("philox_fill (cpu): every distribution equals the STREAM SPEC at offsets not multiple of 4", "[cpu]") {
    const uint64_t seed = 0x0123456789abcdefull;
    for (uint64_t offset : {0ull, 1ull, 2ull, 3ull, 5ull, 4099ull}) {
        const int64_t n = 7;
        Tensor u32 = fill_on(Device::cpu(), params(PhiloxDist::uniform, seed, offset, -2.0, 3.0), n, DType::f32);
        Tensor u64 = fill_on(Device::cpu(), params(PhiloxDist::uniform, seed, offset), n, DType::f64);
        Tensor n32 = fill_on(Device::cpu(), params(PhiloxDist::normal, seed, offset, 1.0, 2.0), n, DType::f32);
        Tensor n64 = fill_on(Device::cpu(), params(PhiloxDist::normal, seed, offset), n, DType::f64);
        Tensor r1 = fill_on(Device::cpu(), randint_params(seed, offset, -5, 10), n, DType::i64);
        Tensor r2 = fill_on(Device::cpu(), randint_params(seed, offset, 0, INT64_C(1) << 40), n, DType::i64);
        for (int64_t k = 0; k < n; ++k) {
            INFO("offset " << offset << " k " << k);
            CHECK(u32.data<float>()[k] == fmaf(uniform_f32_from_u32(W(seed, offset, k)), 5.0f, -2.0f));
            CHECK(u64.data<double>()[k] ==
                  uniform_f64_from_u32x2(W(seed, offset, 2 * k), W(seed, offset, 2 * k + 1)));
            const uint64_t pr = (uint64_t)k / 2;
            const int which = (int)(k % 2);
            CHECK(n32.data<float>()[k] ==
                  fmaf(normal_f32_from_u32x2(W(seed, offset, 2 * pr), W(seed, offset, 2 * pr + 1), which), 2.0f,
                       1.0f));
            CHECK(n64.data<double>()[k] == normal_f64_from_u32x4(W(seed, offset, 4 * pr), W(seed, offset, 4 * pr + 1),
                                                                 W(seed, offset, 4 * pr + 2),
                                                                 W(seed, offset, 4 * pr + 3), which));
            CHECK(r1.data<int64_t>()[k] == -5 + (int64_t)(W(seed, offset, k) % 15u));
            const uint64_t x = (uint64_t)W(seed, offset, 2 * k) | ((uint64_t)W(seed, offset, 2 * k + 1) << 32);
            CHECK(r2.data<int64_t>()[k] == (int64_t)(x % (UINT64_C(1) << 40)));
        }
    }
}

TEST_CASE("rand/randn/randint (cpu): values at the generator's offset, offsets advance by whole blocks", "[cpu]") {
    Generator g(42);
    Tensor a = rand({3}, DType::f32, &g);  // words 0..2, next offset 4
    CHECK(g.offset() == 4);
    Tensor b = randn({3}, DType::f64, &g);  // 4 * ceil(3/2) = 8 words at offset 4
    CHECK(g.offset() == 12);
    Tensor c = randint(0, 6, {5}, DType::i64, &g);  // 5 words at 12 -> next 20
    CHECK(g.offset() == 20);
    Tensor h = rand({2}, DType::f16, &g);  // drawn in f32 then rounded
    CHECK(h.dtype() == DType::f16);
    CHECK(g.offset() == 24);
    for (int k = 0; k < 3; ++k) CHECK(a.data<float>()[k] == uniform_f32_from_u32(philox_u32(42, k)));
    CHECK(b.data<double>()[2] ==
          normal_f64_from_u32x4(philox_u32(42, 8), philox_u32(42, 9), philox_u32(42, 10), philox_u32(42, 11), 0));
    for (int k = 0; k < 5; ++k) CHECK(c.data<int64_t>()[k] == (int64_t)(philox_u32(42, 12 + k) % 6u));
    // bernoulli(shape, p): 1 exactly where the f32 uniform of the same word is < p.
    Generator g2(7);
    Tensor m = bernoulli({9}, 0.3, DType::f32, &g2);
    for (int k = 0; k < 9; ++k)
        CHECK(m.data<float>()[k] == (uniform_f32_from_u32(philox_u32(7, k)) < 0.3f ? 1.0f : 0.0f));
}

TEST_CASE("philox_fill: bad arguments are errors naming the problem", "[cpu]") {
    auto fill = get_kernel<PhiloxFillKernel>("philox_fill", Device::cpu());
    Tensor nc = Tensor::empty({3, 4}, DType::f32).transpose(0, 1);
    CHECK_THROWS_WITH(fill(nc, params(PhiloxDist::uniform, 1, 0)), Catch::Contains("contiguous"));
    CHECK_THROWS_WITH(fill(Tensor::empty({4}, DType::i64), params(PhiloxDist::uniform, 1, 0)),
                      Catch::Contains("uniform draws fill f32 or f64"));
    CHECK_THROWS_WITH(fill(Tensor::empty({4}, DType::f16), params(PhiloxDist::normal, 1, 0)),
                      Catch::Contains("normal draws fill f32 or f64"));
    CHECK_THROWS_WITH(fill(Tensor::empty({4}, DType::f32), randint_params(1, 0, 0, 5)),
                      Catch::Contains("randint fills i64"));
    CHECK_THROWS_WITH(fill(Tensor::empty({4}, DType::f32), params(PhiloxDist::uniform, 1, 0, 2.0, 1.0)),
                      Catch::Contains("lo 2 > hi 1"));
    CHECK_THROWS_WITH(fill(Tensor::empty({4}, DType::f32), params(PhiloxDist::normal, 1, 0, 0.0, -1.0)),
                      Catch::Contains("std must be >= 0"));
    CHECK_THROWS_WITH(fill(Tensor::empty({4}, DType::i64), randint_params(1, 0, 3, 3)),
                      Catch::Contains("empty range [3, 3)"));
    CHECK_THROWS_WITH(randint(5, 5, {2}), Catch::Contains("empty range"));
    CHECK_THROWS_WITH(rand({2}, DType::i32), Catch::Contains("floating dtype"));
    CHECK_THROWS_WITH(bernoulli({2}, 1.5), Catch::Contains("outside [0, 1]"));
    fill(Tensor::empty({0}, DType::f32), params(PhiloxDist::uniform, 1, 0));  // empty: no-op
}

// ------------------------------------------------------------------------------------------------ GPU

TEST_CASE("philox_fill (cuda): the GPU stream equals the CPU stream for many (seed, offset, n)", "[gpu][cuda]") {
    CXR_SKIP_WITHOUT_GPU();
    const uint64_t seeds[] = {0ull, 42ull, 0xffffffffffffffffull};
    const uint64_t offsets[] = {0ull, 1ull, 2ull, 3ull, 4ull, 6ull, 1027ull, (1ull << 34) + 3};
    const int64_t sizes[] = {1, 2, 7, 33, 1023, 4097};
    for (uint64_t seed : seeds)
        for (uint64_t offset : offsets)
            for (int64_t n : sizes) {
                std::ostringstream tag;
                tag << "seed " << seed << " offset " << offset << " n " << n;
                const std::string t = tag.str();
                auto both = [&](const PhiloxFillParams& p, DType dt, Tensor& cpu, Tensor& gpu) {
                    cpu = fill_on(Device::cpu(), p, n, dt);
                    gpu = fill_on(kGpu, p, n, dt);
                };
                Tensor c, g;
                both(params(PhiloxDist::uniform, seed, offset), DType::f32, c, g);
                expect_bitwise<float>(g, c, "uniform f32 " + t);
                both(params(PhiloxDist::uniform, seed, offset, -3.0, 0.7), DType::f32, c, g);
                expect_bitwise<float>(g, c, "uniform f32 [-3, 0.7) " + t);
                both(params(PhiloxDist::uniform, seed, offset, -1.0, 5.0), DType::f64, c, g);
                expect_bitwise<double>(g, c, "uniform f64 [-1, 5) " + t);
                both(randint_params(seed, offset, -7, 1000), DType::i64, c, g);
                expect_bitwise<int64_t>(g, c, "randint i64 one word " + t);
                both(randint_params(seed, offset, INT64_MIN / 2, INT64_MAX / 2), DType::i64, c, g);
                expect_bitwise<int64_t>(g, c, "randint i64 two words " + t);
                both(params(PhiloxDist::normal, seed, offset, 0.5, 2.0), DType::f32, c, g);
                expect_ulps<float>(g, c, 8.0, "normal f32 " + t);
                both(params(PhiloxDist::normal, seed, offset), DType::f64, c, g);
                expect_ulps<double>(g, c, 8.0, "normal f64 " + t);
            }
}

TEST_CASE("philox_fill (cuda): a large draw over many thread blocks equals the CPU", "[gpu][cuda]") {
    CXR_SKIP_WITHOUT_GPU();
    const int64_t n = (INT64_C(1) << 22) + 13;  // 2^20 Philox blocks: 4096 thread blocks of 256 threads
    Tensor c = fill_on(Device::cpu(), params(PhiloxDist::uniform, 9, 5), n, DType::f32);
    Tensor g = fill_on(kGpu, params(PhiloxDist::uniform, 9, 5), n, DType::f32);
    expect_bitwise<float>(g, c, "uniform f32 n=" + std::to_string(n));
}

TEST_CASE("rand/randn/randint/bernoulli/dropout on CUDA reproduce the CPU for the same generator", "[gpu][cuda]") {
    CXR_SKIP_WITHOUT_GPU();
    for (int64_t n : {1, 7, 33, 1023}) {
        INFO("n " << n);
        Generator gc(123), gg(123);
        expect_bitwise<float>(rand({n}, Options(DType::f32, kGpu), &gg).to(Device::cpu()), rand({n}, DType::f32, &gc),
                              "rand f32");
        expect_bitwise<double>(rand({n}, Options(DType::f64, kGpu), &gg).to(Device::cpu()),
                               rand({n}, DType::f64, &gc), "rand f64");
        expect_ulps<float>(randn({n}, Options(DType::f32, kGpu), &gg).to(Device::cpu()), randn({n}, DType::f32, &gc),
                           8.0, "randn f32");
        expect_ulps<double>(randn({n}, Options(DType::f64, kGpu), &gg).to(Device::cpu()),
                            randn({n}, DType::f64, &gc), 8.0, "randn f64");
        expect_bitwise<int64_t>(randint(-3, 9, {n}, Options(DType::i64, kGpu), &gg).to(Device::cpu()),
                                randint(-3, 9, {n}, DType::i64, &gc), "randint");
        expect_bitwise<float>(bernoulli({n}, 0.25, Options(DType::f32, kGpu), &gg).to(Device::cpu()),
                              bernoulli({n}, 0.25, DType::f32, &gc), "bernoulli");
        Tensor x = ones({n}, DType::f32);
        expect_bitwise<float>(dropout(x.to(kGpu), 0.5, true, &gg).to(Device::cpu()), dropout(x, 0.5, true, &gc),
                              "dropout");
        // bf16 draws: f32 on the device, then rounded on the device.
        CHECK(rand({n}, Options(DType::bf16, kGpu), &gg).to(Device::cpu()).to_vector<double>() ==
              rand({n}, DType::bf16, &gc).to_vector<double>());
        CHECK(gg.offset() == gc.offset());
    }
}
