#include "gpu/window_assembly.h"

#include "core/error.h"
#include "core/recent_window.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/grid_stride.cuh"

namespace dso::gpu {

namespace {

// One thread per element of a ring row's K or V; rows past the window's end
// copy nothing.
template <class E>
__global__ void assemble_window_kernel(WindowAssemblyArgs a) {
  const std::int64_t size = a.ring.size;
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * size * 2 * a.head_dim;
  for (std::int64_t i = kernels::first_item(); i < total; i += kernels::item_stride()) {
    const int c = int(i % a.head_dim);
    std::int64_t rest = i / a.head_dim;
    const bool value = rest % 2;
    rest /= 2;
    const std::int64_t j = rest % size;
    rest /= size;
    const int h = int(rest % a.kv_heads);
    const int s = int(rest / a.kv_heads);
    const std::int64_t n = std::int64_t(a.lengths[s]) - 1;  // tokens before the step's
    const std::int64_t begin = window_begin(n, a.sink, a.recent);
    const std::int64_t head = std::int64_t(s) * a.kv_heads + h;
    const std::int64_t fetched = a.fetched[head];
    if (j == 0 && c == 0 && !value) a.attended[head] = std::int32_t(fetched + n + 1 - begin);
    const std::int64_t position = begin + j;
    if (position > n) continue;
    const Rows& src = value ? a.ring.values : a.ring.keys;
    const Rows& dst = value ? a.slot_values : a.slot_keys;
    static_cast<E*>(dst.data)[dst.strides.offset(s, h, fetched + j) + c] =
        static_cast<const E*>(src.data)[src.strides.offset(s, h, position % size) + c];
  }
}

}  // namespace

void assemble_window(const WindowAssemblyArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads >= 0 && a.head_dim > 0, "window assembly: bad sizes (sequences=", a.sequences,
          " kv_heads=", a.kv_heads, " head_dim=", a.head_dim, ")");
  require(a.sink >= 0 && a.recent >= 0, "window assembly: negative budget (sink=", a.sink, " recent=", a.recent, ")");
  // A smaller ring would have overwritten the window's oldest rows.
  require(a.ring.size >= window_rows(a.recent), "window assembly: a ring of ", a.ring.size,
          " rows cannot hold a window of recent + 1 = ", window_rows(a.recent), " tokens");
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * a.ring.size * 2 * a.head_dim;
  dispatch_storage(a.dtype, [&](auto element) {
    if (total == 0) return;
    require(a.ring.keys.data && a.ring.values.data && a.lengths && a.fetched && a.slot_keys.data &&
                a.slot_values.data && a.attended,
            "window assembly: null device pointer");
    assemble_window_kernel<decltype(element)>
        <<<kernels::grid_stride_blocks(total), kernels::kGridStrideThreads, 0, stream>>>(a);
    DSO_CUDA_CHECK(launch_status(stream));
  });
}

}  // namespace dso::gpu
