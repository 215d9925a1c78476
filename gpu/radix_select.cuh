#pragma once
// What every top-k kernel shares: the scores' order-preserving keys, each
// head's candidate range, and a block-wide radix select that finds the k-th
// largest of the keys a block holds (three digit passes of 11, 11 and 10 bits,
// counted in shared memory).
#include <cuda_runtime.h>

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "core/recent_window.h"
#include "gpu/rows.h"

namespace dso::gpu::kernels {

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
  DSO_HOST_DEVICE std::int64_t candidates() const { return recent_begin - sink_end; }
};

DSO_HOST_DEVICE inline HeadSelection head_selection(std::int64_t n, std::int64_t k, std::int64_t sink,
                                                    std::int64_t recent) {
  HeadSelection h{};
  h.n = n;
  h.sink_end = sink_end(n, sink);
  h.recent_begin = window_begin(n, sink, recent);
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

constexpr int kDigitBits = 11;
constexpr int kBins = 1 << kDigitBits;

// Finds the k-th largest of the keys the block's threads hold, ITEMS per
// thread (the first `valid` of each thread's array count), in rounds: `load`
// (round, keys, valid) fills a thread's keys for a round. With one round the
// caller loads the keys before and they stay in registers (and are still
// there afterwards). Returns (the k-th largest key, how many keys equal to it
// are among the k largest); k must be at least 1 and at most the number of
// keys. Afterwards `s.high` holds the largest key.
//
// Radix select over key ranges rather than fixed bit positions: the first
// pass splits [min, max] into up to 2048 equal bins, each later pass the bin
// holding the k-th key, until a bin is one key wide (at most three passes).
// Top-k candidates sit in a narrow band of keys, where fixed leading digits
// would put nearly all of them into one bin, serialising the counting atomics.
template <int THREADS, int ITEMS>
struct BlockRadixSelect {
  using Scan = cub::BlockScan<std::uint32_t, THREADS>;
  struct Storage {
    std::uint32_t bins[kBins];
    typename Scan::TempStorage scan;
    std::uint32_t low, high;
    uint2 found;
  };
  Storage& s;

  // With max_passes below 3 the search may stop early; the key returned is
  // then the lowest of the range holding the k-th key (at most the k-th key).
  template <class Load>
  __device__ uint2 find(Load&& load, int rounds, std::uint32_t k, std::uint32_t (&keys)[ITEMS], int& valid,
                        int max_passes = 3) const {
    if (threadIdx.x == 0) s.low = ~0u, s.high = 0u;
    __syncthreads();
    std::uint32_t low = ~0u, high = 0u;
    for (int round = 0; round < rounds; ++round) {
      if (rounds > 1) load(round, keys, valid);
#pragma unroll
      for (int j = 0; j < ITEMS; ++j)
        if (j < valid) low = min(low, keys[j]), high = max(high, keys[j]);
    }
    if (low <= high) atomicMin(&s.low, low), atomicMax(&s.high, high);
    __syncthreads();
    std::uint64_t begin = s.low, end = std::uint64_t(s.high) + 1;  // the k-th key is in [begin, end)
    std::uint32_t left = k;
    for (int pass = 0; pass < max_passes && end - begin > 1; ++pass) {
      const int width_bits = 64 - __clzll(static_cast<long long>(end - begin - 1));
      const int shift = width_bits > kDigitBits ? width_bits - kDigitBits : 0;
      for (int b = threadIdx.x; b < kBins; b += THREADS) s.bins[b] = 0;
      __syncthreads();
      for (int round = 0; round < rounds; ++round) {
        if (rounds > 1) load(round, keys, valid);
#pragma unroll
        for (int j = 0; j < ITEMS; ++j)
          if (j < valid && keys[j] >= begin && keys[j] < end)
            atomicAdd(&s.bins[std::uint32_t(keys[j] - begin) >> shift], 1u);
      }
      __syncthreads();
      const uint3 found = resolve_bins<kBins>(s.bins, left);
      const std::uint64_t bin_begin = begin + (std::uint64_t(found.x) << shift);
      const std::uint64_t bin_end = bin_begin + (std::uint64_t(1) << shift);
      begin = bin_begin;
      end = bin_end < end ? bin_end : end;
      left = found.y;
    }
    return make_uint2(std::uint32_t(begin), left);
  }

  // Over BINS counts (at most kBins): (the bin holding the k-th largest
  // count, k left inside it, the total). The counts may be in shared or global
  // memory; a barrier must order their writes before the call.
  template <int BINS>
  __device__ uint3 resolve_bins(const std::uint32_t* bins, std::uint32_t k) const {
    static_assert(BINS <= kBins);
    constexpr int per_thread = (BINS + THREADS - 1) / THREADS;
    if (threadIdx.x == 0) s.found = make_uint2(0, 0);
    // Thread i owns bins in descending order, so the exclusive scan is the count above them.
    std::uint32_t counts[per_thread];
    std::uint32_t sum = 0;
#pragma unroll
    for (int j = 0; j < per_thread; ++j) {
      const int rank = threadIdx.x * per_thread + j;
      counts[j] = rank < BINS ? bins[BINS - 1 - rank] : 0u;
      sum += counts[j];
    }
    std::uint32_t above = 0, total = 0;
    Scan(s.scan).ExclusiveSum(sum, above, total);
    __syncthreads();  // found's reset before any write to it
    if (above < k && k <= above + sum) {
#pragma unroll
      for (int j = 0; j < per_thread; ++j) {
        if (above < k && k <= above + counts[j]) s.found = make_uint2(BINS - 1 - (threadIdx.x * per_thread + j), k - above);
        above += counts[j];
      }
    }
    __syncthreads();
    const uint2 found = s.found;
    __syncthreads();  // the bins and found may be reused once every thread has read them
    return make_uint3(found.x, found.y, total);
  }
};

}  // namespace dso::gpu::kernels
