#pragma once
// One owned block of host memory, of one of three kinds. The K/V cache holds
// its storage through this interface so that the same cache works on a
// machine without a GPU (plain aligned memory) and on one with a GPU, where
// the GPU must be able to read it directly (pinned memory).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace dso {

enum class HostMemoryKind {
  automatic,    // pinned when a GPU is present, aligned otherwise
  aligned,      // plain memory, page aligned
  pinned,       // cudaHostAlloc
  numa_pinned,  // allocated on the GPU's NUMA node with hwloc, then cudaHostRegister
};

std::string_view host_memory_kind_name(HostMemoryKind kind);

class HostMemory {
 public:
  virtual ~HostMemory() = default;
  HostMemory(const HostMemory&) = delete;
  HostMemory& operator=(const HostMemory&) = delete;

  std::byte* data() const { return data_; }
  std::int64_t bytes() const { return bytes_; }
  virtual HostMemoryKind kind() const = 0;

 protected:
  HostMemory() = default;
  std::byte* data_ = nullptr;
  std::int64_t bytes_ = 0;
};

// Resolves `automatic` to the kind this machine supports: pinned memory on the
// GPU's NUMA node where there are several nodes, cudaHostAlloc where there is
// one, aligned memory without a GPU.
HostMemoryKind resolve_host_memory_kind(HostMemoryKind kind);

// Throws dso::Error naming the size and kind when the allocation fails.
std::unique_ptr<HostMemory> allocate_host_memory(std::int64_t bytes, HostMemoryKind kind);

}  // namespace dso
