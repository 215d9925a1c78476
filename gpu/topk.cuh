#pragma once
// Radix-select top-k kernels (see topk.h for the method).
//
// Per (sequence, KV head), the candidates' order-preserving keys are narrowed
// down in three digit passes (11, 11, 10 bits). Each kernel starts by
// resolving the previous pass: every block reads the head's merged histogram
// and finds the digit holding the k-th key (the same answer in every block,
// which each also stores for the kernels after it), so no block waits on
// another inside a kernel.
//  - pass 0 histograms the first digit over all candidates (here, or in the
//    kernel that writes the scores);
//  - pass 1 reads the scores once more and keeps, per tile and in index
//    order, the survivors: keys whose first digit is at least the k-th's (the
//    certain winners and the undecided bucket), histogramming the bucket's
//    second digit. Every later step reads only the survivors (about k plus one
//    bucket, a few percent of the tokens on real scores);
//  - pass 2 histograms the last digit of the undecided survivors and leaves,
//    per tile, its count of keys above the 22-bit prefix and the suffix sums of
//    its last-digit histogram, from which the compaction derives each tile's
//    output offset without a scan across tiles;
//  - the compaction writes sink, selected and recent indices, ascending.
#include <cuda_runtime.h>

#include <cub/block/block_load.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "gpu/check.h"
#include "gpu/radix_select.cuh"
#include "gpu/rows.h"

