#pragma once
// Label scoring kernel. A block scores one tile of one (sequence, KV head):
// the group's query channels are summed once into shared memory (exact in real
// arithmetic and cheaper per token), then each thread scores tokens strided by
// the block size, so a warp reads consecutive labels. Tiles are short (one
// round of loads), so the block's first loads are issued before its prologue.
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/check.h"
#include "gpu/radix_select.cuh"
#include "gpu/rows.h"
#include "gpu/vec.cuh"

namespace dso::gpu::kernels {

struct LabelScoreParams {
  const void* q;
  int q_heads, kv_heads, group, head_dim, r;
  const std::int32_t* channels;
  const void* labels;
  RowStrides label_strides;
  const std::int32_t* lengths;
  float* scores;
  std::int64_t score_stride;
  std::int64_t tile_tokens;
  // Optional: the top-k's first-digit histograms [heads][kHeadHistogramWords]
  // and budget, to count the candidates' first digits on the way.
  std::uint32_t* first_digit_histograms;
  std::int64_t k, sink, recent;
};

constexpr int kScoreThreads = 256;
constexpr int kScoreItems = 8;      // tokens per thread per round: loads in flight
constexpr int kMaxLabelWidth = 128;

// VEC: label elements per load (16, 8, 4 or 2 bytes), chosen by the launcher
// from the alignment of r and of the strides.
template <class T, int VEC>
__global__ void __launch_bounds__(kScoreThreads, 4) label_score_kernel(LabelScoreParams p) {
  using Vec = typename VecOf<VEC * sizeof(T)>::type;
  __shared__ float q_sum[kMaxLabelWidth];
  const int h = blockIdx.y, s = blockIdx.z;
  const std::int64_t length = p.lengths[s];
  const std::int64_t begin = blockIdx.x * p.tile_tokens;
  const std::int64_t end = begin + p.tile_tokens < length ? begin + p.tile_tokens : length;
  if (begin >= end) return;  // the whole block
  const T* labels = static_cast<const T*>(p.labels) + p.label_strides.offset(s, h, 0);
  float* scores = p.scores + (std::int64_t(s) * p.kv_heads + h) * p.score_stride;

  Vec raw[kScoreItems];
  auto load = [&](std::int64_t base, int c0) {
#pragma unroll
    for (int i = 0; i < kScoreItems; ++i) {
      const std::int64_t t = base + i * kScoreThreads + threadIdx.x;
      raw[i] = t < end ? *reinterpret_cast<const Vec*>(labels + t * p.label_strides.token + c0) : Vec{};
    }
  };
  // The first labels are requested before the query sum, which they do not need.
  load(begin, 0);
  __shared__ std::uint32_t bins[kBins0];
  const FirstDigitCount<kScoreThreads> count{bins};
  const HeadSelection sel = head_selection(length, p.k, p.sink, p.recent);
  const bool counting = p.first_digit_histograms && sel.mode == SelectMode::select;
  if (counting) count.clear();
  const T* q = static_cast<const T*>(p.q) + (std::int64_t(s) * p.q_heads + std::int64_t(h) * p.group) * p.head_dim;
  for (int c = threadIdx.x; c < p.r; c += kScoreThreads) {
    const int channel = p.channels ? p.channels[h * p.r + c] : c;
    float sum = 0.0f;
    for (int g = 0; g < p.group; ++g) sum += to_f32(q[g * p.head_dim + channel]);
    q_sum[c] = sum;
  }
  __syncthreads();

  for (std::int64_t base = begin; base < end; base += std::int64_t(kScoreThreads) * kScoreItems) {
    float acc[kScoreItems] = {};
    for (int c0 = 0; c0 < p.r; c0 += VEC) {
      if (base != begin || c0 != 0) load(base, c0);
#pragma unroll
      for (int i = 0; i < kScoreItems; ++i) {
        const T* e = reinterpret_cast<const T*>(&raw[i]);
#pragma unroll
        for (int c = 0; c < VEC; ++c) acc[i] = fmaf(q_sum[c0 + c], to_f32(e[c]), acc[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < kScoreItems; ++i) {
      const std::int64_t t = base + i * kScoreThreads + threadIdx.x;
      if (t < end) scores[t] = acc[i];
      if (counting && t >= sel.sink_end && t < sel.recent_begin && t < end) count.add(acc[i]);
    }
  }
  if (counting) {
    __syncthreads();
    count.publish(p.first_digit_histograms + (std::int64_t(s) * p.kv_heads + h) * kHeadHistogramWords);
  }
}

template <class T, int VEC>
cudaError_t launch_label_score(const LabelScoreParams& p, int sequences, std::int64_t tiles, cudaStream_t stream) {
  if (sequences == 0 || p.kv_heads == 0 || tiles == 0) return cudaSuccess;
  const dim3 grid(unsigned(tiles), unsigned(p.kv_heads), unsigned(sequences));
  label_score_kernel<T, VEC><<<grid, kScoreThreads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace dso::gpu::kernels
