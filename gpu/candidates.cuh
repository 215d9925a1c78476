#pragma once
// The first half of the top-k selection, shared by the kernel that writes the
// label scores and by the one that reads given scores:
//  - a sampled threshold: one block per (sequence, KV head) scores 4096 of
//    its candidate tokens (1024 runs of 4, evenly spread) and takes as
//    threshold a key at most the sample's key at rank k/candidates x 4096
//    plus six standard deviations of that count, so that on any ordinary
//    score distribution at least k candidates reach it;
//  - candidate lists: per tile of 2048 tokens, the candidates whose key is at
//    least the threshold, (key, token) in token order, and their count; and
//    per head, a histogram of the candidates' keys over 512 bins above the
//    threshold (first_digit), which the bucket kernel (topk.cuh) resolves.
// The bucket kernel (topk.cuh) checks that at least k candidates were
// kept; if not, the selection is made from the head's full scores instead, so
// the threshold only decides the speed, never the result.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "gpu/dependent_launch.cuh"
#include "gpu/radix_select.cuh"
#include "gpu/rows.h"

namespace dso::gpu::kernels {

// A tile: one block of the kernels that produce scores, 8 tokens per thread,
// thread i holding tokens begin + j * kTileThreads + i.
constexpr int kTileThreads = 256;
constexpr int kTileItems = 8;
constexpr int kTileTokens = kTileThreads * kTileItems;
constexpr int kTileWarps = kTileThreads / 32;

// The tiles that hold a head's candidates, from tile 0 to the recent tokens.
DSO_HOST_DEVICE inline std::int64_t candidate_tiles(const HeadSelection& sel) {
  return (sel.recent_begin + kTileTokens - 1) / kTileTokens;
}

constexpr int kSampleThreads = 1024;
constexpr int kSampleItems = 4;
constexpr int kSampleSize = kSampleThreads * kSampleItems;
constexpr int kSampleRun = 4;  // adjacent tokens per run: 64 bytes of r=8 fp16 labels
// Fewer candidates than this: all are kept (sampling would not save a pass).
constexpr std::int64_t kSampleMinCandidates = 4 * kSampleSize;

// The token of sample i (0 <= i < kSampleSize) among a head's candidates.
DSO_HOST_DEVICE inline std::int64_t sample_token(const HeadSelection& sel, int i) {
  constexpr int runs = kSampleSize / kSampleRun;
  return sel.sink_end + std::int64_t(i / kSampleRun) * (sel.candidates() - kSampleRun) / (runs - 1) + i % kSampleRun;
}

// The rank in the sample whose key is the threshold; 0: no sampling, every
// candidate is kept.
DSO_HOST_DEVICE inline std::uint32_t sample_rank(const HeadSelection& sel) {
  if (sel.mode != SelectMode::select || sel.candidates() < kSampleMinCandidates) return 0;
  const double expected = double(sel.k) * kSampleSize / double(sel.candidates());
  const double rank = expected + 6.0 * sqrt(expected) + 16.0;
  return rank < kSampleSize ? std::uint32_t(rank) + 1 : 0;
}

// Per (sequence, KV head), written by the sampling kernel unless noted.
struct HeadState {
  std::uint32_t threshold;     // candidates: keys at or above it
  std::uint32_t shift;         // first-digit bins of 2^shift keys (first_digit)
  std::uint32_t bucket_items;  // keys listed in the k-th key's bin (zeroed here, counted by the bucket kernel)
  std::uint32_t listed;        // set by the bucket kernel: at least k candidates reached the threshold
  std::uint32_t kth, take_equal;  // set by the bucket kernel: the k-th key, equal keys taken
  std::uint32_t segments_done;    // zeroed here, counted by the bucket kernel
  std::uint32_t padding;          // to 32 bytes
};

// The bin of a candidate's key among kFirstBins: equal widths of 2^shift
// keys from the threshold up, the last bin open-ended.
constexpr int kFirstDigitBits = 9;
constexpr int kFirstBins = 1 << kFirstDigitBits;
__device__ __forceinline__ std::uint32_t first_digit(std::uint32_t key, const HeadState& h) {
  const std::uint32_t d = (key - h.threshold) >> h.shift;
  return d < kFirstBins ? d : kFirstBins - 1;
}

struct CandidateParams {
  std::int64_t k, sink, recent;
  HeadState* states;            // [heads]
  std::uint32_t* histograms;    // [heads][kFirstBins]: candidates per first digit
  uint2* candidates;            // [heads][tiles * kTileTokens]: (key, token)
  std::uint32_t* tile_counts;   // [heads][tiles]
  std::int64_t tiles;
};

// Samples one head's candidates through `source` (prepare(s, h) once per
// block, then score(s, h, tokens, scores) for a thread's tokens, all loads in
// flight together) and stores its threshold key. Grid: (kv_heads,
// sequences). The kernels that write candidates may start at once; they wait
// for this one before they read the thresholds.
template <class Source>
__global__ void __launch_bounds__(kSampleThreads) sample_threshold_kernel(CandidateParams p, const std::int32_t* lengths,
                                                                          int kv_heads, Source source) {
  allow_next_grid();
  using Select = BlockRadixSelect<kSampleThreads, kSampleItems>;
  __shared__ typename Select::Storage storage;
  const int h = blockIdx.x, s = blockIdx.y;
  const std::int64_t head = std::int64_t(s) * kv_heads + h;
  const HeadSelection sel = head_selection(lengths[s], p.k, p.sink, p.recent);
  const std::uint32_t rank = sample_rank(sel);
  std::uint32_t* histogram = p.histograms + head * kFirstBins;
  for (int b = threadIdx.x; b < kFirstBins; b += kSampleThreads) histogram[b] = 0;
  HeadState& state = p.states[head];
  if (rank == 0) {  // every candidate is listed
    if (threadIdx.x == 0)
      state.threshold = 0, state.shift = 32 - kFirstDigitBits, state.bucket_items = 0, state.segments_done = 0;
    return;
  }
  source.prepare(s, h);
  auto load = [&](int, std::uint32_t (&keys)[kSampleItems], int& valid) {
    std::int64_t tokens[kSampleItems];
    float score[kSampleItems];
#pragma unroll
    for (int j = 0; j < kSampleItems; ++j) tokens[j] = sample_token(sel, threadIdx.x * kSampleItems + j);
    source.score(s, h, tokens, score);
#pragma unroll
    for (int j = 0; j < kSampleItems; ++j) keys[j] = radix_key(score[j]);
    valid = kSampleItems;
  };
  std::uint32_t keys[kSampleItems];
  int valid = 0;
  load(0, keys, valid);
  // One pass: the threshold is the lowest key of the 1/2048 of the sample's
  // key range that holds the rank-th key, at most that key.
  const uint2 kth = Select{storage}.find(load, 1, rank, keys, valid, 1);
  if (threadIdx.x == 0) {
    // Bins spanning twice the sampled keys above the threshold: the unsampled
    // maximum may lie higher, and lands in the open-ended last bin.
    const std::uint64_t span = 2 * (std::uint64_t(storage.high) - kth.x) + 1;
    const int bits = 64 - __clzll(static_cast<long long>(span));
    state.threshold = kth.x;
    state.shift = bits > kFirstDigitBits ? bits - kFirstDigitBits : 0;
    state.bucket_items = 0;
    state.segments_done = 0;
  }
}

struct CandidateStorage {
  std::uint32_t offsets[kTileItems * kTileWarps];
  std::uint32_t total;
  std::uint32_t bins[kFirstBins];  // the tile's share of the head's histogram
};

// Run by a whole tile block of a head with a selection to make: stores the
// tile's candidates at or above the head's threshold, in token order. Waits
// for the kernel before (the sampling) first.
__device__ inline void write_candidates(const CandidateParams& p, CandidateStorage& st, std::int64_t head,
                                        std::int64_t tile, const HeadSelection& sel, const float (&score)[kTileItems]) {
  static_assert(kTileItems * kTileWarps == 64, "the offsets are scanned two per lane of one warp");
  wait_for_previous_grids();
  const HeadState state = p.states[head];
  const std::uint32_t threshold = state.threshold;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t begin = tile * kTileTokens;
  for (int b = threadIdx.x; b < kFirstBins; b += kTileThreads) st.bins[b] = 0;
  std::uint32_t mask[kTileItems], key[kTileItems];
#pragma unroll
  for (int i = 0; i < kTileItems; ++i) {
    const std::int64_t t = begin + i * kTileThreads + threadIdx.x;
    key[i] = radix_key(score[i]);
    mask[i] = __ballot_sync(0xffffffffu, t >= sel.sink_end && t < sel.recent_begin && key[i] >= threshold);
    if (lane == 0) st.offsets[i * kTileWarps + warp] = __popc(mask[i]);
  }
  __syncthreads();
  // Tokens run (i, warp, lane)-major in the tile, so the exclusive scan of the
  // (i, warp) counts is each warp-row's first output slot.
  if (warp == 0) {
    const std::uint32_t a = st.offsets[2 * lane], b = st.offsets[2 * lane + 1];
    std::uint32_t inclusive = a + b;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
      const std::uint32_t v = __shfl_up_sync(0xffffffffu, inclusive, o);
      if (lane >= o) inclusive += v;
    }
    st.offsets[2 * lane] = inclusive - a - b;
    st.offsets[2 * lane + 1] = inclusive - b;
    if (lane == 31) st.total = inclusive;
  }
  __syncthreads();
  uint2* out = p.candidates + head * p.tiles * kTileTokens + begin;
  const std::uint32_t below = (1u << lane) - 1u;
#pragma unroll
  for (int i = 0; i < kTileItems; ++i)
    if (mask[i] & (1u << lane)) {
      out[st.offsets[i * kTileWarps + warp] + __popc(mask[i] & below)] =
          make_uint2(key[i], std::uint32_t(begin + i * kTileThreads + threadIdx.x));
      atomicAdd(&st.bins[first_digit(key[i], state)], 1u);
    }
  if (threadIdx.x == 0) p.tile_counts[head * p.tiles + tile] = st.total;
  __syncthreads();
  std::uint32_t* histogram = p.histograms + head * kFirstBins;
  for (int b = threadIdx.x; b < kFirstBins; b += kTileThreads)
    if (st.bins[b]) atomicAdd(&histogram[b], st.bins[b]);
}

}  // namespace dso::gpu::kernels
