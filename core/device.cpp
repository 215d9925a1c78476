#include "core/device.h"

#include <cuda_runtime_api.h>

namespace dso {

bool gpu_available() {
  static const bool available = [] {
    int n = 0;
    const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    cudaGetLastError();  // a failed probe must not poison later calls
    return ok;
  }();
  return available;
}

std::string device_name() {
  if (!gpu_available()) return "cpu";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cuda device 0";
  return std::string(prop.name) + ", " + std::to_string(prop.multiProcessorCount) + " SMs";
}

}  // namespace dso
