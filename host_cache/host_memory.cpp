#include "host_cache/host_memory.h"

#include "core/device.h"
#include "core/error.h"
#include "host_cache/aligned_memory.h"
#include "host_cache/numa.h"
#include "host_cache/numa_pinned_memory.h"
#include "host_cache/pinned_memory.h"

namespace dso {

std::string_view host_memory_kind_name(HostMemoryKind kind) {
  switch (kind) {
    case HostMemoryKind::automatic: return "automatic";
    case HostMemoryKind::aligned: return "aligned";
    case HostMemoryKind::pinned: return "pinned";
    case HostMemoryKind::numa_pinned: return "numa_pinned";
  }
  return "unknown";
}

HostMemoryKind resolve_host_memory_kind(HostMemoryKind kind) {
  if (kind != HostMemoryKind::automatic) return kind;
  if (!gpu_available()) return HostMemoryKind::aligned;
  return NumaTopology::machine().node_count() > 1 ? HostMemoryKind::numa_pinned : HostMemoryKind::pinned;
}

std::unique_ptr<HostMemory> allocate_host_memory(std::int64_t bytes, HostMemoryKind kind) {
  switch (resolve_host_memory_kind(kind)) {
    case HostMemoryKind::aligned: return std::make_unique<AlignedMemory>(bytes);
    case HostMemoryKind::pinned:
      require(gpu_available(), "pinned host memory needs a GPU, none is visible");
      return std::make_unique<PinnedMemory>(bytes);
    case HostMemoryKind::numa_pinned:
      require(gpu_available(), "pinned host memory needs a GPU, none is visible");
      return std::make_unique<NumaPinnedMemory>(bytes, NumaTopology::machine().gpu_node());
    case HostMemoryKind::automatic: break;
  }
  fail("unknown host memory kind ", int(kind));
}

}  // namespace dso
