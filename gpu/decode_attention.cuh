#pragma once
// Split-K decode attention kernels (see decode_attention.h).
//
// Inside a block of 4 warps, D/8 lanes share one token row (16 bytes each), so
// a warp reads 32/(D/8) rows per load and every lane owns 8 channels of the
// query, of the running accumulator and of each row. Each lane-group keeps its
// own online-softmax state over the rows it saw, U rows at a time (loads for U
// rows are issued before the first use, and the state is rescaled once per U
// rows); the states are merged at the end of the chunk. Logits live in the
// log2 domain (the query is prescaled by log2(e)/sqrt(D)) so exp is exp2.
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>
#include <type_traits>

#include "gpu/check.h"
#include "gpu/dependent_launch.cuh"
#include "gpu/rows.h"
#include "gpu/vec.cuh"

namespace dso::gpu::kernels {

struct AttentionParams {
  const void* q;
  const void* k;
  const void* v;
  RowStrides kv_strides;
  const std::int32_t* lengths;
  std::int64_t length_stride_sequence, length_stride_head;
  const std::int32_t* indices;
  std::int64_t index_stride;
  std::int64_t max_tokens;  // bound on every length; index rows hold at least this many entries
  int q_heads, kv_heads, group;
  int chunk_tokens, chunks;
  float scale_log2;
  float* partial_acc;  // [sequences][q_heads][chunks][D]
  float2* partial_ms;  // [sequences][q_heads][chunks]: (max, sum of exp2(logit - max))
  void* out;
  float* out_f32;
};

constexpr int kAttentionWarps = 4;
constexpr int kAttentionThreads = kAttentionWarps * 32;
// A running max that no row has raised yet: finite, so that exp2(max - max) is 1, not NaN.
constexpr float kNoRowsMax = -FLT_MAX;

// Rows per lane-group whose loads are in flight together; fewer for larger
// groups, whose query and accumulator tiles take the registers.
template <int G>
constexpr int attention_unroll() {
  return G <= 2 ? 8 : G == 4 ? 4 : 2;
}
template <int G>
constexpr int attention_min_blocks() {
  return G <= 2 ? 4 : G == 4 ? 3 : 2;
}

template <int G>
struct SoftmaxState {
  float max[G];
  float sum[G];
  float acc[G][8];
};

// Merges `other` into `state` for head g.
template <int G>
__device__ __forceinline__ void merge_state(SoftmaxState<G>& state, int g, float other_max, float other_sum,
                                            const float (&other_acc)[8]) {
  const float m = fmaxf(state.max[g], other_max);
  const float a = exp2f(state.max[g] - m), b = exp2f(other_max - m);
  state.max[g] = m;
  state.sum[g] = state.sum[g] * a + other_sum * b;
#pragma unroll
  for (int c = 0; c < 8; ++c) state.acc[g][c] = state.acc[g][c] * a + other_acc[c] * b;
}

template <class T, int D, int G, bool INDEXED>
__global__ void __launch_bounds__(kAttentionThreads, attention_min_blocks<G>())
    attention_chunk_kernel(AttentionParams p) {
  constexpr int LANES = D / 8;
  constexpr int TPW = 32 / LANES;
  constexpr int U = attention_unroll<G>();
  constexpr int STEP = kAttentionWarps * TPW;
  __shared__ float shared_acc[kAttentionWarps][G][D];
  __shared__ float2 shared_ms[kAttentionWarps][G];

  const int chunk = blockIdx.x, h = blockIdx.y, s = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int slot = lane / LANES, part = lane % LANES;
  wait_for_previous_grids();
  allow_next_grid();
  const std::int64_t length = p.lengths[s * p.length_stride_sequence + h * p.length_stride_head];
  const std::int64_t begin = std::int64_t(chunk) * p.chunk_tokens;
  const std::int64_t chunk_end = begin + p.chunk_tokens;

  const T* q = static_cast<const T*>(p.q) + (std::int64_t(s) * p.q_heads + std::int64_t(h) * p.group) * D;
  float qf[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (g < p.group) {
      unpack8<T>(reinterpret_cast<const uint4*>(q + g * D)[part], qf[g]);
#pragma unroll
      for (int c = 0; c < 8; ++c) qf[g][c] *= p.scale_log2;
    } else {
#pragma unroll
      for (int c = 0; c < 8; ++c) qf[g][c] = 0.0f;
    }
  }
  SoftmaxState<G> st;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    st.max[g] = kNoRowsMax;
    st.sum[g] = 0.0f;
#pragma unroll
    for (int c = 0; c < 8; ++c) st.acc[g][c] = 0.0f;
  }

