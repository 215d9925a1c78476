#pragma once
// Matrix-matrix products through the BLAS (OpenBLAS's cblas_sgemm), for the
// CPU backend's prefill: a chunk of rows through a projection at once, and
// the tiles of prefill attention.
#include <cstdint>

namespace dso::cpu {

// y = x W^T, or y += x W^T with accumulate: model_ops.h's matmul for a block
// of rows at once. w [out_features][in_features], x [rows][in_features],
// y [rows][out_features], all fp32 row-major. The output columns are split
// over up to `threads` threads (0: the cores available) when the product is
// large. The BLAS sums in its own order, so results equal matmul's up to
// rounding, and may change in rounding with the thread count.
void gemm(const float* w, std::int64_t out_features, std::int64_t in_features, const float* x, std::int64_t rows,
          float* y, bool accumulate, int threads);

// c = alpha * a b^T + beta * c on the calling thread: a [m][k] with row
// stride lda, b [n][k] with stride ldb, c [m][n] with stride ldc.
void gemm_nt(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
             const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

// c = alpha * a b + beta * c on the calling thread: a [m][k], b [k][n], c [m][n].
void gemm_nn(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
             const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

}  // namespace dso::cpu
