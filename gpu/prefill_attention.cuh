#pragma once
// The prefill attention kernel (gpu/prefill_attention.h). One warp per
// (query token, query head). Keys go 32 at a time, one per lane: each lane
// forms its key's full dot product, so no shuffles are spent on reductions
// over channels; the tile's probabilities are then broadcast lane by lane
// while each lane accumulates the value channels it owns (lane + 32 i).
// Online softmax (running max and sum) keeps any prompt length in registers.
#include <math_constants.h>

#include "gpu/model_ops.cuh"
#include "gpu/prefill_attention.h"

namespace dso::gpu::kernels {

constexpr int kPrefillWarps = 4;

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// kChannels: value channels per lane, ceil(head_dim / 32).
template <class T, int kChannels>
__global__ void __launch_bounds__(kPrefillWarps * 32) prefill_attention_kernel(PrefillAttentionParams<T> p) {
  extern __shared__ float q_scaled[];  // [kPrefillWarps][head_dim]
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const long long item = (long long)blockIdx.x * kPrefillWarps + warp;
  if (item >= (long long)p.tokens * p.q_heads) return;  // whole warps leave; no block barrier follows
  const int t = int(item / p.q_heads), h = int(item % p.q_heads);
  const int d = p.head_dim, kv_head = h / (p.q_heads / p.kv_heads);

  float* q = q_scaled + warp * d;
  const float scale = rsqrtf(float(d));
  const T* q_row = p.q + item * d;
  for (int c = lane; c < d; c += 32) q[c] = load(q_row[c]) * scale;
  __syncwarp();

  const long long last = p.first + t;  // the query's own position: keys 0 .. last
  const long long stride = (long long)p.kv_heads * d;
  const T* keys = p.k + (long long)kv_head * d;
  const T* values = p.v + (long long)kv_head * d;
  float running_max = -CUDART_INF_F, running_sum = 0.0f, acc[kChannels] = {};
  for (long long j0 = 0; j0 <= last; j0 += 32) {
    const long long j = j0 + lane;
    float score = -CUDART_INF_F;
    if (j <= last) {
      const T* key = keys + j * stride;
      score = 0.0f;
      for (int c = 0; c < d; ++c) score += q[c] * load(key[c]);
    }
    // The first tile holds key 0, so the running max is finite from then on.
    const float new_max = fmaxf(running_max, warp_max(score));
    const float correction = expf(running_max - new_max);
    const float prob = j <= last ? expf(score - new_max) : 0.0f;
    running_sum = running_sum * correction + warp_sum(prob);
#pragma unroll
    for (int i = 0; i < kChannels; ++i) acc[i] *= correction;
    const int count = int(min(32LL, last - j0 + 1));
    for (int jj = 0; jj < count; ++jj) {
      const float pj = __shfl_sync(kFullMask, prob, jj);
      const T* value = values + (j0 + jj) * stride;
#pragma unroll
      for (int i = 0; i < kChannels; ++i) {
        const int c = lane + 32 * i;
        if (c < d) acc[i] += pj * load(value[c]);
      }
    }
    running_max = new_max;
  }
  T* out = p.out + item * d;
#pragma unroll
  for (int i = 0; i < kChannels; ++i) {
    const int c = lane + 32 * i;
    if (c < d) out[c] = store<T>(acc[i] / running_sum);
  }
}

template <class T, int kChannels>
cudaError_t launch_prefill_attention_for(const PrefillAttentionParams<T>& p, cudaStream_t stream) {
  const long long items = (long long)p.tokens * p.q_heads;
  const auto blocks = unsigned((items + kPrefillWarps - 1) / kPrefillWarps);
  const std::size_t shared = sizeof(float) * kPrefillWarps * std::size_t(p.head_dim);
  prefill_attention_kernel<T, kChannels><<<blocks, kPrefillWarps * 32, shared, stream>>>(p);
  return cudaGetLastError();
}

// head_dim up to kMaxPrefillHeadDim (256): one to eight value channels per lane.
template <class T>
cudaError_t launch_prefill_attention(const PrefillAttentionParams<T>& p, cudaStream_t stream) {
  switch ((p.head_dim + 31) / 32) {
    case 1: return launch_prefill_attention_for<T, 1>(p, stream);
    case 2: return launch_prefill_attention_for<T, 2>(p, stream);
    case 3: return launch_prefill_attention_for<T, 3>(p, stream);
    case 4: return launch_prefill_attention_for<T, 4>(p, stream);
    case 5: return launch_prefill_attention_for<T, 5>(p, stream);
    case 6: return launch_prefill_attention_for<T, 6>(p, stream);
    case 7: return launch_prefill_attention_for<T, 7>(p, stream);
    case 8: return launch_prefill_attention_for<T, 8>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace dso::gpu::kernels
