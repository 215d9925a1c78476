#pragma once
// Plain page-aligned host memory: the backing of the cache where no GPU needs
// to read it. Pages are not touched here, so a large cache costs nothing
// until it is written.
#include "host_cache/host_memory.h"

namespace dso {

class AlignedMemory final : public HostMemory {
 public:
  static constexpr std::size_t alignment = 4096;

  explicit AlignedMemory(std::int64_t bytes);
  ~AlignedMemory() override;
  HostMemoryKind kind() const override { return HostMemoryKind::aligned; }
};

}  // namespace dso
