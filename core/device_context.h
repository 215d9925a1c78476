#pragma once
// The CUDA device a piece of work runs on, named by index, for engines that
// live on different devices of one process.
#include <string>

namespace dso {

// A one-line description of one device ("NVIDIA H100 80GB HBM3, 132 SMs"), or "cpu" without a GPU.
std::string device_name(int device);

// Makes `device` the calling thread's current CUDA device for the scope and
// restores the previous one after; throws dso::Error where it does not exist.
// Costs one cudaGetDevice where the device is current already.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device);
  ~ScopedDevice();
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = -1;  // -1: nothing to restore
};

}  // namespace dso
