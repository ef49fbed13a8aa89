// Tests of tensor/philox.h (Philox 4x32-10 known answers, the STREAM SPEC), tensor/generator.h (offsets, fills,
// statistical checks of the distributions) and the f16/bf16 bit conversions of tensor/dtype.h against
// hand-computed IEEE 754 bit patterns.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/philox.h"

using namespace cxr::tensor;

namespace {

struct PhiloxKat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t expected[4];
};

// Known-answer vectors for philox4x32 with 10 rounds. Source: the Random123 distribution by D. E. Shaw Research,
// file examples/kat_vectors, the three lines
//   philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000   6627e8d5 e169c58d bc57ac4c 9b00dbd8
//   philox4x32 10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff   408f276d 41c83b0e a20bc7c6 6d5451fd
//   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0   d16cfe09 94fdcceb 5001e420 24126ea1
// (columns: CTR[4] KEY[2] EXPECTED[4]; looked up in public copies of that file, not recalled).
// The last two rows are from the longer generated list of the Random123 manual's examples/kat_vectors
// (github.com/girving/random123-manual), lines
//   philox4x32 10 00000001 00000000 00000000 00000000   00000001 00000000   ac08141b dfc5ccbe 79c07a47 a7f66093
//   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344   00000000 ffffffff   08f7720c 845ee9e0 502ccd3d a9a00e27
const PhiloxKat kKats[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    {{0x00000001, 0x00000000, 0x00000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0xac08141b, 0xdfc5ccbe, 0x79c07a47, 0xa7f66093}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0x00000000, 0xffffffff},
     {0x08f7720c, 0x845ee9e0, 0x502ccd3d, 0xa9a00e27}},
};

uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors", "[cpu]") {
    for (const PhiloxKat& kat : kKats) {
        uint32_t out[4];
        philox4x32_10(kat.ctr, kat.key, out);
        for (int i = 0; i < 4; ++i) CHECK(out[i] == kat.expected[i]);
        // out may alias ctr
        uint32_t inplace[4] = {kat.ctr[0], kat.ctr[1], kat.ctr[2], kat.ctr[3]};
        philox4x32_10(inplace, kat.key, inplace);
        for (int i = 0; i < 4; ++i) CHECK(inplace[i] == kat.expected[i]);
    }
}

TEST_CASE("philox stream: word i is lane i%4 of the block with counter i/4 and key = seed", "[cpu]") {
    // seed 0, block 0 is the all-zero known answer
    CHECK(philox_u32(0, 0) == 0x6627e8d5u);
    CHECK(philox_u32(0, 1) == 0xe169c58du);
    CHECK(philox_u32(0, 2) == 0xbc57ac4cu);
    CHECK(philox_u32(0, 3) == 0x9b00dbd8u);

    const uint64_t seed = 0x0123456789abcdefull;
    const uint64_t c = 0x00000005fffffffeull;  // exercises the high counter word and the carry into it
    for (uint64_t block : {c, c + 1, c + 2}) {
        const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
        const uint32_t key[2] = {0x89abcdefu, 0x01234567u};
        uint32_t expected[4];
        philox4x32_10(ctr, key, expected);
        for (uint64_t lane = 0; lane < 4; ++lane) CHECK(philox_u32(seed, 4 * block + lane) == expected[lane]);
    }
    // different seeds give different streams
    CHECK(philox_u32(1, 0) != philox_u32(0, 0));
    CHECK(philox_u32(uint64_t(1) << 32, 0) != philox_u32(0, 0));
}

