#pragma once
// Whether a CUDA device can be used by this process. The library always links
// the CUDA runtime; without a driver or a GPU it runs on the CPU backend.
#include <string>

namespace dso {

bool gpu_available();
// A one-line description of device 0 ("NVIDIA H100 80GB HBM3, 132 SMs") or "cpu".
std::string device_name();

}  // namespace dso
