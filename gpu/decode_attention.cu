#include "gpu/decode_attention.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/decode_attention.cuh"
#include "gpu/dispatch.h"
#include "gpu/memory.h"
#include "gpu/row_alignment.h"

namespace dso::gpu {

namespace {

// Chunks are whole rounds of the widest block step (4 warps x 4 rows x 8 unrolled).
constexpr int kChunkGranule = 128;
// Long enough that a block's fixed costs (query, merge, partial write) stay small
// next to its rows: sparse steps of 16K rows per head ran 6 us faster with 1024 than 256.
constexpr int kMinChunkTokens = 1024;
// Blocks per multiprocessor to aim for: many short chunks keep the last wave small.
constexpr int kBlocksPerMultiprocessor = 32;

std::size_t partial_acc_bytes(const DecodeAttentionPlan& p) {
  return std::size_t(p.sequences) * p.q_heads * p.chunks * p.head_dim * sizeof(float);
}

}  // namespace

bool decode_attention_supports(int q_heads, int kv_heads, int head_dim) {
  return kv_heads > 0 && q_heads > 0 && q_heads % kv_heads == 0 && group_supported(q_heads / kv_heads) &&
         head_dim_supported(head_dim);
}

DecodeAttentionPlan plan_decode_attention(int sequences, int q_heads, int kv_heads, int head_dim,
                                          std::int64_t max_tokens) {
  require(sequences >= 0 && max_tokens >= 0, "decode attention plan: negative sizes (sequences=", sequences,
          " max_tokens=", max_tokens, ")");
  require(decode_attention_supports(q_heads, kv_heads, head_dim), "decode attention: q_heads=", q_heads,
          " kv_heads=", kv_heads, " head_dim=", head_dim,
          " is not supported (head_dim 64 or 128, 1 to 8 query heads per KV head)");
  require(sequences <= 65535 && kv_heads <= 65535, "decode attention: at most 65535 sequences and KV heads");
  DecodeAttentionPlan plan;
  plan.sequences = sequences;
  plan.q_heads = q_heads;
  plan.kv_heads = kv_heads;
  plan.head_dim = head_dim;
  plan.max_tokens = max_tokens;
  const std::int64_t heads = std::max<std::int64_t>(1, std::int64_t(sequences) * kv_heads);
  const std::int64_t wanted =
      std::max<std::int64_t>(1, kBlocksPerMultiprocessor * std::int64_t(multiprocessor_count()) / heads);
  const std::int64_t per_chunk = (max_tokens + wanted - 1) / wanted;
  const std::int64_t chunk =
      std::max<std::int64_t>(kMinChunkTokens, (per_chunk + kChunkGranule - 1) / kChunkGranule * kChunkGranule);
  require(chunk <= INT32_MAX, "decode attention: max_tokens=", max_tokens, " is too large");
  plan.chunk_tokens = int(chunk);
  plan.chunks = int(std::max<std::int64_t>(1, (max_tokens + chunk - 1) / chunk));
  plan.workspace_bytes = partial_acc_bytes(plan) + std::size_t(sequences) * q_heads * plan.chunks * sizeof(float2);
  return plan;
}

void decode_attention(const DecodeAttentionPlan& plan, const DecodeAttentionArgs& a, cudaStream_t stream) {
  require(a.workspace_bytes >= plan.workspace_bytes, "decode attention: workspace of ", a.workspace_bytes,
          " bytes is smaller than the plan's ", plan.workspace_bytes);
  require(a.length_stride_sequence >= 0 && a.length_stride_head >= 0,
          "decode attention: length strides must be non-negative");
  if (plan.sequences == 0) return;
  require(a.q && a.lengths && a.workspace, "decode attention: q, lengths and workspace must be device pointers");
  require(a.out || a.out_f32, "decode attention: no output given (out and out_f32 are both null)");
  require(reinterpret_cast<std::uintptr_t>(a.q) % 16 == 0, "decode attention: q must be 16-byte aligned");
  require_vector_rows(a.k, "decode attention K");
  require_vector_rows(a.v, "decode attention V");
  require(a.k.strides == a.v.strides, "decode attention: K and V must share their layout");
  require(!a.indices || a.index_stride >= plan.max_tokens, "decode attention: index_stride=", a.index_stride,
          " is below max_tokens=", plan.max_tokens);

  auto* ws = static_cast<unsigned char*>(a.workspace);
  const kernels::AttentionParams p{a.q,
                                   a.k.data,
                                   a.v.data,
                                   a.k.strides,
                                   a.lengths,
                                   a.length_stride_sequence,
                                   a.length_stride_head,
                                   a.indices,
                                   a.index_stride,
                                   plan.max_tokens,
                                   plan.q_heads,
                                   plan.kv_heads,
                                   plan.q_heads / plan.kv_heads,
                                   plan.chunk_tokens,
                                   plan.chunks,
                                   float(1.0 / std::sqrt(double(plan.head_dim)) * M_LOG2E),
                                   reinterpret_cast<float*>(ws),
                                   reinterpret_cast<float2*>(ws + partial_acc_bytes(plan)),
                                   a.out,
                                   a.out_f32};
  dispatch_storage(a.dtype, [&](auto storage) {
    dispatch_head_dim(plan.head_dim, [&](auto d) {
      dispatch_group(p.group, [&](auto g) {
        using T = decltype(storage);
        constexpr int D = decltype(d)::value, G = decltype(g)::value;
        DSO_CUDA_CHECK((a.indices ? kernels::launch_decode_attention<T, D, G, true>(p, plan.sequences, stream)
                                  : kernels::launch_decode_attention<T, D, G, false>(p, plan.sequences, stream)));
      });
    });
  });
}

}  // namespace dso::gpu
