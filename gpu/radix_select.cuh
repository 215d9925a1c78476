#pragma once
// What the top-k kernels share with the kernels that feed them: the scores'
// order-preserving keys, the digits the radix select works through, each
// head's candidate range, and the block histogram of the first digit (which
// the kernel writing the scores may count on the way, sparing a read).
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/rows.h"

namespace dso::gpu::kernels {

constexpr int kDigitBits[3] = {11, 11, 10};
constexpr int kShift0 = 21, kShift1 = 10;  // where the first and second digits start
constexpr int kBins0 = 1 << 11, kBins1 = 1 << 11, kBins2 = 1 << 10;
constexpr int kHeadHistogramWords = kBins0 + kBins1 + kBins2;  // per head: the three digits' histograms

// Larger float, larger key; -0.0 and +0.0 compare equal as floats, so they
// share a key.
__device__ __forceinline__ std::uint32_t radix_key(float f) {
  const std::uint32_t u = f == 0.0f ? 0u : __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

enum class SelectMode : int { none, all, select };

// Where one (sequence, KV head)'s tokens go, as cpu::select_topk defines it:
// [0, sink_end) and [recent_begin, n) always, k of the candidates between.
struct HeadSelection {
  std::int64_t n, sink_end, recent_begin, k;
  SelectMode mode;
  DSO_HOST_DEVICE std::int64_t total() const { return sink_end + k + (n - recent_begin); }
};

DSO_HOST_DEVICE inline HeadSelection head_selection(std::int64_t n, std::int64_t k, std::int64_t sink,
                                                    std::int64_t recent) {
  HeadSelection h{};
  h.n = n;
  h.sink_end = sink < n ? sink : n;
  h.recent_begin = n - recent > h.sink_end ? n - recent : h.sink_end;
  const std::int64_t candidates = h.recent_begin - h.sink_end;
  if (k >= candidates) {
    h.k = candidates;
    h.mode = SelectMode::all;
  } else {
    h.k = k;
    h.mode = k > 0 ? SelectMode::select : SelectMode::none;
  }
  return h;
}

// A block's count of first digits, kept in shared memory and added to the
// head's histogram in global memory at the end.
template <int THREADS>
struct FirstDigitCount {
  std::uint32_t* bins;  // shared, kBins0

  __device__ void clear() const {
    for (int b = threadIdx.x; b < kBins0; b += THREADS) bins[b] = 0;
  }
  __device__ void add(float score) const { atomicAdd(&bins[radix_key(score) >> kShift0], 1u); }
  // After a barrier: every count into the head's histogram.
  __device__ void publish(std::uint32_t* head_bins) const {
    for (int b = threadIdx.x; b < kBins0; b += THREADS)
      if (bins[b]) atomicAdd(&head_bins[b], bins[b]);
  }
};

}  // namespace dso::gpu::kernels
