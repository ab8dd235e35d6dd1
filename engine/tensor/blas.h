#pragma once

#include <cstdint>

// The engine's only door to OpenBLAS: every other file calls these, so cblas.h stays here.
// All matrices are row-major. Thread-safe (OpenBLAS is), but see SetBlasThreads.
namespace mrtrain::blas {

// C[m x n] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// y[m or n] = alpha * op(A) * x + beta * y, A is m x n.
void Gemv(bool trans, int64_t m, int64_t n, float alpha, const float* a, int64_t lda,
          const float* x, float beta, float* y);

// y += alpha * x.
void Axpy(int64_t n, float alpha, const float* x, float* y);

// Sets how many threads OpenBLAS itself uses. The engine runs tasks in parallel on its own
// pool and sets 1 here, so results do not depend on the machine's core count.
void SetBlasThreads(int n);

}  // namespace mrtrain::blas
