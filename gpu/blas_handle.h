#pragma once
// An owned cuBLAS handle bound to one stream, with its own workspace so that
// no cuBLAS call allocates on the decode path (or inside a captured graph).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "gpu/device_array.h"

namespace dso::gpu {

class BlasHandle {
 public:
  explicit BlasHandle(cudaStream_t stream);
  ~BlasHandle();
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;

  void set_stream(cudaStream_t stream);
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceArray<std::byte> workspace_;
};

}  // namespace dso::gpu
