#include "core/device.h"
#include "core/device_context.h"

#include <cuda_runtime_api.h>

#include "core/error.h"

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

std::string device_name() { return device_name(0); }

std::string device_name(int device) {
  if (!gpu_available()) return "cpu";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();  // a failed probe must not poison later calls
    return "cuda device " + std::to_string(device);
  }
  return std::string(prop.name) + ", " + std::to_string(prop.multiProcessorCount) + " SMs";
}

ScopedDevice::ScopedDevice(int device) {
  int current = 0;
  require(cudaGetDevice(&current) == cudaSuccess, "no CUDA device can be used: ",
          cudaGetErrorString(cudaGetLastError()));
  if (current == device) return;
  int count = 0;
  const bool counted = cudaGetDeviceCount(&count) == cudaSuccess;
  require(counted && device >= 0 && device < count, "CUDA device ", device, " does not exist (", counted ? count : 0,
          " visible)");
  require(cudaSetDevice(device) == cudaSuccess, "cannot use CUDA device ", device, ": ",
          cudaGetErrorString(cudaGetLastError()));
  previous_ = current;
}

ScopedDevice::~ScopedDevice() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

}  // namespace dso