namespace dso::gpu::kernels {

constexpr int kTopkThreads = 256;
constexpr int kTopkMinBlocks = 4;  // resident blocks per multiprocessor the kernels are built for
constexpr int kTopkItems = 16;     // scores per thread per round of a pass over the scores
constexpr int kTopkRound = kTopkThreads * kTopkItems;
constexpr int kSurvivorItems = 8;  // survivors per thread per round of the compaction
constexpr int kTileCumWords = kBins2 + 1;

struct TopkParams {
  const float* scores;
  std::int64_t score_stride;
  const std::int32_t* lengths;
  int kv_heads;
  std::int64_t k, sink, recent;
  int tiles;
  std::int64_t tile_tokens;
  std::int32_t* indices;
  std::int64_t index_stride;
  std::int32_t* counts;
  // workspace
  std::uint32_t* histograms;       // [heads][kHeadHistogramWords], zeroed before pass 0
  uint2* state;                    // [heads][2]: after passes 0 and 1, (key prefix, rank still to find within it)
  uint2* survivors;                // [heads][tiles][tile_tokens]: (key, token), ascending tokens
  std::uint32_t* survivor_counts;  // [heads][tiles]
  std::uint32_t* tile_greater;     // [heads][tiles]
  std::uint32_t* tile_cum;         // [heads][tiles][kTileCumWords]
};

// The block's slice of one head's candidates.
struct TileRange {
  std::int64_t head, tile_index, begin, end;
};

__device__ __forceinline__ TileRange tile_range(const TopkParams& p, const HeadSelection& sel) {
  const std::int64_t head = std::int64_t(blockIdx.z) * p.kv_heads + blockIdx.y;
  const std::int64_t tile_begin = blockIdx.x * p.tile_tokens;
  const std::int64_t tile_end = tile_begin + p.tile_tokens;
  return {head, head * p.tiles + blockIdx.x, tile_begin > sel.sink_end ? tile_begin : sel.sink_end,
          tile_end < sel.recent_begin ? tile_end : sel.recent_begin};
}

// Finds the digit holding the k-th largest key among `BINS` counts and
// returns (digit, k left inside it). Run by one whole block.
template <int BINS>
__device__ uint2 resolve_digit(const std::uint32_t* hist, std::uint32_t k) {
  constexpr int per_thread = BINS / kTopkThreads;
  using Scan = cub::BlockScan<std::uint32_t, kTopkThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ uint2 found;
  if (threadIdx.x == 0) found = make_uint2(0, 0);
  std::uint32_t counts[per_thread];
  std::uint32_t sum = 0;
  // Thread i owns bins in descending order, so the exclusive scan is the count above them.
#pragma unroll
  for (int j = 0; j < per_thread; ++j) {
    counts[j] = __ldcg(hist + (BINS - 1 - (threadIdx.x * per_thread + j)));
    sum += counts[j];
  }
  std::uint32_t above = 0;
  Scan(scan_storage).ExclusiveSum(sum, above);
  if (above < k && k <= above + sum) {
#pragma unroll
    for (int j = 0; j < per_thread; ++j) {
      if (above < k && k <= above + counts[j]) found = make_uint2(BINS - 1 - (threadIdx.x * per_thread + j), k - above);
      above += counts[j];
    }
  }
  __syncthreads();
  return found;
}

// The state after digit pass PASS, from the state before it and the pass's
// merged histogram: (prefix extended by the k-th key's digit, rank left).
template <int PASS>
__device__ uint2 resolve_pass(const TopkParams& p, std::int64_t head, uint2 before) {
  constexpr int BITS = kDigitBits[PASS];
  constexpr int OFFSET = PASS == 0 ? 0 : PASS == 1 ? kBins0 : kBins0 + kBins1;
  const uint2 found = resolve_digit<1 << BITS>(p.histograms + head * kHeadHistogramWords + OFFSET, before.y);
  return make_uint2((before.x << BITS) | found.x, found.y);
}

__global__ void __launch_bounds__(kTopkThreads, kTopkMinBlocks) topk_first_digit_kernel(TopkParams p) {
  __shared__ std::uint32_t bins[kBins0];
  const FirstDigitCount<kTopkThreads> count{bins};
  const HeadSelection sel = head_selection(p.lengths[blockIdx.z], p.k, p.sink, p.recent);
  if (sel.mode != SelectMode::select) return;  // the same for every block of this head
  const TileRange r = tile_range(p, sel);
  count.clear();
  __syncthreads();
  const float* scores = p.scores + r.head * p.score_stride;
  for (std::int64_t base = r.begin; base < r.end; base += kTopkRound) {
    float v[kTopkItems];
#pragma unroll
    for (int i = 0; i < kTopkItems; ++i) {
      const std::int64_t t = base + i * kTopkThreads + threadIdx.x;
      v[i] = t < r.end ? scores[t] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kTopkItems; ++i)
      if (base + i * kTopkThreads + threadIdx.x < r.end) count.add(v[i]);
  }
  __syncthreads();
  count.publish(p.histograms + r.head * kHeadHistogramWords);
}

__global__ void __launch_bounds__(kTopkThreads, kTopkMinBlocks) topk_survivor_kernel(TopkParams p) {
  using Load = cub::BlockLoad<float, kTopkThreads, kTopkItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  using Scan = cub::BlockScan<std::uint32_t, kTopkThreads>;
  __shared__ union {
    typename Load::TempStorage load;
    typename Scan::TempStorage scan;
  } storage;
  __shared__ std::uint32_t hist[kBins1];
  const HeadSelection sel = head_selection(p.lengths[blockIdx.z], p.k, p.sink, p.recent);
  if (sel.mode != SelectMode::select) return;
  const TileRange r = tile_range(p, sel);
  const uint2 state = resolve_pass<0>(p, r.head, make_uint2(0u, std::uint32_t(sel.k)));
  if (blockIdx.x == 0 && threadIdx.x == 0) p.state[2 * r.head] = state;
  const std::uint32_t bucket = state.x;  // the k-th key's first digit
  for (int b = threadIdx.x; b < kBins1; b += kTopkThreads) hist[b] = 0;
  const float* scores = p.scores + r.head * p.score_stride;
  uint2* survivors = p.survivors + r.tile_index * p.tile_tokens;
  std::uint32_t kept = 0;
  for (std::int64_t base = r.begin; base < r.end; base += kTopkRound) {
    const int valid = int(r.end - base < kTopkRound ? r.end - base : kTopkRound);
    float v[kTopkItems];
    __syncthreads();  // storage is reused across rounds; also orders the histogram's zeroing
    Load(storage.load).Load(scores + base, v, valid, 0.0f);
    std::uint32_t keys[kTopkItems];
    std::uint32_t mine = 0;
#pragma unroll
    for (int i = 0; i < kTopkItems; ++i) {
      keys[i] = radix_key(v[i]);
      const std::uint32_t digit = keys[i] >> kShift0;
      const bool in_range = threadIdx.x * kTopkItems + i < valid;
      if (in_range && digit >= bucket) ++mine;
      if (in_range && digit == bucket) atomicAdd(&hist[(keys[i] >> kShift1) & (kBins1 - 1)], 1u);
    }
    std::uint32_t offset = 0, round_total = 0;
    __syncthreads();
    Scan(storage.scan).ExclusiveSum(mine, offset, round_total);
#pragma unroll
    for (int i = 0; i < kTopkItems; ++i) {
      const int item = threadIdx.x * kTopkItems + i;
      if (item < valid && (keys[i] >> kShift0) >= bucket)
        survivors[kept + offset++] = make_uint2(keys[i], std::uint32_t(base + item));
    }
    kept += round_total;
  }
  if (threadIdx.x == 0) p.survivor_counts[r.tile_index] = kept;
  __syncthreads();
  for (int b = threadIdx.x; b < kBins1; b += kTopkThreads)
    if (hist[b]) atomicAdd(&p.histograms[r.head * kHeadHistogramWords + kBins0 + b], hist[b]);
}

__global__ void __launch_bounds__(kTopkThreads, kTopkMinBlocks) topk_last_digit_kernel(TopkParams p) {
  using Reduce = cub::BlockReduce<std::uint32_t, kTopkThreads>;
  using Scan = cub::BlockScan<std::uint32_t, kTopkThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
  } storage;
  __shared__ std::uint32_t hist[kBins2];
  const HeadSelection sel = head_selection(p.lengths[blockIdx.z], p.k, p.sink, p.recent);
  if (sel.mode != SelectMode::select) return;
  const TileRange r = tile_range(p, sel);
  const uint2 state = resolve_pass<1>(p, r.head, p.state[2 * r.head]);
  if (blockIdx.x == 0 && threadIdx.x == 0) p.state[2 * r.head + 1] = state;
  const std::uint32_t prefix = state.x;  // the k-th key's top 22 bits
  for (int b = threadIdx.x; b < kBins2; b += kTopkThreads) hist[b] = 0;
  __syncthreads();
  const uint2* survivors = p.survivors + r.tile_index * p.tile_tokens;
  const std::uint32_t kept = p.survivor_counts[r.tile_index];
  std::uint32_t greater = 0;  // survivors above the 22-bit prefix
  for (std::uint32_t i = threadIdx.x; i < kept; i += kTopkThreads) {
    const std::uint32_t key = survivors[i].x;
    const std::uint32_t high = key >> kShift1;
    if (high == prefix) atomicAdd(&hist[key & (kBins2 - 1)], 1u);
    else if (high > prefix) ++greater;
  }
  const std::uint32_t tile_greater = Reduce(storage.reduce).Sum(greater);
  if (threadIdx.x == 0) p.tile_greater[r.tile_index] = tile_greater;
  __syncthreads();
  // Suffix sums of the tile's last digit: cum[d] = its keys with the prefix and a last digit >= d.
  constexpr int per_thread = kBins2 / kTopkThreads;
  std::uint32_t sum = 0;
#pragma unroll
  for (int j = 0; j < per_thread; ++j) sum += hist[kBins2 - 1 - (threadIdx.x * per_thread + j)];
  std::uint32_t above = 0;
  Scan(storage.scan).ExclusiveSum(sum, above);
  std::uint32_t* cum = p.tile_cum + r.tile_index * kTileCumWords;
#pragma unroll
  for (int j = 0; j < per_thread; ++j) {
    const int bin = kBins2 - 1 - (threadIdx.x * per_thread + j);
    above += hist[bin];
    cum[bin] = above;
  }
  if (threadIdx.x == 0) cum[kBins2] = 0;
  for (int b = threadIdx.x; b < kBins2; b += kTopkThreads)
    if (hist[b]) atomicAdd(&p.histograms[r.head * kHeadHistogramWords + kBins0 + kBins1 + b], hist[b]);
}