TEST_CASE("uniform conversions hit the documented end points", "[cpu]") {
    CHECK(uniform_f32_from_u32(0) == 0.0f);
    CHECK(uniform_f32_from_u32(0xffffffffu) == 1.0f - std::ldexp(1.0f, -24));
    CHECK(uniform_f32_from_u32(0x80000000u) == 0.5f);
    CHECK(uniform_f32_from_u32(0x000000ffu) == 0.0f);  // the low 8 bits are dropped
    CHECK(uniform_f64_from_u32x2(0, 0) == 0.0);
    CHECK(uniform_f64_from_u32x2(0xffffffffu, 0xffffffffu) == 1.0 - std::ldexp(1.0, -53));
    CHECK(uniform_f64_from_u32x2(0, 0x80000000u) == 0.5);
    CHECK(uniform_f64_from_u32x2(0x800u, 0) == std::ldexp(1.0, -53));  // lo bit 11 is the lowest bit used
    // normal f32 at u1 = 1 (w1 >> 8 == 2^24 - 1) is exactly 0; u2 = 0 selects cos -> r, sin -> 0
    CHECK(normal_f32_from_u32x2(0xffffffffu, 0, 0) == 0.0f);
    CHECK(normal_f32_from_u32x2(0, 0, 1) == 0.0f);
    CHECK(normal_f32_from_u32x2(0, 0, 0) == Approx(std::sqrt(-2.0 * std::log(std::ldexp(1.0, -24)))));
    CHECK(normal_f64_from_u32x4(0, 0, 0, 0, 0) == Approx(std::sqrt(-2.0 * std::log(std::ldexp(1.0, -53)))));
}

TEST_CASE("random fills give the same values however the draw is split", "[cpu]") {
    const uint64_t seed = 1234, off = 8;
    SECTION("uniform f32") {
        std::vector<float> whole(17), split(17);
        fill_uniform_f32(whole.data(), 17, seed, off, -1.0f, 2.0f);
        fill_uniform_f32(split.data(), 10, seed, off, -1.0f, 2.0f);
        fill_uniform_f32(split.data() + 10, 7, seed, off + uniform_f32_words(10), -1.0f, 2.0f);
        CHECK(whole == split);
        for (int k = 0; k < 17; ++k)
            CHECK(whole[k] == uniform_f32_in(uniform_f32_from_u32(philox_u32(seed, off + k)), -1.0f, 2.0f));
    }
    SECTION("uniform f64") {
        std::vector<double> whole(17), split(17);
        fill_uniform_f64(whole.data(), 17, seed, off, 0.0, 1.0);
        fill_uniform_f64(split.data(), 10, seed, off, 0.0, 1.0);
        fill_uniform_f64(split.data() + 10, 7, seed, off + uniform_f64_words(10), 0.0, 1.0);
        CHECK(whole == split);
        CHECK(whole[3] == uniform_f64_from_u32x2(philox_u32(seed, off + 6), philox_u32(seed, off + 7)));
    }
    SECTION("normal f32") {
        std::vector<float> whole(17), split(17);
        fill_normal_f32(whole.data(), 17, seed, off, 0.5f, 2.0f);
        fill_normal_f32(split.data(), 10, seed, off, 0.5f, 2.0f);
        fill_normal_f32(split.data() + 10, 7, seed, off + normal_f32_words(10), 0.5f, 2.0f);
        CHECK(whole == split);
        const uint32_t w1 = philox_u32(seed, off + 4), w2 = philox_u32(seed, off + 5);  // pair 2: values 4, 5
        CHECK(whole[4] == std::fma(normal_f32_from_u32x2(w1, w2, 0), 2.0f, 0.5f));
        CHECK(whole[5] == std::fma(normal_f32_from_u32x2(w1, w2, 1), 2.0f, 0.5f));
        CHECK(normal_f32_words(17) == 18);
    }
    SECTION("normal f64") {
        std::vector<double> whole(17), split(17);
        fill_normal_f64(whole.data(), 17, seed, off, 0.0, 1.0);
        fill_normal_f64(split.data(), 10, seed, off, 0.0, 1.0);
        fill_normal_f64(split.data() + 10, 7, seed, off + normal_f64_words(10), 0.0, 1.0);
        CHECK(whole == split);
        uint32_t w[4];
        for (int i = 0; i < 4; ++i) w[i] = philox_u32(seed, off + 12 + i);  // pair 3: values 6, 7
        CHECK(whole[7] == normal_f64_from_u32x4(w[0], w[1], w[2], w[3], 1));
        CHECK(normal_f64_words(17) == 36);
    }
    SECTION("randint, one and two words per value") {
        for (int64_t high : {int64_t(10), int64_t(1) << 40}) {
            std::vector<int64_t> whole(17), split(17);
            fill_randint_i64(whole.data(), 17, seed, off, -5, high);
            fill_randint_i64(split.data(), 10, seed, off, -5, high);
            fill_randint_i64(split.data() + 10, 7, seed, off + randint_words(10, -5, high), -5, high);
            CHECK(whole == split);
        }
        CHECK(randint_words(5, 0, int64_t(1) << 32) == 5);
        CHECK(randint_words(5, 0, (int64_t(1) << 32) + 1) == 10);
    }
    SECTION("bernoulli") {
        std::vector<uint8_t> whole(17), split(17);
        fill_bernoulli(whole.data(), 17, seed, off, 0.5f);
        fill_bernoulli(split.data(), 10, seed, off, 0.5f);
        fill_bernoulli(split.data() + 10, 7, seed, off + bernoulli_words(10), 0.5f);
        CHECK(whole == split);
    }
    SECTION("through a Generator's reserved offsets") {
        Generator gen(seed);
        std::vector<float> a(10), b(7), c(17);
        fill_uniform_f32(a.data(), 10, gen.seed(), gen.reserve(uniform_f32_words(10)), 0.0f, 1.0f);  // 12 words
        fill_uniform_f32(b.data(), 7, gen.seed(), gen.reserve(uniform_f32_words(7)), 0.0f, 1.0f);
        fill_uniform_f32(c.data(), 17, seed, 0, 0.0f, 1.0f);
        for (int k = 0; k < 10; ++k) CHECK(a[k] == c[k]);
        std::vector<float> b_ref(7);
        fill_uniform_f32(b_ref.data(), 7, seed, 12, 0.0f, 1.0f);  // b starts at the next whole block
        CHECK(b == b_ref);
        CHECK(gen.offset() == 20);
    }
}

