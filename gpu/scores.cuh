#pragma once
// Label scoring kernel. A block scores one tile of 2048 tokens of one
// (sequence, KV head): the group's query channels are summed once into shared
// memory (exact in real arithmetic and cheaper per token), then each thread
// scores tokens strided by the block size, so a warp reads consecutive labels.
// The block's first loads are issued before that prologue. Optionally the
// tile's top-k candidates are listed instead of its scores written
// (candidates.cuh), after a sampling kernel that scores a few thousand tokens
// per head the same way, and the selection's bucket kernel follows (topk.cuh).
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/candidates.cuh"
#include "gpu/check.h"
#include "gpu/dependent_launch.cuh"
#include "gpu/rows.h"
#include "gpu/topk.cuh"
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
  bool list_candidates;  // then the scores are written only where the top-k threshold missed
  TopkParams topk;       // with list_candidates: the selection's (indices and counts unused)
};

constexpr int kMaxLabelWidth = 128;

// Sums the group's query heads over head h's label channels into q_sum[r]
// (shared), then a barrier.
template <class T>
__device__ void sum_query_channels(const LabelScoreParams& p, int s, int h, float* q_sum) {
  const T* q = static_cast<const T*>(p.q) + (std::int64_t(s) * p.q_heads + std::int64_t(h) * p.group) * p.head_dim;
  for (int c = threadIdx.x; c < p.r; c += blockDim.x) {
    const int channel = p.channels ? p.channels[h * p.r + c] : c;
    float sum = 0.0f;
    for (int g = 0; g < p.group; ++g) sum += to_f32(q[g * p.head_dim + channel]);
    q_sum[c] = sum;
  }
  __syncthreads();
}

// VEC label elements (16, 8, 4 or 2 bytes) per load.
template <class T, int VEC>
struct LabelVectors {
  using Vec = typename VecOf<VEC * sizeof(T)>::type;
  __device__ static Vec load(const T* labels, const RowStrides& strides, std::int64_t t, int c0) {
    return *reinterpret_cast<const Vec*>(labels + t * strides.token + c0);
  }
  __device__ static float dot(const float* q_sum, int c0, const Vec& raw, float acc) {
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int c = 0; c < VEC; ++c) acc = fmaf(q_sum[c0 + c], to_f32(e[c]), acc);
    return acc;
  }
};

// Label scores of a thread's tokens: the sampled ones, and those the rescue scores.
template <class T, int VEC>
struct LabelScores {
  LabelScoreParams p;
  float* q_sum;

  __device__ void prepare(int s, int h) {
    __shared__ float shared_q_sum[kMaxLabelWidth];
    q_sum = shared_q_sum;
    sum_query_channels<T>(p, s, h, q_sum);
  }
  template <int N>
  __device__ void score(int s, int h, const std::int64_t (&tokens)[N], float (&out)[N]) const {
    using V = LabelVectors<T, VEC>;
    const T* labels = static_cast<const T*>(p.labels) + p.label_strides.offset(s, h, 0);
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = 0.0f;
    for (int c0 = 0; c0 < p.r; c0 += VEC) {
      typename V::Vec raw[N];
#pragma unroll
      for (int j = 0; j < N; ++j) raw[j] = V::load(labels, p.label_strides, tokens[j], c0);
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = V::dot(q_sum, c0, raw[j], out[j]);
    }
  }
};

template <class T, int VEC>
__global__ void __launch_bounds__(kTileThreads, 4) label_score_kernel(LabelScoreParams p) {
  using V = LabelVectors<T, VEC>;
  __shared__ float q_sum[kMaxLabelWidth];
  __shared__ CandidateStorage candidate_storage;
  allow_next_grid();
  const int h = blockIdx.y, s = blockIdx.z;
  const std::int64_t tile = blockIdx.x;
  const std::int64_t length = p.lengths[s];
  const std::int64_t begin = tile * kTileTokens;
  if (begin >= length) return;  // the whole block
  const T* labels = static_cast<const T*>(p.labels) + p.label_strides.offset(s, h, 0);
  float* scores = p.scores + (std::int64_t(s) * p.kv_heads + h) * p.score_stride;

  typename V::Vec raw[kTileItems];
  auto load = [&](int c0) {
#pragma unroll
    for (int i = 0; i < kTileItems; ++i) {
      const std::int64_t t = begin + i * kTileThreads + threadIdx.x;
      raw[i] = t < length ? V::load(labels, p.label_strides, t, c0) : typename V::Vec{};
    }
  };
  // The first labels are requested before the query sum, which they do not need.
  load(0);
  sum_query_channels<T>(p, s, h, q_sum);

  float acc[kTileItems] = {};
  for (int c0 = 0; c0 < p.r; c0 += VEC) {
    if (c0 != 0) load(c0);
#pragma unroll
    for (int i = 0; i < kTileItems; ++i) acc[i] = V::dot(q_sum, c0, raw[i], acc[i]);
  }
  if (!p.list_candidates) {
#pragma unroll
    for (int i = 0; i < kTileItems; ++i) {
      const std::int64_t t = begin + i * kTileThreads + threadIdx.x;
      if (t < length) scores[t] = acc[i];
    }
    return;
  }
  const CandidateParams& c = p.topk.candidates;
  const HeadSelection sel = head_selection(length, c.k, c.sink, c.recent);
  if (sel.mode != SelectMode::select || begin >= sel.recent_begin) return;
  write_candidates(c, candidate_storage, std::int64_t(s) * p.kv_heads + h, tile, sel, acc);
}

// For a head whose top-k threshold missed: its candidates' scores, written by
// the selection's deciding block before it selects from them.
template <class T, int VEC>
struct LabelRescue {
  LabelScoreParams p;
  __device__ void operator()(int s, int h, const HeadSelection& sel) const {
    LabelScores<T, VEC> source{p, nullptr};
    source.prepare(s, h);
    float* row = p.scores + (std::int64_t(s) * p.kv_heads + h) * p.score_stride;
    for (std::int64_t t = sel.sink_end + threadIdx.x; t < sel.recent_begin; t += blockDim.x) {
      const std::int64_t token[1] = {t};
      float score[1];
      source.score(s, h, token, score);
      row[t] = score[0];
    }
  }
};

template <class T, int VEC>
cudaError_t launch_label_score(const LabelScoreParams& p, int sequences, std::int64_t tiles, cudaStream_t stream) {
  if (sequences == 0 || p.kv_heads == 0 || tiles == 0) return cudaSuccess;
  const dim3 grid(unsigned(tiles), unsigned(p.kv_heads), unsigned(sequences));
  if (!p.list_candidates) {
    label_score_kernel<T, VEC><<<grid, kTileThreads, 0, stream>>>(p);
    return launch_status(stream);
  }
  const LabelScores<T, VEC> sample{p, nullptr};
  sample_threshold_kernel<LabelScores<T, VEC>>
      <<<dim3(unsigned(p.kv_heads), unsigned(sequences)), kSampleThreads, 0, stream>>>(p.topk.candidates, p.lengths,
                                                                                       p.kv_heads, sample);
  DSO_CUDA_TRY_LAUNCH(stream);
  DSO_CUDA_TRY(launch_after_previous(label_score_kernel<T, VEC>, grid, dim3(kTileThreads), stream, p));
  DSO_CUDA_TRY_LAUNCH(stream);
  return launch_bucket(p.topk, sequences, LabelRescue<T, VEC>{p}, stream);
}

}  // namespace dso::gpu::kernels