__global__ void __launch_bounds__(kTopkThreads, kTopkMinBlocks) topk_compact_kernel(TopkParams p) {
  using Load = cub::BlockLoad<uint2, kTopkThreads, kSurvivorItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  using Scan = cub::BlockScan<unsigned long long, kTopkThreads>;
  using Reduce = cub::BlockReduce<unsigned long long, kTopkThreads>;
  __shared__ union {
    typename Load::TempStorage load;
    typename Scan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  } storage;
  __shared__ unsigned long long before_tile;

  // What the selection needs is requested first, so the loads overlap; the
  // workspace words are read even when this head has no selection (then unused).
  const std::int64_t head = std::int64_t(blockIdx.z) * p.kv_heads + blockIdx.y;
  const std::uint32_t kept = p.survivor_counts[head * p.tiles + blockIdx.x];
  const uint2 before = p.state[2 * head + 1];
  const HeadSelection sel = head_selection(p.lengths[blockIdx.z], p.k, p.sink, p.recent);
  const TileRange r = tile_range(p, sel);
  std::int32_t* out = p.indices + r.head * p.index_stride;
  if (blockIdx.x == 0 && threadIdx.x == 0) p.counts[r.head] = std::int32_t(sel.total());

  const std::int64_t tile_begin = blockIdx.x * p.tile_tokens;
  const std::int64_t tile_end = tile_begin + p.tile_tokens < sel.n ? tile_begin + p.tile_tokens : sel.n;
  if (sel.mode == SelectMode::all) {
    for (std::int64_t t = tile_begin + threadIdx.x; t < tile_end; t += kTopkThreads) out[t] = std::int32_t(t);
    return;
  }

  // (k-th largest key, how many keys equal to it are taken), then the greater
  // (low word) and equal (high word) keys in the tiles before this one.
  uint2 kth = make_uint2(0, 0);
  if (sel.mode == SelectMode::select && kept > 0) {
    kth = resolve_pass<2>(p, r.head, before);
    const std::uint32_t digit = kth.x & (kBins2 - 1);
    unsigned long long earlier = 0;
    for (int i = threadIdx.x; i < int(blockIdx.x); i += kTopkThreads) {
      const std::int64_t tile_index = r.head * p.tiles + i;
      const std::uint32_t* cum = p.tile_cum + tile_index * kTileCumWords;
      const std::uint32_t above = cum[digit + 1];
      earlier += (p.tile_greater[tile_index] + above) | (std::uint64_t(cum[digit] - above) << 32);
    }
    earlier = Reduce(storage.reduce).Sum(earlier);
    if (threadIdx.x == 0) before_tile = earlier;
  }

  const std::int64_t recent_out = sel.sink_end + sel.k - sel.recent_begin;
  for (std::int64_t t = tile_begin + threadIdx.x; t < tile_end; t += kTopkThreads) {
    if (t < sel.sink_end) out[t] = std::int32_t(t);
    else if (t >= sel.recent_begin) out[recent_out + t] = std::int32_t(t);
  }
  if (sel.mode != SelectMode::select || kept == 0) return;
  __syncthreads();
  std::uint64_t greater_before = before_tile & 0xffffffffu;
  std::uint64_t equal_before = before_tile >> 32;
  const std::uint64_t take_equal = kth.y;

  const uint2* survivors = p.survivors + r.tile_index * p.tile_tokens;
  constexpr int round = kTopkThreads * kSurvivorItems;
  for (std::uint32_t base = 0; base < kept; base += round) {
    const int valid = int(kept - base < round ? kept - base : round);
    uint2 v[kSurvivorItems];
    __syncthreads();  // storage is reused across rounds
    Load(storage.load).Load(survivors + base, v, valid, make_uint2(0, 0));
    unsigned long long mine = 0;
#pragma unroll
    for (int i = 0; i < kSurvivorItems; ++i) {
      if (threadIdx.x * kSurvivorItems + i >= valid) continue;
      mine += v[i].x > kth.x ? 1ull : v[i].x == kth.x ? (1ull << 32) : 0ull;
    }
    unsigned long long prefix = 0, round_total = 0;
    __syncthreads();
    Scan(storage.scan).ExclusiveSum(mine, prefix, round_total);
    std::uint64_t g = greater_before + (prefix & 0xffffffffu);
    std::uint64_t e = equal_before + (prefix >> 32);
#pragma unroll
    for (int i = 0; i < kSurvivorItems; ++i) {
      if (threadIdx.x * kSurvivorItems + i >= valid) continue;
      const std::int32_t t = std::int32_t(v[i].y);
      // The bound only matters if the histograms were not cleared first (a
      // misuse of the fused first pass): the writes then stay in the row.
      if (v[i].x > kth.x) {
        const std::uint64_t at = g + (e < take_equal ? e : take_equal);
        if (at < std::uint64_t(sel.k)) out[sel.sink_end + at] = t;
        ++g;
      } else if (v[i].x == kth.x) {
        if (e < take_equal && g + e < std::uint64_t(sel.k)) out[sel.sink_end + g + e] = t;
        ++e;
      }
    }
    greater_before += round_total & 0xffffffffu;
    equal_before += round_total >> 32;
  }
}