TEST_CASE("Generator offsets, seeding and the default generator", "[cpu]") {
    Generator gen;
    CHECK(gen.seed() == Generator::kDefaultSeed);
    CHECK(gen.offset() == 0);
    CHECK(gen.reserve(1) == 0);
    CHECK(gen.offset() == 4);
    CHECK(gen.reserve(0) == 4);
    CHECK(gen.offset() == 4);
    CHECK(gen.reserve(8) == 4);
    CHECK(gen.reserve(9) == 12);
    CHECK(gen.offset() == 24);
    gen.set_offset(100);
    CHECK(gen.offset() == 100);
    CHECK_THROWS_AS(gen.set_offset(101), cxr::Error);
    gen.manual_seed(7);
    CHECK(gen.seed() == 7);
    CHECK(gen.offset() == 0);
    Generator copy = gen;
    copy.reserve(4);
    CHECK(copy.offset() == 4);
    CHECK(gen.offset() == 0);
    gen.set_offset(std::numeric_limits<uint64_t>::max() - 7);
    CHECK(gen.reserve(4) == std::numeric_limits<uint64_t>::max() - 7);
    CHECK_THROWS_AS(gen.reserve(8), cxr::Error);

    const uint64_t saved_seed = default_generator().seed(), saved_offset = default_generator().offset();
    manual_seed(42);
    CHECK(default_generator().seed() == 42);
    CHECK(default_generator().offset() == 0);
    default_generator().manual_seed(saved_seed);
    default_generator().set_offset(saved_offset);
}

