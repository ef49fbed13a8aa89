// Tests for tensor/cpu/gemm: the reference against a hand-computed product, then the fast float/double paths
// and the batched helper against the reference over odd shapes, all four transpose combinations, padded
// leading dimensions, alpha/beta combinations and beta == 0 with NaN in C (C must not be read).
// Tolerance for float: |fast - ref| <= atol + rtol*|ref| with atol = 1e-6 * (K + 1) * |alpha| (the float
// rounding error of a K-term dot product of values in [-1, 1] is well below K * 2^-24), rtol = 1e-5.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/error.h"
#include "tests/tensor/cpu_kernel_check.h"

using namespace cxr::tensor::cpu;

namespace {

struct GemmCase {
    int64_t M, N, K;
};

// Runs fast and reference on identical inputs with leading dimensions padded by `pad`, compares all of C
// (including the padding columns, which must stay untouched).
template <class T, class Fast>
void check_fast_vs_reference(Fast fast, bool ta, bool tb, GemmCase s, T alpha, T beta, int64_t pad, bool nan_c,
                             double rtol) {
    const int64_t a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
    const int64_t b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
    const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = s.N + pad;
    const auto A = cxr::test::random_uniform<T>(std::max<int64_t>(1, a_rows * lda), 11);
    const auto B = cxr::test::random_uniform<T>(std::max<int64_t>(1, b_rows * ldb), 12);
    auto C_ref = cxr::test::random_uniform<T>(std::max<int64_t>(1, s.M * ldc), 13);
    if (nan_c) {
        for (auto& c : C_ref) c = std::numeric_limits<T>::quiet_NaN();
    }
    auto C_fast = C_ref;
    gemm_reference<T>(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C_ref.data(), ldc);
    fast(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C_fast.data(), ldc);
    const double atol = 1e-6 * double(s.K + 1) * std::fabs(double(alpha)) * (sizeof(T) == 8 ? 1e-8 : 1.0);
    INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " trans_a=" << ta << " trans_b=" << tb
              << " alpha=" << alpha << " beta=" << beta << " pad=" << pad << " nan_c=" << nan_c);
    CXR_REQUIRE_CLOSE(C_fast.data(), C_ref.data(), int64_t(C_ref.size()), atol + 1e-30, rtol);
    if (beta == T(0)) {
        // Every element of the M x N block must be finite (C was not read).
        int64_t non_finite = 0;
        for (int64_t m = 0; m < s.M; ++m)
            for (int64_t n = 0; n < s.N; ++n) non_finite += std::isfinite(double(C_fast[m * ldc + n])) ? 0 : 1;
        REQUIRE(non_finite == 0);
    }
}

const std::vector<GemmCase> kShapes = {
    {1, 1, 1},       {7, 13, 5},    {6, 16, 256},  {5, 15, 255},   {65, 33, 129}, {33, 65, 1},
    {1, 300, 17},    {300, 1, 17},  {13, 17, 600}, {257, 257, 257}, {2000, 20, 9}, {3, 4200, 5},
};

}  // namespace

TEST_CASE("gemm_reference matches a hand-computed product", "[cpu][gemm]") {
    // A = [[1, 2, 3], [4, 5, 6]] (2x3), B = [[7, 8], [9, 10], [11, 12]] (3x2)
    // A*B = [[58, 64], [139, 154]]; with alpha = 2, beta = -1, C0 = [[1, 1], [1, 1]]: [[115, 127], [277, 307]].
    const std::vector<double> A = {1, 2, 3, 4, 5, 6};
    const std::vector<double> B = {7, 8, 9, 10, 11, 12};
    std::vector<double> C = {1, 1, 1, 1};
    gemm_reference<double>(false, false, 2, 2, 3, 2.0, A.data(), 3, B.data(), 2, -1.0, C.data(), 2);
    CHECK(C == std::vector<double>{115, 127, 277, 307});

    // Transposed storage of the same operands: At (3x2) = A^T, Bt (2x3) = B^T.
    const std::vector<double> At = {1, 4, 2, 5, 3, 6};
    const std::vector<double> Bt = {7, 9, 11, 8, 10, 12};
    std::vector<double> C2(4, std::numeric_limits<double>::quiet_NaN());
    gemm_reference<double>(true, true, 2, 2, 3, 1.0, At.data(), 2, Bt.data(), 3, 0.0, C2.data(), 2);
    CHECK(C2 == std::vector<double>{58, 64, 139, 154});
}

TEST_CASE("sgemm_fast matches the reference", "[cpu][gemm]") {
    INFO("kernel: " << sgemm_kernel_name());
    const bool tr[2] = {false, true};
    for (const auto& s : kShapes) {
        for (bool ta : tr) {
            for (bool tb : tr) {
                check_fast_vs_reference<float>(sgemm_fast, ta, tb, s, 1.0f, 0.0f, 0, false, 1e-5);
                check_fast_vs_reference<float>(sgemm_fast, ta, tb, s, 0.5f, -1.5f, 3, false, 1e-5);
                check_fast_vs_reference<float>(sgemm_fast, ta, tb, s, -2.0f, 1.0f, 1, false, 1e-5);
                check_fast_vs_reference<float>(sgemm_fast, ta, tb, s, 1.0f, 0.0f, 2, true, 1e-5);
            }
        }
    }
}

