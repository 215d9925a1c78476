#pragma once
// Memory a new allocation can get, for refusing a run that does not fit
// before allocating anything.
#include <cstdint>

namespace dso {

// MemAvailable of /proc/meminfo (what can be had without swapping); the free
// physical pages where that file is missing.
std::int64_t available_host_bytes();
// Free memory of the current CUDA device.
std::int64_t available_gpu_bytes();

}  // namespace dso
