#pragma once
// Causal attention of a prefill chunk, CPU backend: tiled, through the BLAS,
// and spread over threads. Each query attends to every key up to its own
// position, with softmax scale 1/sqrt(d), as cpu/attention.h's
// dense_attention does for one query at a time; the result is that one's up
// to rounding (the BLAS sums in another order, exp is exp_nonpositive.h's,
// and the softmax is taken block by block, rescaled as each block raises the
// running maximum).
#include <cstdint>

namespace dso::cpu {

struct PrefillAttentionShape {
  int q_heads = 0;
  int kv_heads = 0;  // query head h reads KV head h / (q_heads / kv_heads)
  int head_dim = 0;
};

// q: [rows][q_heads][d], the queries of positions first .. first + rows - 1;
// keys, values: [kv_heads][key_stride][d], positions 0 .. first + rows - 1 of
// each KV head filled; out: [rows][q_heads][d]. fp32 throughout. Runs on up
// to `threads` threads (0: the cores available).
void prefill_attention(const float* q, std::int64_t rows, const PrefillAttentionShape& shape, const float* keys,
                       const float* values, std::int64_t key_stride, std::int64_t first, float* out, int threads);

}  // namespace dso::cpu
