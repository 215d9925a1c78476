#include "gpu/sparq.h"

#include <cuda_runtime.h>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/scores.cuh"
#include "gpu/vec.cuh"

namespace dso::gpu {

namespace {

constexpr int kChannelThreads = 128;

struct ChannelParams {
  const void* q;
  int q_heads, kv_heads, group, head_dim, r;
  std::int32_t* channels;
  void* masked_q;
};

// One block per (KV head, sequence). A channel's rank is the count of channels
// ahead of it in cpu::sparq_channels' order (larger sum, or equal sum and lower
// index): a total order, so the ranks below r are the chosen channels, each
// written once, in order. d <= 128 makes the d^2 comparisons cheap.
template <class T>
__global__ void __launch_bounds__(kChannelThreads) sparq_channel_kernel(ChannelParams p) {
  __shared__ float magnitude[kernels::kMaxLabelWidth];
  const int h = blockIdx.x, s = blockIdx.y, d = p.head_dim;
  const std::int64_t first = (std::int64_t(s) * p.q_heads + std::int64_t(h) * p.group) * d;
  const T* q = static_cast<const T*>(p.q) + first;
  for (int c = threadIdx.x; c < d; c += kChannelThreads) {
    // Summed in the order the cpu sums, so equal sums there are equal here.
    float sum = 0.0f;
    for (int g = 0; g < p.group; ++g) sum += fabsf(to_f32(q[g * d + c]));
    magnitude[c] = sum;
  }
  __syncthreads();
  T* masked = static_cast<T*>(p.masked_q) + first;
  std::int32_t* channels = p.channels + (std::int64_t(s) * p.kv_heads + h) * p.r;
  for (int c = threadIdx.x; c < d; c += kChannelThreads) {
    const float m = magnitude[c];
    int rank = 0;
    for (int o = 0; o < d; ++o) rank += magnitude[o] > m || (magnitude[o] == m && o < c);
    const bool chosen = rank < p.r;
    if (chosen) channels[rank] = c;
    for (int g = 0; g < p.group; ++g) masked[g * d + c] = chosen ? q[g * d + c] : from_f32<T>(0.0f);
  }
}

}  // namespace

void sparq_channels(const SparqChannelArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0 && a.kv_heads > 0 && a.q_heads > 0 && a.q_heads % a.kv_heads == 0,
          "sparq channels: q_heads=", a.q_heads, " must be a positive multiple of kv_heads=", a.kv_heads);
  require(a.head_dim >= 1 && a.head_dim <= kernels::kMaxLabelWidth, "sparq channels: head_dim=", a.head_dim,
          " must be in [1, ", kernels::kMaxLabelWidth, "]");
  require(a.r >= 1 && a.r <= a.head_dim, "sparq channels: r=", a.r, " must be in [1, head_dim=", a.head_dim, "]");
  require(a.kv_heads <= 65535 && a.sequences <= 65535, "sparq channels: at most 65535 sequences and KV heads");
  if (a.sequences == 0) return;
  require(a.q && a.channels && a.masked_q, "sparq channels: q, channels and masked_q must be device pointers, got null");
  const ChannelParams p{a.q, a.q_heads, a.kv_heads, a.q_heads / a.kv_heads, a.head_dim, a.r, a.channels, a.masked_q};
  dispatch_storage(a.dtype, [&](auto storage) {
    using T = decltype(storage);
    const dim3 grid(unsigned(a.kv_heads), unsigned(a.sequences));
    sparq_channel_kernel<T><<<grid, kChannelThreads, 0, stream>>>(p);
    DSO_CUDA_CHECK(launch_status(stream));
  });
}

}  // namespace dso::gpu
