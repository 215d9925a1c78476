#pragma once
// K/V append kernel: one thread per 16-byte piece of a new row.
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/check.h"
#include "gpu/rows.h"

namespace dso::gpu::kernels {

struct KVAppendParams {
  const void* source[2];  // K, V
  RowStrides source_strides;
  void* cache[2];
  RowStrides cache_strides;
  std::int64_t capacity;
  int sequences, kv_heads, count;
  const std::int32_t* positions;
};

constexpr int kAppendThreads = 256;

template <int PIECES>
__global__ void __launch_bounds__(kAppendThreads) kv_append_kernel(KVAppendParams p) {
  const std::int64_t total = std::int64_t(p.sequences) * p.kv_heads * p.count * 2 * PIECES;
  for (std::int64_t i = blockIdx.x * std::int64_t(kAppendThreads) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * kAppendThreads) {
    const int piece = int(i % PIECES);
    std::int64_t rest = i / PIECES;
    const int which = int(rest % 2);
    rest /= 2;
    const int t = int(rest % p.count);
    rest /= p.count;
    const int h = int(rest % p.kv_heads);
    const int s = int(rest / p.kv_heads);
    const std::int64_t position = std::int64_t(p.positions[s]) + t;
    if (position < 0 || position >= p.capacity) continue;
    // Chosen by value: indexing the parameter array would copy it to local memory.
    const auto* src = static_cast<const uint4*>(which ? p.source[1] : p.source[0]) + p.source_strides.offset(s, h, t) / 8;
    auto* dst = static_cast<uint4*>(which ? p.cache[1] : p.cache[0]) + p.cache_strides.offset(s, h, position) / 8;
    dst[piece] = src[piece];
  }
}

template <int PIECES>
cudaError_t launch_kv_append(const KVAppendParams& p, cudaStream_t stream) {
  const std::int64_t total = std::int64_t(p.sequences) * p.kv_heads * p.count * 2 * PIECES;
  if (total == 0) return cudaSuccess;
  const auto blocks = unsigned(std::min<std::int64_t>((total + kAppendThreads - 1) / kAppendThreads, 4096));
  kv_append_kernel<PIECES><<<blocks, kAppendThreads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace dso::gpu::kernels
