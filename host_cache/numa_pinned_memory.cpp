#include "host_cache/numa_pinned_memory.h"

#include <cstdio>

#include "gpu/check.h"
#include "host_cache/numa.h"

namespace dso {

NumaPinnedMemory::NumaPinnedMemory(std::int64_t bytes, int node) : node_(node) {
  require(bytes >= 0, "cannot allocate a negative size (", bytes, " bytes)");
  if (bytes == 0) return;
  const NumaTopology& numa = NumaTopology::machine();
  void* p = numa.allocate_on_node(bytes, node);
  const cudaError_t status =
      cudaHostRegister(p, std::size_t(bytes), cudaHostRegisterPortable | cudaHostRegisterMapped);
  if (status != cudaSuccess) {
    numa.free_on_node(p, bytes);
    gpu::throw_cuda_error(status, "cudaHostRegister(p, bytes, cudaHostRegisterPortable | cudaHostRegisterMapped)",
                          __FILE__, __LINE__);
  }
  data_ = static_cast<std::byte*>(p);
  bytes_ = bytes;
}

NumaPinnedMemory::~NumaPinnedMemory() {
  if (data_ == nullptr) return;
  // A destructor cannot throw: a failed unregister is reported, and the pages
  // are then left allocated rather than freed while still registered.
  const cudaError_t status = cudaHostUnregister(data_);
  if (status != cudaSuccess) {
    std::fprintf(stderr, "dsoffload: cudaHostUnregister failed: %s\n", cudaGetErrorString(status));
    return;
  }
  NumaTopology::machine().free_on_node(data_, bytes_);
}

}  // namespace dso
