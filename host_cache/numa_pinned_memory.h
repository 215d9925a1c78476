#pragma once
// Pinned host memory placed on the GPU's NUMA node: allocated there with hwloc,
// then page-locked and mapped for the GPU with cudaHostRegister. cudaHostAlloc
// gives no say over placement, which costs bandwidth on multi-socket hosts.
#include "host_cache/host_memory.h"

namespace dso {

class NumaPinnedMemory final : public HostMemory {
 public:
  NumaPinnedMemory(std::int64_t bytes, int node);
  ~NumaPinnedMemory() override;
  HostMemoryKind kind() const override { return HostMemoryKind::numa_pinned; }
  int node() const { return node_; }

 private:
  int node_;
};

}  // namespace dso
