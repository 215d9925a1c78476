#include "gpu/labels.h"

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/labels.cuh"

namespace dso::gpu {

void append_labels(const LabelAppendArgs& a, cudaStream_t stream) {
  const NewTokens& t = a.tokens;
  require(t.sequences >= 0 && t.kv_heads >= 0 && t.count >= 0, "label append: negative sizes (sequences=",
          t.sequences, " kv_heads=", t.kv_heads, " count=", t.count, ")");
  require(a.r >= 1 && a.r <= a.head_dim, "label append: r=", a.r, " must be in [1, head_dim=", a.head_dim, "]");
  require(a.capacity > 0, "label append: capacity must be positive, got ", a.capacity);
  if (std::int64_t(t.sequences) * t.kv_heads * t.count == 0) return;
  require(a.keys.data && a.labels.data && a.channels && t.positions,
          "label append: keys, labels, channels and positions must be device pointers, got null");
  const kernels::LabelAppendParams p{a.keys.data, a.keys.strides, a.channels,  a.r,
                                     a.labels.data, a.labels.strides, a.capacity, t.sequences,
                                     t.kv_heads,   t.count,          t.positions};
  dispatch_storage(a.dtype, [&](auto storage) {
    DSO_CUDA_CHECK(kernels::launch_label_append<decltype(storage)>(p, stream));
  });
}

}  // namespace dso::gpu
