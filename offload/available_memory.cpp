#include "offload/available_memory.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "gpu/check.h"

namespace dso {

std::int64_t available_host_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  const std::string key = "MemAvailable:";
  for (std::string line; std::getline(meminfo, line);)
    if (line.compare(0, key.size(), key) == 0) return std::stoll(line.substr(key.size())) * 1024;  // in kB
  return std::int64_t(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGESIZE);
}

std::int64_t available_gpu_bytes() {
  std::size_t free = 0;
  std::size_t total = 0;
  DSO_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return std::int64_t(free);
}

}  // namespace dso
