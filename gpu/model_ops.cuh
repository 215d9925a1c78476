#pragma once
// Kernels of the non-attention decoder operations. They take raw device
// pointers of device types (float, __half, __nv_bfloat16) and their launchers
// return the launch's cudaError_t; shape checks and errors belong to the host
// layer (gpu/model_ops.cu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>

#include <algorithm>
#include <cstdint>

#include "core/rope.h"

namespace dso::gpu::kernels {

constexpr int kBlock = 256;
constexpr int kWarps = kBlock / 32;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float load(float x) { return x; }
__device__ __forceinline__ float load(__half x) { return __half2float(x); }
__device__ __forceinline__ float load(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T store(float x);
template <>
__device__ __forceinline__ float store<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half store<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Every thread of a kBlock-thread block gets the reduction of all threads' v;
// the partials are combined in a fixed order, so the result is reproducible.
template <class Combine>
__device__ float block_all_reduce(float v, Combine combine) {
  __shared__ float partial[kWarps];
  for (int o = 16; o > 0; o >>= 1) v = combine(v, __shfl_xor_sync(kFullMask, v, o));
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  v = partial[0];
  for (int w = 1; w < kWarps; ++w) v = combine(v, partial[w]);
  __syncthreads();  // the next reduction may overwrite partial
  return v;
}

// The best logit so far: larger value wins, equal values go to the lower index,
// and NaN compares false both ways so it never replaces anything.
struct Best {
  float value;
  long long index;
};

__device__ __forceinline__ bool beats(float value, long long index, const Best& b) {
  return value > b.value || (value == b.value && index < b.index);
}

__device__ inline Best block_argmax(Best best) {
  __shared__ Best partial[kWarps];
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_xor_sync(kFullMask, best.value, o);
    const long long i = __shfl_xor_sync(kFullMask, best.index, o);
    if (beats(v, i, best)) best = {v, i};
  }
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = best;
  __syncthreads();
  best = partial[0];
  for (int w = 1; w < kWarps; ++w)
    if (beats(partial[w].value, partial[w].index, best)) best = partial[w];
  return best;
}

__device__ __forceinline__ std::int64_t global_thread() { return std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ std::int64_t grid_threads() { return std::int64_t(gridDim.x) * blockDim.x; }

// Blocks for a grid-stride loop over n elements.
inline unsigned blocks_for(std::int64_t n) {
  return unsigned(std::clamp<std::int64_t>((n + kBlock - 1) / kBlock, 1, std::int64_t(1) << 20));
}

// grid (batch, ceil(hidden / kBlock))
template <class T>
__global__ void __launch_bounds__(kBlock)
    embed_kernel(const T* table, std::int64_t vocab, int hidden, const std::int32_t* tokens, float* out) {
  const int i = blockIdx.y * kBlock + threadIdx.x;
  if (i >= hidden) return;
  const std::int32_t token = tokens[blockIdx.x];
  out[std::int64_t(blockIdx.x) * hidden + i] =
      token >= 0 && token < vocab ? load(table[std::int64_t(token) * hidden + i]) : CUDART_NAN_F;
}

template <class T>
cudaError_t launch_embed(const T* table, std::int64_t vocab, int hidden, const std::int32_t* tokens, int batch,
                         float* out, cudaStream_t stream) {
  const dim3 grid(unsigned(batch), unsigned((hidden + kBlock - 1) / kBlock));
  embed_kernel<<<grid, kBlock, 0, stream>>>(table, vocab, hidden, tokens, out);
  return cudaGetLastError();
}

// One block per row.
template <class W, class O>
__global__ void __launch_bounds__(kBlock) rms_norm_kernel(const float* x, const W* weight, int n, float eps, O* out) {
  const float* row = x + std::int64_t(blockIdx.x) * n;
  float sum_sq = 0.0f;
  for (int i = threadIdx.x; i < n; i += kBlock) sum_sq += row[i] * row[i];
  sum_sq = block_all_reduce(sum_sq, Sum{});
  const float inv_rms = 1.0f / sqrtf(sum_sq / float(n) + eps);
  O* o = out + std::int64_t(blockIdx.x) * n;
  for (int i = threadIdx.x; i < n; i += kBlock) o[i] = store<O>(row[i] * inv_rms * load(weight[i]));
}

template <class W, class O>
cudaError_t launch_rms_norm(const float* x, const W* weight, int batch, int n, float eps, O* out, cudaStream_t stream) {
  rms_norm_kernel<<<unsigned(batch), kBlock, 0, stream>>>(x, weight, n, eps, out);
  return cudaGetLastError();
}

// One thread per (sequence, head, pair).
template <class O>
__global__ void __launch_bounds__(kBlock) rope_kernel(const float* x, RopeSpec spec, O* out) {
  const int half = spec.head_dim / 2;
  const std::int64_t total = std::int64_t(spec.batch) * spec.heads * half;
  for (std::int64_t t = global_thread(); t < total; t += grid_threads()) {
    const int i = int(t % half);
    const std::int64_t head_row = t / half;  // b * heads + h
    const auto b = int(head_row / spec.heads);
    const RopeRotation r = rope_rotation(spec.positions[b], i, spec.head_dim, spec.theta);
    const std::int64_t base = head_row * spec.head_dim;
    float lo = x[base + i], hi = x[base + i + half];
    rope_rotate(lo, hi, r);
    out[base + i] = store<O>(lo);
    out[base + i + half] = store<O>(hi);
  }
}

template <class O>
cudaError_t launch_rope(const float* x, const RopeSpec& spec, O* out, cudaStream_t stream) {
  const std::int64_t total = std::int64_t(spec.batch) * spec.heads * (spec.head_dim / 2);
  rope_kernel<<<blocks_for(total), kBlock, 0, stream>>>(x, spec, out);
  return cudaGetLastError();
}

template <class O>
__global__ void __launch_bounds__(kBlock)
    swiglu_kernel(const float* gate, const float* up, int batch, int n, std::int64_t in_stride, O* out) {
  const std::int64_t total = std::int64_t(batch) * n;
  for (std::int64_t t = global_thread(); t < total; t += grid_threads()) {
    const std::int64_t b = t / n, i = t % n;
    const float g = gate[b * in_stride + i];
    out[t] = store<O>(g / (1.0f + expf(-g)) * up[b * in_stride + i]);
  }
}

template <class O>
cudaError_t launch_swiglu(const float* gate, const float* up, int batch, int n, std::int64_t in_stride, O* out,
                          cudaStream_t stream) {
  swiglu_kernel<<<blocks_for(std::int64_t(batch) * n), kBlock, 0, stream>>>(gate, up, batch, n, in_stride, out);
  return cudaGetLastError();
}

static __global__ void __launch_bounds__(kBlock) add_kernel(float* x, const float* y, std::int64_t n) {
  for (std::int64_t t = global_thread(); t < n; t += grid_threads()) x[t] += y[t];
}

inline cudaError_t launch_add(float* x, const float* y, std::int64_t n, cudaStream_t stream) {
  add_kernel<<<blocks_for(n), kBlock, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

template <class From, class To>
__global__ void __launch_bounds__(kBlock) cast_kernel(const From* in, std::int64_t n, To* out) {
  for (std::int64_t t = global_thread(); t < n; t += grid_threads()) out[t] = store<To>(load(in[t]));
}

template <class From, class To>
cudaError_t launch_cast(const From* in, std::int64_t n, To* out, cudaStream_t stream) {
  cast_kernel<<<blocks_for(n), kBlock, 0, stream>>>(in, n, out);
  return cudaGetLastError();
}

// One thread per (sequence, packed pair): rotates the pair's two products
// ([batch][2 * pairs]) and stores them at their channels of the query head.
template <class O>
__global__ void __launch_bounds__(kBlock)
    speculative_scatter_kernel(const float* products, const std::int32_t* pair_head, const std::int32_t* pair_channel,
                               std::int64_t pairs, RopeSpec spec, O* out) {
  const int half = spec.head_dim / 2;
  const std::int64_t total = std::int64_t(spec.batch) * pairs;
  for (std::int64_t t = global_thread(); t < total; t += grid_threads()) {
    const std::int64_t b = t / pairs, k = t % pairs;
    const int i = pair_channel[k];
    const RopeRotation r = rope_rotation(spec.positions[b], i, spec.head_dim, spec.theta);
    float lo = products[2 * t], hi = products[2 * t + 1];
    rope_rotate(lo, hi, r);
    const std::int64_t base = (b * spec.heads + pair_head[k]) * spec.head_dim;
    out[base + i] = store<O>(lo);
    out[base + i + half] = store<O>(hi);
  }
}

template <class O>
cudaError_t launch_speculative_scatter(const float* products, const std::int32_t* pair_head,
                                       const std::int32_t* pair_channel, std::int64_t pairs, const RopeSpec& spec,
                                       O* out, cudaStream_t stream) {
  speculative_scatter_kernel<<<blocks_for(std::int64_t(spec.batch) * pairs), kBlock, 0, stream>>>(
      products, pair_head, pair_channel, pairs, spec, out);
  return cudaGetLastError();
}

// One block per row.
static __global__ void __launch_bounds__(kBlock)
    argmax_kernel(const float* logits, std::int64_t vocab, std::int32_t* out) {
  const float* row = logits + std::int64_t(blockIdx.x) * vocab;
  Best best{-CUDART_INF_F, vocab};  // index vocab: no number seen yet
  for (std::int64_t i = threadIdx.x; i < vocab; i += kBlock)
    if (beats(row[i], i, best)) best = {row[i], i};
  best = block_argmax(best);
  if (threadIdx.x == 0) out[blockIdx.x] = std::int32_t(best.index == vocab ? 0 : best.index);
}

inline cudaError_t launch_argmax(const float* logits, int batch, std::int64_t vocab, std::int32_t* out,
                                 cudaStream_t stream) {
  argmax_kernel<<<unsigned(batch), kBlock, 0, stream>>>(logits, vocab, out);
  return cudaGetLastError();
}

// One block per row: max, then the sum of exponentials below it.
static __global__ void __launch_bounds__(kBlock)
    target_log_prob_kernel(const float* logits, std::int64_t vocab, const std::int32_t* targets, float* out) {
  const float* row = logits + std::int64_t(blockIdx.x) * vocab;
  float mx = -CUDART_INF_F;
  for (std::int64_t i = threadIdx.x; i < vocab; i += kBlock) mx = fmaxf(mx, row[i]);
  mx = block_all_reduce(mx, Max{});
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < vocab; i += kBlock) sum += expf(row[i] - mx);
  sum = block_all_reduce(sum, Sum{});
  if (threadIdx.x == 0) {
    const std::int32_t target = targets[blockIdx.x];
    out[blockIdx.x] = target >= 0 && target < vocab ? row[target] - mx - logf(sum) : CUDART_NAN_F;
  }
}

inline cudaError_t launch_target_log_prob(const float* logits, int batch, std::int64_t vocab,
                                          const std::int32_t* targets, float* out, cudaStream_t stream) {
  target_log_prob_kernel<<<unsigned(batch), kBlock, 0, stream>>>(logits, vocab, targets, out);
  return cudaGetLastError();
}

}  // namespace dso::gpu::kernels
