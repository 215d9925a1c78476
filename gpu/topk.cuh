#pragma once
// Top-k selection, the parts shared by topk.cu and score_labels (see topk.h
// for the method, candidates.cuh for the sampled threshold and the candidate
// lists; topk.cu holds the candidate kernel over given scores and the
// compaction). The bucket kernel, one block per 8 tiles: from the head's
// first-digit histogram, the bin holding the k-th key; each tile's count of
// keys above that bin, and its keys inside the bin appended to the head's
// bucket list (a few hundred keys on ordinary scores). The head's last block
// to finish then finds the exact k-th key among the bucket list, and each
// tile's (greater, equal) counts before it, from which the compaction places
// every tile's indices. If fewer than k candidates reached the sampled
// threshold, that block selects from the head's full scores (first writing
// them, where score_labels did not) and the compaction reads the scores.
#include <cuda_runtime.h>

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "gpu/candidates.cuh"
#include "gpu/check.h"
#include "gpu/dependent_launch.cuh"
#include "gpu/radix_select.cuh"

namespace dso::gpu::kernels {

// The bucket and compaction kernels take kSegmentTiles tiles per block: one
// block per tile would be several waves of short, latency-bound blocks.
constexpr int kSegmentTiles = 8;
constexpr int kSegmentItems = 8;  // items per thread per round
constexpr int kSegmentRound = kTileThreads * kSegmentItems;
constexpr int kThresholdItems = 8;  // bucket keys per thread per round
constexpr std::int64_t kMaxTiles = 8192;  // the deciding block keeps per-tile counts in shared memory

struct TopkParams {
  const float* scores;
  std::int64_t score_stride;
  const std::int32_t* lengths;
  int kv_heads;
  std::int32_t* indices;
  std::int64_t index_stride;
  std::int32_t* counts;
  CandidateParams candidates;
  uint2* bucket;              // [heads][tiles * kTileTokens]: (key, token) in the k-th key's bin, any order
  std::uint32_t* tile_above;  // [heads][tiles]: listed keys above that bin
  uint2* tile_before;         // [heads][tiles]: (greater, equal) keys in the tiles before
};

// Scores read from the score rows, for the sampling kernel.
struct ScoreRows {
  const float* scores;
  std::int64_t stride;
  int kv_heads;
  __device__ void prepare(int, int) const {}
  template <int N>
  __device__ void score(int s, int h, const std::int64_t (&tokens)[N], float (&out)[N]) const {
    const float* row = scores + (std::int64_t(s) * kv_heads + h) * stride;
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = row[tokens[j]];
  }
};

// A tile block's view of its (sequence, KV head).
struct TileHead {
  std::int64_t head, tile, begin;
  HeadSelection sel;
};

__device__ inline TileHead tile_head(const TopkParams& p, std::int64_t tile) {
  const int h = blockIdx.y, s = blockIdx.z;
  const CandidateParams& c = p.candidates;
  return {std::int64_t(s) * p.kv_heads + h, tile, tile * kTileTokens, head_selection(p.lengths[s], c.k, c.sink, c.recent)};
}

// (Clamped only so that lists never written, a misuse, cannot send reads out of them.)
__device__ inline std::uint32_t tile_listed(const TopkParams& p, std::int64_t head, std::int64_t tile) {
  return min(p.candidates.tile_counts[head * p.candidates.tiles + tile], std::uint32_t(kTileTokens));
}

// A segment block's tiles: the first one, how many hold candidates, and where
// each tile's listed keys start among the segment's (start[kSegmentTiles] is
// their total). Run by a whole block.
struct Segment {
  std::int64_t first_tile;
  int tiles;
  std::uint32_t start[kSegmentTiles + 1];