TEST_CASE("uniform draws stay in range and are evenly spread", "[cpu]") {
    const int64_t n = 1000000;
    std::vector<float> u(n);
    fill_uniform_f32(u.data(), n, 99, 0, -2.0f, 3.0f);
    double sum = 0;
    int64_t below_half = 0;
    for (float x : u) {
        REQUIRE(x >= -2.0f);
        REQUIRE(x < 3.0f);
        sum += x;
        below_half += x < 0.5f;
    }
    // mean of U(-2, 3) is 0.5 with std 5/sqrt(12); allow 5 standard errors
    CHECK(std::abs(sum / n - 0.5) < 5 * (5 / std::sqrt(12.0)) / std::sqrt((double)n));
    CHECK(std::abs(below_half / (double)n - 0.5) < 5 * 0.5 / std::sqrt((double)n));

    std::vector<double> d(n);
    fill_uniform_f64(d.data(), n, 99, 0, 0.0, 1.0);
    double dsum = 0;
    for (double x : d) {
        REQUIRE(x >= 0.0);
        REQUIRE(x < 1.0);
        dsum += x;
    }
    CHECK(std::abs(dsum / n - 0.5) < 5 * std::sqrt(1 / 12.0) / std::sqrt((double)n));
}

namespace {
template <class T>
void check_normal_moments(const std::vector<T>& z, double mean, double std) {
    const double n = (double)z.size();
    double sum = 0, sq = 0;
    int64_t within_one = 0;
    for (T x : z) {
        REQUIRE(std::isfinite((double)x));
        const double s = ((double)x - mean) / std;
        sum += s;
        sq += s * s;
        within_one += std::abs(s) < 1.0;
    }
    const double m = sum / n, var = sq / n - m * m;
    // 5 standard errors: mean 1/sqrt(n), variance sqrt(2/n), P(|z|<1) = 0.682689 with sqrt(p(1-p)/n)
    CHECK(std::abs(m) < 5 / std::sqrt(n));
    CHECK(std::abs(var - 1) < 5 * std::sqrt(2 / n));
    const double p = 0.6826894921370859;
    CHECK(std::abs(within_one / n - p) < 5 * std::sqrt(p * (1 - p) / n));
}
}  // namespace

TEST_CASE("normal draws have the right mean, std and shape on 1e6 samples", "[cpu]") {
    const int64_t n = 1000000;
    std::vector<float> z(n);
    fill_normal_f32(z.data(), n, 2024, 0, 0.0f, 1.0f);
    check_normal_moments(z, 0.0, 1.0);
    fill_normal_f32(z.data(), n, 2025, 4, 3.0f, 0.5f);
    check_normal_moments(z, 3.0, 0.5);
    std::vector<double> d(n);
    fill_normal_f64(d.data(), n, 2024, 0, -1.0, 2.0);
    check_normal_moments(d, -1.0, 2.0);
}

TEST_CASE("randint covers its range uniformly", "[cpu]") {
    const int64_t n = 1000000, low = -3, high = 5, k = high - low;
    std::vector<int64_t> r(n);
    fill_randint_i64(r.data(), n, 5, 0, low, high);
    std::vector<int64_t> counts(k, 0);
    for (int64_t x : r) {
        REQUIRE(x >= low);
        REQUIRE(x < high);
        ++counts[x - low];
    }
    const double p = 1.0 / k, sd = std::sqrt(n * p * (1 - p));
    for (int64_t c : counts) CHECK(std::abs(c - n * p) < 5 * sd);

    // two words per value for a range beyond 2^32
    const int64_t big = int64_t(1) << 40;
    fill_randint_i64(r.data(), 1000, 5, 0, 0, big);
    int64_t above_half = 0;
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(r[i] >= 0);
        REQUIRE(r[i] < big);
        above_half += r[i] >= big / 2;
    }
    CHECK(above_half > 400);
    CHECK(above_half < 600);

    // the whole int64 range and a single-value range
    const int64_t lo64 = std::numeric_limits<int64_t>::min(), hi64 = std::numeric_limits<int64_t>::max();
    fill_randint_i64(r.data(), 1000, 6, 0, lo64, hi64);
    int64_t negative = 0;
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(r[i] < hi64);
        negative += r[i] < 0;
    }
    CHECK(negative > 400);
    CHECK(negative < 600);
    fill_randint_i64(r.data(), 10, 6, 0, 7, 8);
    for (int i = 0; i < 10; ++i) CHECK(r[i] == 7);
    CHECK_THROWS_AS(fill_randint_i64(r.data(), 10, 6, 0, 8, 8), cxr::Error);
}

