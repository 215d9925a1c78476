#pragma once
// The newest tokens of every (sequence, layer, KV head), kept on the GPU in a
// ring of `size` rows for the host-resident sparse policies: position p lives
// in row p mod size. append_to_ring writes `count` new tokens per sequence at
// positions[s], positions[s] + 1, ...; only the newest `size` of them can
// stay, and rows of older positions are left as they were. Rows are copied as
// they are, in the cache's storage dtype. CPU reference: cpu/window_ring.h.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"

namespace dso::gpu {

struct WindowRing {
  Rows keys;  // (sequence, kv_head, row), head_dim wide
  Rows values;
  std::int64_t size = 0;
};

struct RingAppendArgs {
  DType dtype = DType::f16;
  int head_dim = 0;
  ConstRows keys;  // (sequence, kv_head, i): the i-th new token
  ConstRows values;
  int sequences = 0;
  int kv_heads = 0;
  int count = 0;
  const std::int32_t* positions = nullptr;  // [sequences], device
  WindowRing ring;
};

void append_to_ring(const RingAppendArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