  const std::int64_t head_offset = p.kv_strides.offset(s, h, 0);
  const uint4* keys = reinterpret_cast<const uint4*>(static_cast<const T*>(p.k) + head_offset) + part;
  const uint4* values = reinterpret_cast<const uint4*>(static_cast<const T*>(p.v) + head_offset) + part;
  const std::int64_t row_vectors = p.kv_strides.token / 8;
  const std::int32_t* indices = INDEXED ? p.indices + (std::int64_t(s) * p.kv_heads + h) * p.index_stride : nullptr;

  // Rows of the U tokens a lane-group handles per round, -1 past `limit`.
  std::int64_t row[U];
  auto find_rows = [&](std::int64_t t0, std::int64_t limit) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::int64_t t = t0 + u * STEP + warp * TPW + slot;
      row[u] = t < limit ? (INDEXED ? std::int64_t(indices[t]) : t) : -1;
    }
  };
  // The first indices are requested before the length is known (bounded by
  // max_tokens, which the index rows cover), then cut to it.
  find_rows(begin, chunk_end < p.max_tokens ? chunk_end : p.max_tokens);
  const std::int64_t end = chunk_end < length ? chunk_end : length;
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (begin + u * STEP + warp * TPW + slot >= end) row[u] = -1;
  for (std::int64_t t0 = begin; t0 < end; t0 += U * STEP) {
    uint4 kr[U], vr[U];
    bool live[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      live[u] = row[u] >= 0;
      if (live[u]) {
        if constexpr (INDEXED) {  // scattered rows: each fetched whole by L2
          kr[u] = load_in_block<D * 2>(keys + row[u] * row_vectors);
          vr[u] = load_in_block<D * 2>(values + row[u] * row_vectors);
        } else {
          kr[u] = __ldg(keys + row[u] * row_vectors);
          vr[u] = __ldg(values + row[u] * row_vectors);
        }
      } else {
        kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
    // The next round's indices load while this round's rows are in flight.
    find_rows(t0 + U * STEP, end);
    float logit[U][G];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[8];
      unpack8<T>(kr[u], kf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int c = 0; c < 8; ++c) dot = fmaf(qf[g][c], kf[c], dot);
#pragma unroll
        for (int offset = LANES / 2; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        logit[u][g] = live[u] ? dot : -INFINITY;
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float m = st.max[g];
#pragma unroll
      for (int u = 0; u < U; ++u) m = fmaxf(m, logit[u][g]);
      const float alpha = exp2f(st.max[g] - m);
      st.max[g] = m;
      st.sum[g] *= alpha;
#pragma unroll
      for (int c = 0; c < 8; ++c) st.acc[g][c] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vf[8];
      unpack8<T>(vr[u], vf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float w = exp2f(logit[u][g] - st.max[g]);
        st.sum[g] += w;
#pragma unroll
        for (int c = 0; c < 8; ++c) st.acc[g][c] = fmaf(w, vf[c], st.acc[g][c]);
      }
    }
  }

  // Lane-groups of a warp hold the same channels: butterfly-merge them.
#pragma unroll
  for (int offset = LANES; offset < 32; offset *= 2) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float other_acc[8];
#pragma unroll
      for (int c = 0; c < 8; ++c) other_acc[c] = __shfl_xor_sync(0xffffffffu, st.acc[g][c], offset);
      const float other_max = __shfl_xor_sync(0xffffffffu, st.max[g], offset);
      const float other_sum = __shfl_xor_sync(0xffffffffu, st.sum[g], offset);
      merge_state(st, g, other_max, other_sum, other_acc);
    }
  }
  if (slot == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int c = 0; c < 8; ++c) shared_acc[warp][g][part * 8 + c] = st.acc[g][c];
      if (part == 0) shared_ms[warp][g] = make_float2(st.max[g], st.sum[g]);
    }
  }
  __syncthreads();

  for (int i = threadIdx.x; i < p.group * D; i += kAttentionThreads) {
    const int g = i / D, c = i % D;
    float m = kNoRowsMax;
#pragma unroll
    for (int w = 0; w < kAttentionWarps; ++w) m = fmaxf(m, shared_ms[w][g].x);
    float sum = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < kAttentionWarps; ++w) {
      const float scale = exp2f(shared_ms[w][g].x - m);
      sum += shared_ms[w][g].y * scale;
      acc += shared_acc[w][g][c] * scale;
    }
    const std::int64_t partial = (std::int64_t(s) * p.q_heads + std::int64_t(h) * p.group + g) * p.chunks + chunk;
    p.partial_acc[partial * D + c] = acc;
    if (c == 0) p.partial_ms[partial] = make_float2(m, sum);
  }
}

