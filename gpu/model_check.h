#pragma once
// Checks for CUDA and cuBLAS calls: a failure throws dso::Error naming the
// failing statement, file and line. With DSO_DEBUG_SYNC every launch is
// followed by a synchronisation, so an asynchronous fault is reported at the
// launch that caused it. Each macro is defined only if no other check header
// of the project has defined it first.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "core/error.h"

namespace dso::gpu {

[[noreturn]] inline void fail_cuda(cudaError_t e, const char* statement, const char* file, int line) {
  fail("CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") in `", statement, "` at ", file, ":", line);
}

[[noreturn]] inline void fail_cublas(cublasStatus_t s, const char* statement, const char* file, int line) {
  fail("cuBLAS error ", cublasGetStatusName(s), " (", cublasGetStatusString(s), ") in `", statement, "` at ", file, ":",
       line);
}

}  // namespace dso::gpu

#ifndef DSO_CUDA_CHECK
#define DSO_CUDA_CHECK(call)                                                                                 \
  do {                                                                                                       \
    const cudaError_t dso_cuda_status_ = (call);                                                             \
    if (dso_cuda_status_ != cudaSuccess) ::dso::gpu::fail_cuda(dso_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)
#endif

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
