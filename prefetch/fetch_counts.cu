#include "prefetch/fetch_counts.h"

#include "core/error.h"
#include "gpu/check.h"
#include "prefetch/window_rule.h"

namespace dso {

namespace {

__global__ void count_fetched_kernel(FetchCountArgs a) {
  const int heads = a.sequences * a.kv_heads;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < heads; i += gridDim.x * blockDim.x) {
    const std::int64_t n = a.lengths[i / a.kv_heads];
    a.fetched[i] = std::int32_t(a.selected[i] - (n - window_start(n, a.sink, a.recent)));
  }
}

}  // namespace

void count_fetched(const FetchCountArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads >= 0, "fetch counts: negative sizes");
  const int heads = a.sequences * a.kv_heads;
  if (heads == 0) return;
  require(a.selected && a.lengths && a.fetched, "fetch counts: null device pointer");
  constexpr int threads = 128;
  count_fetched_kernel<<<(heads + threads - 1) / threads, threads, 0, stream>>>(a);
  DSO_CUDA_CHECK(gpu::launch_status(stream));
}

}  // namespace dso
