#pragma once
// Page-locked host memory from cudaHostAlloc: the GPU reads it by DMA at the
// full PCIe rate and kernels may read it directly (zero-copy).
#include "host_cache/host_memory.h"

namespace dso {

class PinnedMemory final : public HostMemory {
 public:
  explicit PinnedMemory(std::int64_t bytes);
  ~PinnedMemory() override;
  HostMemoryKind kind() const override { return HostMemoryKind::pinned; }
};

}  // namespace dso
