#pragma once
// K/V append: a step's new keys and values written into the cache rows at
// each sequence's position. The cache may be the pinned head-major host cache
// (the kernel's stores then cross PCIe directly, zero-copy) or GPU memory.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"

namespace dso::gpu {

struct KVAppendArgs {
  DType dtype = DType::f16;
  int head_dim = 0;
  ConstRows k_new;  // (sequence, kv_head, i): the i-th new token, head_dim wide
  ConstRows v_new;
  NewTokens tokens;
  Rows k_cache;     // (sequence, kv_head, position)
  Rows v_cache;
  std::int64_t capacity = 0;  // positions per (sequence, kv_head); appends past it are dropped
};

void append_kv(const KVAppendArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
