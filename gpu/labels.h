#pragma once
// GPU label cache append: the label of a token for KV head j is K_t[S_j], its
// r calibrated key channels, stored in a cache [kv_head][capacity][r] per
// sequence (and layer). The CPU reference is cpu::gather_labels.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"

namespace dso::gpu {

struct LabelAppendArgs {
  DType dtype = DType::f16;
  int head_dim = 0;
  int r = 0;
  ConstRows keys;                        // (sequence, kv_head, i): the i-th new token's key, head_dim wide
  NewTokens tokens;
  const std::int32_t* channels = nullptr;  // [kv_heads][r], device: the label channels S_j of this layer
  Rows labels;                           // (sequence, kv_head, position): r wide
  std::int64_t capacity = 0;             // positions per (sequence, kv_head); appends past it are dropped
};

void append_labels(const LabelAppendArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
