#pragma once
// The cuBLAS and launch checks of the model operations, in the family of
// gpu/check.h (which they build on): a failure throws dso::Error naming the
// failing statement, file and line. With DSO_DEBUG_SYNC every launch is
// followed by a synchronisation, so an asynchronous fault is reported at the
// launch that caused it.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "gpu/check.h"

namespace dso::gpu {

[[noreturn]] inline void fail_cublas(cublasStatus_t s, const char* statement, const char* file, int line) {
  fail("cuBLAS error ", cublasGetStatusName(s), " (", cublasGetStatusString(s), ") in `", statement, "` at ", file, ":",
       line);
}

}  // namespace dso::gpu

#ifndef DSO_CUBLAS_CHECK
#define DSO_CUBLAS_CHECK(call)                                                \
  do {                                                                        \
    const cublasStatus_t dso_cublas_status_ = (call);                         \
    if (dso_cublas_status_ != CUBLAS_STATUS_SUCCESS)                          \
      ::dso::gpu::fail_cublas(dso_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)
#endif

// `launch` is an expression returning the launch's cudaError_t.
#ifndef DSO_LAUNCH_CHECK
#if DSO_DEBUG_SYNC
#define DSO_LAUNCH_CHECK(launch, stream)           \
  do {                                             \
    DSO_CUDA_CHECK(launch);                        \
    DSO_CUDA_CHECK(cudaStreamSynchronize(stream)); \
  } while (0)
#else
#define DSO_LAUNCH_CHECK(launch, stream) DSO_CUDA_CHECK(launch)
#endif
#endif