  // Thread 0 fetches the tiles' list lengths, then the whole block publishes
  // them (a barrier), so the loads can overlap other work in between.
  __device__ static void fetch(const TopkParams& p, const TileHead& t, std::uint32_t (&counts)[kSegmentTiles]) {
    const std::int64_t head_tiles = candidate_tiles(t.sel);
#pragma unroll
    for (int i = 0; i < kSegmentTiles; ++i) counts[i] = t.tile + i < head_tiles ? tile_listed(p, t.head, t.tile + i) : 0u;
  }
  __device__ void publish(const TileHead& t, const std::uint32_t (&counts)[kSegmentTiles]) {
    if (threadIdx.x == 0) {
      const std::int64_t head_tiles = candidate_tiles(t.sel);
      first_tile = t.tile;
      tiles = int(head_tiles - t.tile < kSegmentTiles ? head_tiles - t.tile : kSegmentTiles);
      std::uint32_t sum = 0;
      for (int i = 0; i < kSegmentTiles; ++i) start[i] = sum, sum += counts[i];
      start[kSegmentTiles] = sum;
    }
    __syncthreads();
  }
  // The segment tile holding listed item i, walking forward from `tile`.
  __device__ int tile_of(std::uint32_t i, int tile) const {
    while (start[tile + 1] <= i) ++tile;
    return tile;
  }
  __device__ const uint2* items(const TopkParams& p, std::int64_t head, int tile) const {
    return p.candidates.candidates + (head * p.candidates.tiles + first_tile + tile) * kTileTokens - start[tile];
  }
};

// The first-digit bin holding the head's k-th key: (bin, rank left inside
// it, candidates listed). Run by a whole block.
template <int THREADS>
__device__ uint3 kth_bin(const TopkParams& p, std::int64_t head, std::uint32_t k,
                         typename BlockRadixSelect<THREADS, 1>::Storage& storage) {
  return BlockRadixSelect<THREADS, 1>{storage}.template resolve_bins<kFirstBins>(
      p.candidates.histograms + head * kFirstBins, k);
}

// The head's exact k-th key, among its bucket's keys (rank bin.y among them)
// or, when the threshold missed, among all its candidates' scores; then each
// tile's (greater, equal) keys before it. Run by one whole block per head,
// after every segment block of the head has gathered its bucket keys.
template <int THREADS, class Rescue>
__device__ void decide_head(const TopkParams& p, int s, int h, const HeadSelection& sel, uint3 bin,
                            const Rescue& rescue, typename BlockRadixSelect<THREADS, kThresholdItems>::Storage& select,
                            typename cub::BlockScan<unsigned long long, THREADS>::TempStorage& scan,
                            std::uint32_t* tile_counts) {
  using Select = BlockRadixSelect<THREADS, kThresholdItems>;
  using PairScan = cub::BlockScan<unsigned long long, THREADS>;
  const CandidateParams& c = p.candidates;
  const std::int64_t head = std::int64_t(s) * p.kv_heads + h;
  const bool listed = bin.z >= sel.k;
  if (!listed) {
    rescue(s, h, sel);
    __syncthreads();
  }
  const std::int64_t tiles = candidate_tiles(sel);
  for (std::int64_t tile = threadIdx.x; tile < tiles; tile += THREADS) tile_counts[tile] = 0;
  HeadState& state = c.states[head];
  // Written by other blocks of this grid: read past the (incoherent) L1.
  const std::int64_t items = listed ? std::int64_t(__ldcg(&state.bucket_items)) : sel.candidates();
  const std::uint32_t rank = listed ? bin.y : std::uint32_t(sel.k);
  const uint2* bucket = p.bucket + head * c.tiles * kTileTokens;
  const float* row = p.scores + head * p.score_stride;
  constexpr int round_items = THREADS * kThresholdItems;
  const int rounds = int((items + round_items - 1) / round_items);
  auto item = [&](std::int64_t i) -> uint2 {  // (key, token)
    if (listed) return __ldcg(bucket + i);
    const std::int64_t token = sel.sink_end + i;
    return make_uint2(radix_key(row[token]), std::uint32_t(token));
  };
  auto load = [&](int round, std::uint32_t(&keys)[kThresholdItems], int& valid) {
    const std::int64_t first = std::int64_t(round) * round_items + std::int64_t(threadIdx.x) * kThresholdItems;
    valid = int(items - first < 0 ? 0 : items - first < kThresholdItems ? items - first : kThresholdItems);
#pragma unroll
    for (int j = 0; j < kThresholdItems; ++j)
      if (j < valid) keys[j] = item(first + j).x;
  };
  std::uint32_t keys[kThresholdItems];
  int valid = 0;
  if (rounds == 1) load(0, keys, valid);
  const uint2 kth = Select{select}.find(load, rounds, rank, keys, valid);

  // Per tile: the greater and equal keys among those decided here (the
  // bucket's, or all), plus, when listed, the keys above the bucket's bin.
  for (int round = 0; round < rounds; ++round) {
    const std::int64_t first = std::int64_t(round) * round_items + std::int64_t(threadIdx.x) * kThresholdItems;
    for (int j = 0; j < kThresholdItems && first + j < items; ++j) {
      const uint2 v = item(first + j);
      const std::uint32_t add = v.x > kth.x ? 1u : v.x == kth.x ? (1u << 16) : 0u;
      if (add) atomicAdd(&tile_counts[v.y / kTileTokens], add);
    }
  }
  __syncthreads();
  std::uint32_t greater_before = 0, equal_before = 0;
  for (std::int64_t base = 0; base < tiles; base += THREADS) {
    const std::int64_t tile = base + threadIdx.x;
    unsigned long long mine = 0;
    if (tile < tiles) {
      const std::uint32_t packed = tile_counts[tile];
      const std::uint32_t above = listed ? __ldcg(p.tile_above + head * c.tiles + tile) : 0u;
      mine = (packed & 0xffffu) + above + (std::uint64_t(packed >> 16) << 32);
    }
    unsigned long long before = 0, round_total = 0;
    PairScan(scan).ExclusiveSum(mine, before, round_total);
    if (tile < tiles)
      p.tile_before[head * c.tiles + tile] =
          make_uint2(greater_before + std::uint32_t(before), equal_before + std::uint32_t(before >> 32));
    greater_before += std::uint32_t(round_total);
    equal_before += std::uint32_t(round_total >> 32);
    __syncthreads();
  }
  if (threadIdx.x == 0) state.listed = listed, state.kth = kth.x, state.take_equal = kth.y;
}

// For a head whose threshold missed, the deciding block reads the head's score
// row: written already (this), or written then by the rescue (scores.cuh).
struct ScoresWritten {
  __device__ void operator()(int, int, const HeadSelection&) const {}
};

// Grid: (segments, kv_heads, sequences). The last segment block of each head
// to finish decides the head (decide_head).
template <class Rescue>
__global__ void __launch_bounds__(kTileThreads) topk_bucket_kernel(TopkParams p, Rescue rescue) {
  using PairScan = cub::BlockScan<unsigned long long, kTileThreads>;
  __shared__ union {
    typename BlockRadixSelect<kTileThreads, 1>::Storage bins;
    typename BlockRadixSelect<kTileThreads, kThresholdItems>::Storage select;
    typename PairScan::TempStorage scan;
  } storage;
  __shared__ Segment segment;
  __shared__ std::uint32_t above[kSegmentTiles];
  __shared__ std::uint32_t tile_counts[kMaxTiles];  // deciding: (greater, equal) keys per tile, 16 bits each
  __shared__ bool last;
  wait_for_previous_grids();
  allow_next_grid();
  const TileHead t = tile_head(p, std::int64_t(blockIdx.x) * kSegmentTiles);
  if (t.sel.mode != SelectMode::select || t.begin >= t.sel.recent_begin) return;  // the whole block
  HeadState& head_state = p.candidates.states[t.head];
  const HeadState state = head_state;
  std::uint32_t counts[kSegmentTiles];
  if (threadIdx.x == 0) Segment::fetch(p, t, counts);
  const uint3 bin = kth_bin<kTileThreads>(p, t.head, std::uint32_t(t.sel.k), storage.bins);
  if (bin.z >= t.sel.k) {  // else the threshold missed and decide_head reads the scores
    segment.publish(t, counts);
    if (threadIdx.x < kSegmentTiles) above[threadIdx.x] = 0;
    __syncthreads();
    const std::uint32_t total = segment.start[kSegmentTiles];
    uint2* bucket = p.bucket + t.head * p.candidates.tiles * kTileTokens;
    for (std::uint32_t base = 0; base < total; base += kSegmentRound) {
      const std::uint32_t first = base + threadIdx.x * kSegmentItems;
      int tile = first < total ? segment.tile_of(first, 0) : 0;
      std::uint32_t run = 0;  // keys above the bin in `tile`, not yet added
#pragma unroll
      for (int j = 0; j < kSegmentItems; ++j) {
        const std::uint32_t i = first + j;
        if (i >= total) continue;
        const int at = segment.tile_of(i, tile);
        if (at != tile) {
          if (run) atomicAdd(&above[tile], run);
          tile = at, run = 0;
        }
        const uint2 item = segment.items(p, t.head, tile)[i];
        const std::uint32_t digit = first_digit(item.x, state);
        run += digit > bin.x;
        if (digit == bin.x) bucket[atomicAdd(&head_state.bucket_items, 1u)] = item;
      }
      if (run) atomicAdd(&above[tile], run);
    }
    __syncthreads();
    if (threadIdx.x < segment.tiles)
      p.tile_above[t.head * p.candidates.tiles + segment.first_tile + threadIdx.x] = above[threadIdx.x];
  }
  // The last block of the head to get here sees every other block's writes.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const std::uint32_t segments = std::uint32_t((candidate_tiles(t.sel) + kSegmentTiles - 1) / kSegmentTiles);
    last = atomicAdd(&head_state.segments_done, 1u) == segments - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  decide_head<kTileThreads>(p, int(blockIdx.z), int(blockIdx.y), t.sel, bin, rescue, storage.select, storage.scan,
                            tile_counts);
}

// The grid of the bucket and compaction kernels: (segments, kv_heads, sequences).
inline dim3 segment_grid(const TopkParams& p, int sequences) {
  return dim3(unsigned((p.candidates.tiles + kSegmentTiles - 1) / kSegmentTiles), unsigned(p.kv_heads),
              unsigned(sequences));
}

template <class Rescue>
cudaError_t launch_bucket(const TopkParams& p, int sequences, const Rescue& rescue, cudaStream_t stream) {
  DSO_CUDA_TRY(launch_after_previous(topk_bucket_kernel<Rescue>, segment_grid(p, sequences), dim3(kTileThreads),
                                     stream, p, rescue));
  return launch_status(stream);
}

}  // namespace dso::gpu::kernels
