#include "host_cache/aligned_memory.h"

#include <cstdlib>

#include "core/error.h"

namespace dso {

AlignedMemory::AlignedMemory(std::int64_t bytes) {
  require(bytes >= 0, "cannot allocate a negative size (", bytes, " bytes)");
  if (bytes == 0) return;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const auto rounded = (std::size_t(bytes) + alignment - 1) / alignment * alignment;
  data_ = static_cast<std::byte*>(std::aligned_alloc(alignment, rounded));
  require(data_ != nullptr, "could not allocate ", bytes, " bytes of host memory");
  bytes_ = bytes;
}

AlignedMemory::~AlignedMemory() { std::free(data_); }

}  // namespace dso