TEST_CASE("bernoulli frequency matches p", "[cpu]") {
    const int64_t n = 1000000;
    std::vector<uint8_t> b(n);
    for (float p : {0.3f, 0.9f}) {
        fill_bernoulli(b.data(), n, 11, 0, p);
        int64_t ones = 0;
        for (uint8_t x : b) {
            REQUIRE(x <= 1);
            ones += x;
        }
        CHECK(std::abs(ones / (double)n - p) < 5 * std::sqrt(p * (1 - p) / n));
    }
    fill_bernoulli(b.data(), 1000, 11, 0, 0.0f);
    for (int i = 0; i < 1000; ++i) CHECK(b[i] == 0);
    fill_bernoulli(b.data(), 1000, 11, 0, 1.0f);
    for (int i = 0; i < 1000; ++i) CHECK(b[i] == 1);
    CHECK_THROWS_AS(fill_bernoulli(b.data(), 10, 11, 0, 1.5f), cxr::Error);
}

TEST_CASE("float -> f16 bits: known patterns and round to nearest even", "[cpu]") {
    CHECK(float_to_half_bits(1.0f) == 0x3C00);
    CHECK(float_to_half_bits(-2.0f) == 0xC000);
    CHECK(float_to_half_bits(0.0f) == 0x0000);
    CHECK(float_to_half_bits(-0.0f) == 0x8000);
    CHECK(float_to_half_bits(65504.0f) == 0x7BFF);                   // largest finite half
    CHECK(float_to_half_bits(65519.0f) == 0x7BFF);                   // below the halfway point 65520
    CHECK(float_to_half_bits(65520.0f) == 0x7C00);                   // halfway to 2^16: rounds to even = inf
    CHECK(float_to_half_bits(std::ldexp(1.0f, -14)) == 0x0400);      // smallest normal
    CHECK(float_to_half_bits(std::ldexp(1023.0f, -24)) == 0x03FF);   // largest subnormal
    CHECK(float_to_half_bits(std::ldexp(1.0f, -24)) == 0x0001);      // smallest subnormal
    CHECK(float_to_half_bits(std::ldexp(1.0f, -25)) == 0x0000);      // halfway between 0 and 2^-24: even = 0
    CHECK(float_to_half_bits(std::ldexp(1.0f, -25) * 1.0000001f) == 0x0001);  // just above halfway
    CHECK(float_to_half_bits(std::ldexp(3.0f, -25)) == 0x0002);      // halfway between 1 and 2 ulps: even = 2
    CHECK(float_to_half_bits(std::ldexp(1.0f, -26)) == 0x0000);
    // 1 + 2^-11 is halfway between 0x3C00 and 0x3C01: ties to the even 0x3C00
    CHECK(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
    // 1 + 3*2^-11 is halfway between 0x3C01 and 0x3C02: ties to the even 0x3C02
    CHECK(float_to_half_bits(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);
    CHECK(float_to_half_bits(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3C01);
    CHECK(float_to_half_bits(1.0f + std::ldexp(1.0f, -12)) == 0x3C00);
    // 2047.5 is halfway between 2047 (0x67FF, odd) and 2048 (0x6800): ties to even, carrying into the exponent
    CHECK(float_to_half_bits(2047.0f) == 0x67FF);
    CHECK(float_to_half_bits(2047.5f) == 0x6800);
    CHECK(float_to_half_bits(std::numeric_limits<float>::infinity()) == 0x7C00);
    CHECK(float_to_half_bits(-std::numeric_limits<float>::infinity()) == 0xFC00);
    CHECK(float_to_half_bits(1e10f) == 0x7C00);
    const uint16_t nan = float_to_half_bits(std::numeric_limits<float>::quiet_NaN());
    CHECK((nan & 0x7C00) == 0x7C00);
    CHECK((nan & 0x03FF) != 0);
    CHECK((float_to_half_bits(bits_float(0x7F800001u)) & 0x03FF) != 0);  // a signalling NaN stays NaN
}

TEST_CASE("f16 bits -> float: known values and exhaustive round trip", "[cpu]") {
    CHECK(half_bits_to_float(0x3C00) == 1.0f);
    CHECK(half_bits_to_float(0x7BFF) == 65504.0f);
    CHECK(half_bits_to_float(0x0001) == std::ldexp(1.0f, -24));
    CHECK(half_bits_to_float(0x03FF) == std::ldexp(1023.0f, -24));
    CHECK(half_bits_to_float(0x0400) == std::ldexp(1.0f, -14));
    CHECK(half_bits_to_float(0x3555) == 0.333251953125f);
    CHECK(float_bits(half_bits_to_float(0x8000)) == 0x80000000u);
    CHECK(half_bits_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
    CHECK(std::isnan(half_bits_to_float(0x7E00)));
    CHECK(std::isnan(half_bits_to_float(0x7C01)));
    int mismatches = 0;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const bool is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
        if (is_nan) continue;
        if (float_to_half_bits(half_bits_to_float((uint16_t)h)) != h) ++mismatches;
    }
    CHECK(mismatches == 0);
}

TEST_CASE("float <-> bf16 bits: known patterns, round to nearest even, round trip", "[cpu]") {
    CHECK(float_to_bf16_bits(1.0f) == 0x3F80);
    CHECK(float_to_bf16_bits(-2.0f) == 0xC000);
    CHECK(float_to_bf16_bits(0.0f) == 0x0000);
    CHECK(float_to_bf16_bits(-0.0f) == 0x8000);
    // 1 + 2^-8 is halfway between 0x3F80 and 0x3F81: ties to even 0x3F80
    CHECK(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);
    // 1 + 3*2^-8 is halfway between 0x3F81 and 0x3F82: ties to even 0x3F82
    CHECK(float_to_bf16_bits(1.0f + std::ldexp(3.0f, -8)) == 0x3F82);
    CHECK(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3F81);
    CHECK(float_to_bf16_bits(bits_float(0x3F80FFFFu)) == 0x3F81);
    CHECK(float_to_bf16_bits(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up to inf
    CHECK(float_to_bf16_bits(bits_float(0x7F7F7FFFu)) == 0x7F7F);            // largest finite bf16 stays
    CHECK(float_to_bf16_bits(std::numeric_limits<float>::infinity()) == 0x7F80);
    CHECK(float_to_bf16_bits(-std::numeric_limits<float>::infinity()) == 0xFF80);
    CHECK(float_to_bf16_bits(bits_float(0x00010000u)) == 0x0001);  // subnormals keep their top bits
    const uint16_t nan = float_to_bf16_bits(std::numeric_limits<float>::quiet_NaN());
    CHECK((nan & 0x7F80) == 0x7F80);
    CHECK((nan & 0x007F) != 0);
    CHECK((float_to_bf16_bits(bits_float(0x7F800001u)) & 0x007F) != 0);  // NaN with only low bits set stays NaN
    CHECK(bf16_bits_to_float(0x3F80) == 1.0f);
    CHECK(bf16_bits_to_float(0x4049) == 3.140625f);
    int mismatches = 0;
    for (uint32_t b = 0; b < 0x10000; ++b) {
        const bool is_nan = (b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0;
        if (is_nan) continue;
        if (float_to_bf16_bits(bf16_bits_to_float((uint16_t)b)) != b) ++mismatches;
    }
    CHECK(mismatches == 0);
}
