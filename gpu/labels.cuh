#pragma once
// Label append kernel: one thread per (sequence, kv_head, new token, label channel).
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/check.h"
#include "gpu/rows.h"

namespace dso::gpu::kernels {

struct LabelAppendParams {
  const void* keys;
  RowStrides key_strides;
  const std::int32_t* channels;  // [kv_heads][r]
  int r;
  void* labels;
  RowStrides label_strides;
  std::int64_t capacity;
  int sequences, kv_heads, count;
  const std::int32_t* positions;  // [sequences]
};

template <class T>
__global__ void label_append_kernel(LabelAppendParams p) {
  const std::int64_t total = std::int64_t(p.sequences) * p.kv_heads * p.count * p.r;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i % p.r);
    const std::int64_t rest = i / p.r;
    const int t = int(rest % p.count);
    const int h = int(rest / p.count % p.kv_heads);
    const int s = int(rest / p.count / p.kv_heads);
    const std::int64_t position = std::int64_t(p.positions[s]) + t;
    if (position < 0 || position >= p.capacity) continue;
    const int channel = p.channels[h * p.r + c];
    const T* key = static_cast<const T*>(p.keys) + p.key_strides.offset(s, h, t);
    static_cast<T*>(p.labels)[p.label_strides.offset(s, h, position) + c] = key[channel];
  }
}

template <class T>
cudaError_t launch_label_append(const LabelAppendParams& p, cudaStream_t stream) {
  const std::int64_t total = std::int64_t(p.sequences) * p.kv_heads * p.count * p.r;
  if (total == 0) return cudaSuccess;
  constexpr int threads = 256;
  const auto blocks = unsigned(std::min<std::int64_t>((total + threads - 1) / threads, 4096));
  label_append_kernel<T><<<blocks, threads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace dso::gpu::kernels
