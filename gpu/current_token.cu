#include "gpu/current_token.h"

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/grid_stride.cuh"

namespace dso::gpu {

namespace {

__global__ void current_token_kernel(CurrentTokenArgs a) {
  const std::int64_t heads = std::int64_t(a.sequences) * a.kv_heads;
  for (std::int64_t i = kernels::first_item(); i < heads; i += kernels::item_stride()) {
    const std::int32_t count = a.counts[i];
    a.indices[i * a.index_stride + count] = a.lengths[i / a.kv_heads];
    a.counts[i] = count + 1;
  }
}

}  // namespace

void append_current_token(const CurrentTokenArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads >= 0, "current token: negative sizes (sequences=", a.sequences,
          " kv_heads=", a.kv_heads, ")");
  const std::int64_t heads = std::int64_t(a.sequences) * a.kv_heads;
  if (heads == 0) return;
  require(a.index_stride > 0, "current token: index stride must be positive, got ", a.index_stride);
  require(a.indices && a.counts && a.lengths, "current token: null device pointer");
  current_token_kernel<<<kernels::grid_stride_blocks(heads), kernels::kGridStrideThreads, 0, stream>>>(a);
  DSO_CUDA_CHECK(launch_status(stream));
}

}  // namespace dso::gpu