// Zeroes the histograms; must precede whichever kernel counts the first digit.
inline cudaError_t clear_topk_histograms(const TopkParams& p, int sequences, cudaStream_t stream) {
  const std::size_t bytes = std::size_t(sequences) * p.kv_heads * kHeadHistogramWords * sizeof(std::uint32_t);
  return bytes ? cudaMemsetAsync(p.histograms, 0, bytes, stream) : cudaSuccess;
}

// The selection; when first_digit_counted, the histograms were cleared and
// the first digit counted by the kernel that wrote the scores.
inline cudaError_t launch_topk(const TopkParams& p, int sequences, bool first_digit_counted, cudaStream_t stream) {
  if (sequences == 0 || p.kv_heads == 0) return cudaSuccess;
  const dim3 grid(unsigned(p.tiles), unsigned(p.kv_heads), unsigned(sequences));
  if (!first_digit_counted) {
    DSO_CUDA_TRY(clear_topk_histograms(p, sequences, stream));
    topk_first_digit_kernel<<<grid, kTopkThreads, 0, stream>>>(p);
    DSO_CUDA_TRY_LAUNCH(stream);
  }
  topk_survivor_kernel<<<grid, kTopkThreads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  topk_last_digit_kernel<<<grid, kTopkThreads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  topk_compact_kernel<<<grid, kTopkThreads, 0, stream>>>(p);
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace dso::gpu::kernels