TEST_CASE("sgemm_fast_portable (the non-AVX2 micro-kernel) matches the reference", "[cpu][gemm]") {
    const bool tr[2] = {false, true};
    for (const auto& s : kShapes) {
        for (bool ta : tr) {
            for (bool tb : tr) {
                check_fast_vs_reference<float>(sgemm_fast_portable, ta, tb, s, 0.5f, -1.5f, 3, false, 1e-5);
                check_fast_vs_reference<float>(sgemm_fast_portable, ta, tb, s, 1.0f, 0.0f, 2, true, 1e-5);
            }
        }
    }
}

TEST_CASE("sgemm_fast: a large multi-block product", "[cpu][gemm]") {
    // Crosses the KC, MC and MBIG block boundaries; run threaded.
    check_fast_vs_reference<float>(sgemm_fast, false, false, {2001, 97, 530}, 1.0f, 0.25f, 5, false, 1e-5);
    check_fast_vs_reference<float>(sgemm_fast, true, true, {150, 4111, 40}, 1.0f, 0.0f, 0, true, 1e-5);
}

TEST_CASE("dgemm_fast and gemm<double> match the reference", "[cpu][gemm]") {
    const bool tr[2] = {false, true};
    for (const auto& s : kShapes) {
        for (bool ta : tr) {
            for (bool tb : tr) {
                check_fast_vs_reference<double>(dgemm_fast, ta, tb, s, 1.0, 0.0, 0, false, 1e-12);
                check_fast_vs_reference<double>(gemm<double>, ta, tb, s, 0.5, -1.5, 3, false, 1e-12);
                check_fast_vs_reference<double>(dgemm_fast, ta, tb, s, 1.0, 0.0, 2, true, 1e-12);
            }
        }
    }
}

TEST_CASE("gemm edge cases: empty sizes, K = 0, alpha = 0", "[cpu][gemm]") {
    std::vector<float> C = {1, 2, 3, 4};
    const float dummy = 0.0f;
    // K == 0: C = beta * C.
    sgemm_fast(false, false, 2, 2, 0, 1.0f, &dummy, 1, &dummy, 2, 2.0f, C.data(), 2);
    CHECK(C == std::vector<float>{2, 4, 6, 8});
    // alpha == 0 and beta == 0: C = 0 even if C holds NaN.
    std::vector<float> A = {1, 2, 3, 4};
    std::vector<float> Cn(4, std::numeric_limits<float>::quiet_NaN());
    sgemm_fast(false, false, 2, 2, 2, 0.0f, A.data(), 2, A.data(), 2, 0.0f, Cn.data(), 2);
    CHECK(Cn == std::vector<float>{0, 0, 0, 0});
    // M == 0: nothing touched.
    sgemm_fast(false, false, 0, 2, 2, 1.0f, A.data(), 2, A.data(), 2, 0.0f, C.data(), 2);
    CHECK(C == std::vector<float>{2, 4, 6, 8});
    // Bad leading dimension is an error.
    CHECK_THROWS_AS(sgemm_fast(false, false, 2, 2, 3, 1.0f, A.data(), 2, A.data(), 2, 0.0f, C.data(), 2),
                    cxr::Error);
}

TEST_CASE("gemm_batched matches per-matrix reference, including a broadcast operand", "[cpu][gemm]") {
    const int64_t batch = 5, M = 19, N = 23, K = 31;
    for (int64_t stride_a : {int64_t(0), M * K}) {
        const auto A = cxr::test::random_uniform<float>(std::max<int64_t>(1, stride_a) * batch + M * K, 1);
        const auto B = cxr::test::random_uniform<float>(batch * K * N, 2);
        auto C = cxr::test::random_uniform<float>(batch * M * N, 3);
        auto C_ref = C;
        gemm_batched<float>(false, true, M, N, K, 1.5f, A.data(), K, B.data(), K, 0.5f, C.data(), N, batch,
                            stride_a, K * N, M * N);
        // B is read as [N, K] per batch (trans_b) with ldb = K.
        for (int64_t b = 0; b < batch; ++b)
            gemm_reference<float>(false, true, M, N, K, 1.5f, A.data() + b * stride_a, K, B.data() + b * K * N, K,
                                  0.5f, C_ref.data() + b * M * N, N);
        INFO("stride_a=" << stride_a);
        CXR_REQUIRE_CLOSE(C.data(), C_ref.data(), batch * M * N, 1e-6 * (K + 1) * 1.5, 1e-5);
    }
}
