#include "gpu/blas_handle.h"

namespace dso::gpu {

namespace {
// cuBLAS's recommended workspace on Hopper (4 MiB suffices on older parts).
constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;
}  // namespace

BlasHandle::BlasHandle(cudaStream_t stream) : workspace_(kWorkspaceBytes) {
  DSO_CUBLAS_CHECK(cublasCreate(&handle_));
  try {
    set_stream(stream);
  } catch (...) {
    cublasDestroy(handle_);
    throw;
  }
}

// A destructor cannot report a failure; cublasDestroy only fails for a handle
// that was never created, which the constructor rules out.
BlasHandle::~BlasHandle() { cublasDestroy(handle_); }

void BlasHandle::set_stream(cudaStream_t stream) {
  DSO_CUBLAS_CHECK(cublasSetStream(handle_, stream));
  // cublasSetStream puts the handle back on cuBLAS's own workspace pool.
  DSO_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.data(), workspace_.bytes()));
  stream_ = stream;
}

}  // namespace dso::gpu
