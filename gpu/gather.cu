#include "gpu/gather.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/gather.cuh"
#include "gpu/memory.h"
#include "gpu/row_alignment.h"

namespace dso::gpu {

void gather_rows(const GatherArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads >= 0 && a.max_count >= 0, "gather: negative sizes (sequences=",
          a.sequences, " kv_heads=", a.kv_heads, " max_count=", a.max_count, ")");
  require(a.blocks_per_multiprocessor >= 0 && a.blocks_per_multiprocessor <= 8,
          "gather: blocks_per_multiprocessor=", a.blocks_per_multiprocessor, " must be in [0, 8]");
  require(a.max_blocks >= 0, "gather: max_blocks=", a.max_blocks, " must be non-negative");
  require(a.index_stride >= a.max_count, "gather: index_stride=", a.index_stride, " is below max_count=",
          a.max_count);
  if (std::int64_t(a.sequences) * a.kv_heads * a.max_count == 0) return;
  require(a.indices && a.counts, "gather: indices and counts must be device pointers, got null");
  require_vector_rows(a.k_source, "gather K source");
  require_vector_rows(a.v_source, "gather V source");
  require_vector_rows(a.k_destination, "gather K destination");
  require_vector_rows(a.v_destination, "gather V destination");
  require(a.k_source.strides == a.v_source.strides &&
              a.k_destination.strides == a.v_destination.strides,
          "gather: K and V must share their layouts");
  const kernels::GatherParams p{{a.k_source.data, a.v_source.data},
                                a.k_source.strides,
                                a.indices,
                                a.index_stride,
                                a.counts,
                                a.max_count,
                                {a.k_destination.data, a.v_destination.data},
                                a.k_destination.strides,
                                a.sequences,
                                a.kv_heads};
  // Rows are moved as bytes: the dtype only has to be a 16-bit one.
  dispatch_storage(a.dtype, [&](auto) {
    dispatch_head_dim(a.head_dim, [&](auto d) {
      constexpr int pieces = decltype(d)::value * 2 / 16;
      const std::int64_t rows = std::int64_t(a.sequences) * a.kv_heads * 2 * a.max_count;
      const std::int64_t needed =
          (rows * pieces + std::int64_t(kernels::kGatherThreads) * kernels::kGatherRowsInFlight - 1) /
          (std::int64_t(kernels::kGatherThreads) * kernels::kGatherRowsInFlight);
      // One resident wave: every thread loops, so the rows in flight stay a
      // contiguous window of the row order.
      const int per_multiprocessor = a.blocks_per_multiprocessor > 0 ? a.blocks_per_multiprocessor : 4;
      const std::int64_t wave = per_multiprocessor * std::int64_t(multiprocessor_count());
      const std::int64_t most = a.max_blocks > 0 ? std::min<std::int64_t>(wave, a.max_blocks) : wave;
      const int blocks = int(std::clamp<std::int64_t>(needed, 1, most));
      DSO_CUDA_CHECK(kernels::launch_gather<pieces>(p, blocks, stream));
    });
  });
}

}  // namespace dso::gpu
