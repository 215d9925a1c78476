#pragma once
// SparQ-style selection (Selector::sparq) on the GPU. Per step and (sequence,
// KV head), sparq_channels picks the r channels of largest sum over the group
// of |q_h[c]| -- the same sums, order and ties as cpu::sparq_channels -- and
// writes the query with every other channel zeroed. Scoring the cached tokens
// is then score_labels over the full key rows (labels = keys, channels null,
// r = head_dim) with that masked query: the zeroed channels add exact zeros,
// so each score is the group's sum over the chosen channels, and the top-k's
// candidates are listed on the way as for label scores. Reading whole rows
// costs about what gathering the chosen channels would: at r >= d/16 they
// fall in most of a row's 32-byte sectors.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace dso::gpu {

struct SparqChannelArgs {
  DType dtype = DType::f16;
  int sequences = 0;
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;                  // at most 128
  int r = 0;                         // channels chosen per (sequence, KV head), in [1, head_dim]
  const void* q = nullptr;           // [sequences][q_heads][head_dim], device
  std::int32_t* channels = nullptr;  // [sequences][kv_heads][r], device: by descending sum, lower channel first on ties
  void* masked_q = nullptr;          // [sequences][q_heads][head_dim], device: q at the chosen channels, +0 elsewhere
};

void sparq_channels(const SparqChannelArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
