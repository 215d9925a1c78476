#pragma once
// Completes a fetch slot once the step's token is in the window ring: for
// each (sequence, KV head), with n + 1 = lengths[s] (the step's token
// included), copies positions [window_begin(n, sink, recent), n] from the ring
// to the rows behind the fetched[i] already in the slot, and writes attended[i],
// the rows attention then reads. The ring must hold recent + 1 rows, the most
// a window can span. CPU reference: cpu/window_ring.h.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"
#include "gpu/rows.h"
#include "gpu/window_ring.h"

namespace dso::gpu {

struct WindowAssemblyArgs {
  DType dtype = DType::f16;
  int head_dim = 0;
  int sequences = 0;
  int kv_heads = 0;
  WindowRing ring;
  const std::int32_t* lengths = nullptr;  // [sequences], the step's token included
  std::int64_t sink = 0;
  std::int64_t recent = 0;
  const std::int32_t* fetched = nullptr;  // [sequences][kv_heads]: rows already in the slot
  Rows slot_keys;                         // (sequence, kv_head, row)
  Rows slot_values;
  std::int32_t* attended = nullptr;  // [sequences][kv_heads], written
};

void assemble_window(const WindowAssemblyArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
