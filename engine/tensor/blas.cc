#include "engine/tensor/blas.h"

#include <cblas.h>

namespace mrtrain::blas {

void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

void Gemv(bool trans, int64_t m, int64_t n, float alpha, const float* a, int64_t lda,
          const float* x, float beta, float* y) {
  if (m == 0 || n == 0) return;
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), alpha, a, static_cast<blasint>(lda), x, 1, beta, y, 1);
}

void Axpy(int64_t n, float alpha, const float* x, float* y) {
  cblas_saxpy(static_cast<blasint>(n), alpha, x, 1, y, 1);
}

void SetBlasThreads(int n) { openblas_set_num_threads(n); }

}  // namespace mrtrain::blas
