#include "cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "cpu/parallel.h"

namespace dso::cpu {

namespace {

// Every BLAS call runs on one thread, the caller's: the backend spreads work
// over its own threads (parallel.h), and BLAS threads beside them would
// oversubscribe the cores.
void keep_blas_single_threaded() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

blasint blas_int(std::int64_t n) {
  require(n >= 0 && n <= std::numeric_limits<blasint>::max(), "matrix dimension ", n, " is past the BLAS's range");
  return blasint(n);
}

void sgemm(CBLAS_TRANSPOSE tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  keep_blas_single_threaded();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, blas_int(m), blas_int(n), blas_int(k), alpha, a, blas_int(lda), b,
              blas_int(ldb), beta, c, blas_int(ldc));
}

// Below this many multiply-adds per thread, starting a thread costs more than it saves.
constexpr std::int64_t kMinWorkPerThread = std::int64_t(1) << 22;
// Column splits fall on whole register tiles of the BLAS's kernels.
constexpr std::int64_t kColumnAlign = 16;

}  // namespace

void gemm_nt(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
             const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  sgemm(CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nn(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
             const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  sgemm(CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(const float* w, std::int64_t out_features, std::int64_t in_features, const float* x, std::int64_t rows,
          float* y, bool accumulate, int threads) {
  require(rows > 0, "matmul: rows must be positive, got ", rows);
  require(out_features > 0 && in_features > 0, "matmul shape must be positive: ", out_features, " x ", in_features);
  const std::int64_t tiles = (out_features + kColumnAlign - 1) / kColumnAlign;
  const std::int64_t parts = std::clamp<std::int64_t>(rows * out_features * in_features / kMinWorkPerThread, 1,
                                                      std::min<std::int64_t>(resolve_threads(threads), tiles));
  parallel_for(parts, int(parts), [&](std::int64_t p) {
    const std::int64_t begin = tiles * p / parts * kColumnAlign;
    const std::int64_t end = std::min(out_features, tiles * (p + 1) / parts * kColumnAlign);
    gemm_nt(rows, end - begin, in_features, 1.0f, x, in_features, w + begin * in_features, in_features,
            accumulate ? 1.0f : 0.0f, y + begin, out_features);
  });
}

}  // namespace dso::cpu
