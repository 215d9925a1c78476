#include "gpu/append.h"

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/append.cuh"
#include "gpu/row_alignment.h"

namespace dso::gpu {

void append_kv(const KVAppendArgs& a, cudaStream_t stream) {
  const NewTokens& t = a.tokens;
  require(t.sequences >= 0 && t.kv_heads >= 0 && t.count >= 0, "K/V append: negative sizes (sequences=",
          t.sequences, " kv_heads=", t.kv_heads, " count=", t.count, ")");
  require(a.capacity > 0, "K/V append: capacity must be positive, got ", a.capacity);
  if (std::int64_t(t.sequences) * t.kv_heads * t.count == 0) return;
  require(t.positions, "K/V append: positions must be a device pointer, got null");
  require_vector_rows(a.k_new, "K/V append K source");
  require_vector_rows(a.v_new, "K/V append V source");
  require_vector_rows(a.k_cache, "K/V append K cache");
  require_vector_rows(a.v_cache, "K/V append V cache");
  require(a.k_new.strides == a.v_new.strides && a.k_cache.strides == a.v_cache.strides,
          "K/V append: K and V must share their layouts");
  const kernels::KVAppendParams p{{a.k_new.data, a.v_new.data}, a.k_new.strides, {a.k_cache.data, a.v_cache.data},
                                  a.k_cache.strides,          a.capacity,      t.sequences,
                                  t.kv_heads,                 t.count,         t.positions};
  // Rows are moved as bytes: the dtype only has to be a 16-bit one.
  dispatch_storage(a.dtype, [&](auto) {
    dispatch_head_dim(a.head_dim, [&](auto d) {
      DSO_CUDA_CHECK(kernels::launch_kv_append<decltype(d)::value * 2 / 16>(p, stream));
    });
  });
}

}  // namespace dso::gpu
