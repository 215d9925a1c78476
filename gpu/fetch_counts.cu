#include "gpu/fetch_counts.h"

#include "core/error.h"
#include "core/recent_window.h"
#include "gpu/check.h"
#include "gpu/grid_stride.cuh"

namespace dso::gpu {

namespace {

__global__ void count_fetched_kernel(FetchCountArgs a) {
  const std::int64_t heads = std::int64_t(a.sequences) * a.kv_heads;
  for (std::int64_t i = kernels::first_item(); i < heads; i += kernels::item_stride()) {
    const std::int64_t n = a.lengths[i / a.kv_heads];
    a.fetched[i] = std::int32_t(a.selected[i] - (n - window_begin(n, a.sink, a.recent)));
  }
}

}  // namespace

void count_fetched(const FetchCountArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads >= 0, "fetch counts: negative sizes (sequences=", a.sequences,
          " kv_heads=", a.kv_heads, ")");
  require(a.sink >= 0 && a.recent >= 0, "fetch counts: negative budget (sink=", a.sink, " recent=", a.recent, ")");
  const std::int64_t heads = std::int64_t(a.sequences) * a.kv_heads;
  if (heads == 0) return;
  require(a.selected && a.lengths && a.fetched, "fetch counts: null device pointer");
  count_fetched_kernel<<<kernels::grid_stride_blocks(heads), kernels::kGridStrideThreads, 0, stream>>>(a);
  DSO_CUDA_CHECK(launch_status(stream));
}

}  // namespace dso::gpu
