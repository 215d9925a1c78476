#pragma once
// Causal attention among the tokens of a prompt, for prefill: exact (every
// earlier token is attended), fp32 accumulation, softmax scale 1/sqrt(d).
// Its CPU reference is cpu::dense_attention over the first p + 1 tokens for a
// query at position p.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dso::gpu {

// Queries of prompt positions first .. first + tokens - 1 attend to keys and
// values of positions 0 .. their own. T is Half or BFloat16 (read as __half /
// __nv_bfloat16) or float.
template <class T>
struct PrefillAttentionParams {
  const T* q = nullptr;  // [tokens][q_heads][head_dim]
  const T* k = nullptr;  // [first + tokens][kv_heads][head_dim]
  const T* v = nullptr;  // [first + tokens][kv_heads][head_dim]
  T* out = nullptr;      // [tokens][q_heads][head_dim]
  std::int64_t first = 0;
  int tokens = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;  // even, at most kMaxPrefillHeadDim
};

inline constexpr int kMaxPrefillHeadDim = 256;

// Validates the shape (dso::Error) and launches on `stream`.
template <class T>
void prefill_attention(const PrefillAttentionParams<T>& p, cudaStream_t stream);

}  // namespace dso::gpu
