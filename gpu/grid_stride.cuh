#pragma once
// The launch shape of the engine's small bookkeeping kernels: a grid-stride
// loop of 256-thread blocks, at most 1024 of them, since their work (a few
// integers per head, or the window's rows) never needs more than one wave.
#include <algorithm>
#include <cstdint>

namespace dso::gpu::kernels {

constexpr int kGridStrideThreads = 256;

inline unsigned grid_stride_blocks(std::int64_t work) {
  constexpr std::int64_t max_blocks = 1024;
  return unsigned(std::clamp<std::int64_t>((work + kGridStrideThreads - 1) / kGridStrideThreads, 1, max_blocks));
}

__device__ __forceinline__ std::int64_t first_item() { return std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ std::int64_t item_stride() { return std::int64_t(gridDim.x) * blockDim.x; }

}  // namespace dso::gpu::kernels
