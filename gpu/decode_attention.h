#pragma once
// Decode attention, dense and sparse, split over the sequence (split-K): each
// block attends one chunk of one (sequence, KV head)'s rows for all the query
// heads of its GQA group and leaves a partial (max, sum, accumulator); a merge
// combines the chunks by log-sum-exp. Batch 1 thus fills the GPU. Softmax
// scale 1/sqrt(head_dim); fp32 accumulation. CPU references:
// cpu::dense_attention and cpu::sparse_attention.
//
// Which rows of (sequence s, KV head h) are attended:
//  - dense or gathered: rows 0 .. length-1 of k/v;
//  - indexed: rows indices[(s*kv_heads + h)*index_stride + i], i < length,
//    read in place from the cache (the Double Sparsity path with K/V on the GPU);
// where length = lengths[s*length_stride_sequence + h*length_stride_head], so
// one count per sequence (dense) or per head (a top-k selection) both fit.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"

namespace dso::gpu {

struct DecodeAttentionPlan {
  int sequences = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  std::int64_t max_tokens = 0;  // bound on every length
  int chunk_tokens = 0;
  int chunks = 0;               // per (sequence, KV head)
  std::size_t workspace_bytes = 0;
};

bool decode_attention_supports(int q_heads, int kv_heads, int head_dim);

DecodeAttentionPlan plan_decode_attention(int sequences, int q_heads, int kv_heads, int head_dim,
                                          std::int64_t max_tokens);

struct DecodeAttentionArgs {
  DType dtype = DType::f16;
  const void* q = nullptr;                 // [sequences][q_heads][head_dim], device
  ConstRows k;                             // (sequence, kv_head, row), head_dim wide
  ConstRows v;
  const std::int32_t* lengths = nullptr;   // device; see above
  std::int64_t length_stride_sequence = 1;
  std::int64_t length_stride_head = 0;
  const std::int32_t* indices = nullptr;   // optional, device: [sequences][kv_heads][index_stride]
  std::int64_t index_stride = 0;
  void* out = nullptr;                     // [sequences][q_heads][head_dim] in dtype, or null
  float* out_f32 = nullptr;                // [sequences][q_heads][head_dim] in fp32, or null
  void* workspace = nullptr;               // plan.workspace_bytes, device
  std::size_t workspace_bytes = 0;
};

void decode_attention(const DecodeAttentionPlan& plan, const DecodeAttentionArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
