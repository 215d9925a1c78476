#pragma once
// Zero-copy gather kernel. A persistent grid walks the linear row order
// [sequence][kv_head][K, V][row]; each row moves as 16-byte pieces, one per
// thread, several rows per thread in flight before the first store.
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/check.h"
#include "gpu/rows.h"

namespace dso::gpu::kernels {

struct GatherParams {
  const void* source[2];  // K, V
  RowStrides source_strides;
  const std::int32_t* indices;
  std::int64_t index_stride;
  const std::int32_t* counts;
  std::int64_t max_count;
  void* destination[2];
  RowStrides destination_strides;
  int sequences, kv_heads;
};

constexpr int kGatherThreads = 256;
constexpr int kGatherRowsInFlight = 4;

// PIECES: 16-byte pieces per row (head_dim * 2 bytes / 16).
template <int PIECES>
__global__ void __launch_bounds__(kGatherThreads) gather_kernel(GatherParams p) {
  const std::int64_t thread = blockIdx.x * std::int64_t(kGatherThreads) + threadIdx.x;
  const int piece = int(thread % PIECES);
  const std::int64_t lanes = std::int64_t(gridDim.x) * kGatherThreads / PIECES;  // rows per sweep
  const std::int64_t total_rows = std::int64_t(p.sequences) * p.kv_heads * 2 * p.max_count;
  for (std::int64_t base = thread / PIECES; base < total_rows; base += lanes * kGatherRowsInFlight) {
    uint4 data[kGatherRowsInFlight];
    uint4* target[kGatherRowsInFlight];
#pragma unroll
    for (int u = 0; u < kGatherRowsInFlight; ++u) {
      target[u] = nullptr;
      const std::int64_t r = base + u * lanes;
      if (r >= total_rows) continue;
      const std::int64_t row = r % p.max_count;
      const std::int64_t plane = r / p.max_count;  // (sequence, head, K or V)
      const int which = int(plane % 2);
      const std::int64_t head = plane / 2;
      if (row >= p.counts[head]) continue;
      const int s = int(head / p.kv_heads), h = int(head % p.kv_heads);
      const std::int64_t position = p.indices[head * p.index_stride + row];
      // Chosen by value: indexing the parameter array would copy it to local memory.
      const auto* src =
          static_cast<const uint4*>(which ? p.source[1] : p.source[0]) + p.source_strides.offset(s, h, position) / 8;
      data[u] = src[piece];
      target[u] = static_cast<uint4*>(which ? p.destination[1] : p.destination[0]) +
                  p.destination_strides.offset(s, h, row) / 8 + piece;
    }
#pragma unroll
    for (int u = 0; u < kGatherRowsInFlight; ++u)
      if (target[u]) *target[u] = data[u];
  }
}

template <int PIECES>
cudaError_t launch_gather(const GatherParams& p, int blocks, cudaStream_t stream) {
  if (std::int64_t(p.sequences) * p.kv_heads * p.max_count == 0) return cudaSuccess;
  gather_kernel<PIECES><<<blocks, kGatherThreads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace dso::gpu::kernels
