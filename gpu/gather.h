#pragma once
// Gather of the selected tokens' K and V of one layer from the pinned,
// head-major host cache into a GPU buffer, by a kernel that reads host memory
// directly (zero-copy). Rows are visited head by head, K then V, in index
// order, so the reads in flight at any moment lie in one or two regions of the
// host cache: PCIe reads that stay within one region run at ~97% of the
// contiguous copy rate, interleaving regions drops that to ~30%.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"

namespace dso::gpu {

struct GatherArgs {
  DType dtype = DType::f16;
  int sequences = 0;
  int kv_heads = 0;
  int head_dim = 0;
  ConstRows k_source;                     // (sequence, kv_head, position): device addresses of pinned host rows
  ConstRows v_source;
  const std::int32_t* indices = nullptr;  // [sequences][kv_heads][index_stride], device: positions, ascending
  std::int64_t index_stride = 0;
  const std::int32_t* counts = nullptr;   // [sequences][kv_heads], device: indices used per head, <= max_count
  std::int64_t max_count = 0;             // bound on every count; sizes the work
  Rows k_destination;                     // (sequence, kv_head, i): row i receives position indices[i]
  Rows v_destination;
  // Resident blocks per multiprocessor of the persistent grid; 0 picks the
  // default. Fewer keep the rows in flight in a narrower window of the cache.
  int blocks_per_multiprocessor = 0;
  // At most this many blocks in all (0: blocks_per_multiprocessor on every
  // multiprocessor). A gather that overlaps compute leaves most
  // multiprocessors without a block: a GEMM block that needs a whole
  // multiprocessor's registers cannot start beside even one gather block, so
  // a full wave would hold the compute back until the gather ends.
  int max_blocks = 0;
};

void gather_rows(const GatherArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