constexpr int kMergeThreads = 256;

// Log-sum-exp merge of one (sequence, query head)'s chunks: each warp folds a
// strided share of the chunks (lane i owning channels 4i..4i+3, or 2i..2i+1),
// so the loads of many chunks are in flight at once; then the warps' states
// are folded in shared memory.
template <class T, int D>
__global__ void __launch_bounds__(kMergeThreads) attention_merge_kernel(AttentionParams p) {
  constexpr int WARPS = kMergeThreads / 32;
  constexpr int PER_LANE = D / 32;
  using Part = typename std::conditional<PER_LANE == 4, float4, float2>::type;
  __shared__ float shared_acc[WARPS][D];
  __shared__ float2 shared_ms[WARPS];
  const int qh = blockIdx.x, s = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t first = (std::int64_t(s) * p.q_heads + qh) * p.chunks;
  wait_for_previous_grids();

  float m = kNoRowsMax, sum = 0.0f, acc[PER_LANE] = {};
#pragma unroll 4
  for (int j = warp; j < p.chunks; j += WARPS) {
    const float2 ms = p.partial_ms[first + j];
    const Part part = reinterpret_cast<const Part*>(p.partial_acc + (first + j) * D)[lane];
    const float* v = reinterpret_cast<const float*>(&part);
    const float next = fmaxf(m, ms.x);
    const float a = exp2f(m - next), b = exp2f(ms.x - next);
    m = next;
    sum = sum * a + ms.y * b;
#pragma unroll
    for (int i = 0; i < PER_LANE; ++i) acc[i] = acc[i] * a + v[i] * b;
  }
#pragma unroll
  for (int i = 0; i < PER_LANE; ++i) shared_acc[warp][lane * PER_LANE + i] = acc[i];
  if (lane == 0) shared_ms[warp] = make_float2(m, sum);
  __syncthreads();

  for (int c = threadIdx.x; c < D; c += kMergeThreads) {
    float top = kNoRowsMax;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) top = fmaxf(top, shared_ms[w].x);
    float total = 0.0f, weighted = 0.0f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) {
      const float scale = exp2f(shared_ms[w].x - top);
      total += shared_ms[w].y * scale;
      weighted += shared_acc[w][c] * scale;
    }
    // No rows at all: the CPU reference's empty sum gives zeros.
    const float result = total > 0.0f ? weighted / total : 0.0f;
    const std::int64_t o = (std::int64_t(s) * p.q_heads + qh) * D + c;
    if (p.out) static_cast<T*>(p.out)[o] = from_f32<T>(result);
    if (p.out_f32) p.out_f32[o] = result;
  }
}

template <class T, int D, int G, bool INDEXED>
cudaError_t launch_decode_attention(const AttentionParams& p, int sequences, cudaStream_t stream) {
  if (sequences == 0 || p.kv_heads == 0) return cudaSuccess;
  const dim3 grid(unsigned(p.chunks), unsigned(p.kv_heads), unsigned(sequences));
  DSO_CUDA_TRY(
      launch_after_previous(attention_chunk_kernel<T, D, G, INDEXED>, grid, dim3(kAttentionThreads), stream, p));
  DSO_CUDA_TRY_LAUNCH(stream);
  DSO_CUDA_TRY(launch_after_previous(attention_merge_kernel<T, D>, dim3(unsigned(p.q_heads), unsigned(sequences)),
                                     dim3(kMergeThreads), stream, p));
  DSO_CUDA_TRY_LAUNCH(stream);
  return cudaSuccess;
}

}  // namespace dso::gpu::kernels
