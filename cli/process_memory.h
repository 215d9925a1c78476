#pragma once
// Memory in use, sampled during long runs to show that it does not grow: the
// process's resident set and its peak (Linux /proc/self/status), and the
// GPU's memory in use by everyone (cudaMemGetInfo: total - free).
#include <cstdint>

namespace dso::cli {

struct ResidentMemory {
  std::int64_t rss_bytes = 0;   // VmRSS
  std::int64_t peak_bytes = 0;  // VmHWM
};

// Throws dso::Error where /proc/self/status cannot be read or lacks the fields.
ResidentMemory resident_memory();

// Of the current device; needs one.
std::int64_t gpu_memory_in_use();

}  // namespace dso::cli
