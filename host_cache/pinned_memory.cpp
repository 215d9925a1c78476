#include "host_cache/pinned_memory.h"

#include <cstdio>

#include "core/error.h"
#include "gpu/check.h"

namespace dso {

PinnedMemory::PinnedMemory(std::int64_t bytes) {
  require(bytes >= 0, "cannot allocate a negative size (", bytes, " bytes)");
  if (bytes == 0) return;
  void* p = nullptr;
  DSO_CUDA_CHECK(cudaHostAlloc(&p, std::size_t(bytes), cudaHostAllocPortable | cudaHostAllocMapped));
  data_ = static_cast<std::byte*>(p);
  bytes_ = bytes;
}

PinnedMemory::~PinnedMemory() {
  if (data_ == nullptr) return;
  // A destructor cannot throw; a failed free is reported and the memory leaks.
  const cudaError_t status = cudaFreeHost(data_);
  if (status != cudaSuccess) std::fprintf(stderr, "dsoffload: cudaFreeHost failed: %s\n", cudaGetErrorString(status));
}

}  // namespace dso
