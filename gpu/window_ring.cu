#include "gpu/window_ring.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/grid_stride.cuh"

namespace dso::gpu {

namespace {

// One thread per element of a kept token's K or V row.
template <class E>
__global__ void ring_append_kernel(RingAppendArgs a) {
  const std::int64_t kept = a.count < a.ring.size ? a.count : a.ring.size;
  const std::int64_t first = a.count - kept;
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * kept * 2 * a.head_dim;
  for (std::int64_t i = kernels::first_item(); i < total; i += kernels::item_stride()) {
    const int c = int(i % a.head_dim);
    std::int64_t rest = i / a.head_dim;
    const bool value = rest % 2;
    rest /= 2;
    const std::int64_t t = first + rest % kept;
    rest /= kept;
    const int h = int(rest % a.kv_heads);
    const int s = int(rest / a.kv_heads);
    const std::int64_t row = (std::int64_t(a.positions[s]) + t) % a.ring.size;
    const ConstRows& src = value ? a.values : a.keys;
    const Rows& dst = value ? a.ring.values : a.ring.keys;
    static_cast<E*>(dst.data)[dst.strides.offset(s, h, row) + c] =
        static_cast<const E*>(src.data)[src.strides.offset(s, h, t) + c];
  }
}

}  // namespace

void append_to_ring(const RingAppendArgs& a, cudaStream_t stream) {
  require(a.ring.size > 0, "window ring: size must be positive, got ", a.ring.size);
  require(a.sequences >= 0 && a.kv_heads >= 0 && a.count >= 0 && a.head_dim >= 0,
          "window ring: negative sizes (sequences=", a.sequences, " kv_heads=", a.kv_heads, " count=", a.count,
          " head_dim=", a.head_dim, ")");
  const std::int64_t kept = std::min<std::int64_t>(a.count, a.ring.size);
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * kept * 2 * a.head_dim;
  dispatch_storage(a.dtype, [&](auto element) {
    if (total == 0) return;
    require(a.keys.data && a.values.data && a.ring.keys.data && a.ring.values.data && a.positions,
            "window ring: null device pointer");
    ring_append_kernel<decltype(element)>
        <<<kernels::grid_stride_blocks(total), kernels::kGridStrideThreads, 0, stream>>>(a);
    DSO_CUDA_CHECK(launch_status(stream));
  });
}

}  // namespace dso::gpu
