#pragma once
// One family of CUDA error checks. Each records the failing statement, file
// and line. DSO_CUDA_CHECK throws dso::Error (launchers, tests, benchmarks);
// DSO_CUDA_TRY returns the cudaError_t to the caller (kernel headers, which
// stay free of the caller's error type). With DSO_DEBUG_SYNC every launch is
// followed by a stream synchronisation, so an asynchronous fault is reported
// at the launch that caused it.
#include <cuda_runtime_api.h>

#include "core/error.h"

namespace dso::gpu {

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* stmt, const char* file, int line) {
  fail("CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") in `", stmt, "` at ", file, ":",
       line);
}

inline void check_cuda(cudaError_t e, const char* stmt, const char* file, int line) {
  if (e != cudaSuccess) throw_cuda_error(e, stmt, file, line);
}

// The status of the launch just made on `stream`.
inline cudaError_t launch_status([[maybe_unused]] cudaStream_t stream) {
  cudaError_t e = cudaGetLastError();
#if defined(DSO_DEBUG_SYNC) && DSO_DEBUG_SYNC
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
#endif
  return e;
}

}  // namespace dso::gpu

#define DSO_CUDA_CHECK(stmt) ::dso::gpu::check_cuda((stmt), #stmt, __FILE__, __LINE__)

#define DSO_CUDA_TRY(stmt)                      \
  do {                                          \
    const cudaError_t dso_try_status_ = (stmt); \
    if (dso_try_status_ != cudaSuccess) return dso_try_status_; \
  } while (0)

// After a kernel launch: return its launch (or, with DSO_DEBUG_SYNC, execution) error.
#define DSO_CUDA_TRY_LAUNCH(stream) DSO_CUDA_TRY(::dso::gpu::launch_status(stream))
