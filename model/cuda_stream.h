#pragma once
// An owned CUDA stream that does not synchronise with the legacy default stream.
#include <cuda_runtime_api.h>

#include "gpu/model_check.h"

namespace dso {

class CudaStream {
 public:
  CudaStream() { DSO_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~CudaStream() { cudaStreamDestroy(stream_); }  // a destructor cannot report; destroying a valid stream does not fail
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t get() const { return stream_; }
  void synchronize() const { DSO_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace dso
