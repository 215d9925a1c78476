#include "cli/process_memory.h"

#include <cuda_runtime_api.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "gpu/check.h"

namespace dso::cli {

ResidentMemory resident_memory() {
  std::ifstream status("/proc/self/status");
  require(bool(status), "cannot read /proc/self/status for the process's memory");
  ResidentMemory m;
  bool rss = false, peak = false;
  // Lines such as "VmRSS:\t  123456 kB".
  for (std::string line; std::getline(status, line);) {
    std::istringstream fields(line);
    std::string key, unit;
    std::int64_t kib = 0;
    if (!(fields >> key >> kib >> unit) || unit != "kB") continue;
    if (key == "VmRSS:") {
      m.rss_bytes = kib * 1024;
      rss = true;
    } else if (key == "VmHWM:") {
      m.peak_bytes = kib * 1024;
      peak = true;
    }
  }
  require(rss && peak, "/proc/self/status has no VmRSS or VmHWM line");
  return m;
}

std::int64_t gpu_memory_in_use() {
  std::size_t free = 0, total = 0;
  DSO_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return std::int64_t(total - free);
}

}  // namespace dso::cli
