#pragma once
// The cuda engine's bookkeeping kernels. Cache lengths, selection counts and
// the window of newest tokens are kept and advanced on the device, so a
// decode step copies nothing from the host to the device but what it fetches.
// Elements are 16-bit (f16 or bf16 bit patterns), moved as they are.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "gpu/rows.h"

namespace dso {

// lengths[s] += count for s < sequences.
void advance_lengths(std::int32_t* lengths, int sequences, int count, cudaStream_t stream);

// The step's token joins each (sequence, KV head)'s selection: its position,
// lengths[s] (the tokens cached before it), goes after the selected ones.
struct CurrentTokenArgs {
  std::int32_t* indices = nullptr;  // [sequences][kv_heads][index_stride]
  std::int64_t index_stride = 0;
  std::int32_t* counts = nullptr;   // [sequences][kv_heads], incremented
  const std::int32_t* lengths = nullptr;
  int sequences = 0;
  int kv_heads = 0;
};

void append_current_token(const CurrentTokenArgs& args, cudaStream_t stream);

// The newest tokens of every (sequence, layer, KV head), kept on the GPU in a
// ring of `size` rows: position p lives in row p mod size.
struct WindowRing {
  gpu::Rows keys;  // (sequence, kv_head, row), head_dim wide
  gpu::Rows values;
  std::int64_t size = 0;
};

// Writes `count` new tokens per sequence at positions[s], positions[s] + 1,
// ...; only the newest `size` of them can stay.
struct RingAppendArgs {
  int head_dim = 0;
  gpu::ConstRows keys;  // (sequence, kv_head, i): the i-th new token
  gpu::ConstRows values;
  int sequences = 0;
  int kv_heads = 0;
  int count = 0;
  const std::int32_t* positions = nullptr;  // [sequences]
  WindowRing ring;
};

void append_to_ring(const RingAppendArgs& args, cudaStream_t stream);

// Completes a fetch slot after the step's token is appended: copies the
// window positions [window_start(n), n] from the ring behind each head's
// fetched rows and sets the rows attention reads, where n + 1 = lengths[s].
struct WindowAssemblyArgs {
  int head_dim = 0;
  int sequences = 0;
  int kv_heads = 0;
  WindowRing ring;
  const std::int32_t* lengths = nullptr;  // [sequences], the step's token included
  std::int64_t sink = 0;
  std::int64_t recent = 0;
  const std::int32_t* fetched = nullptr;  // [sequences][kv_heads]: rows already in the slot
  gpu::Rows slot_keys;                    // (sequence, kv_head, row)
  gpu::Rows slot_values;
  std::int32_t* attended = nullptr;       // [sequences][kv_heads], written
};

void assemble_window(const WindowAssemblyArgs& args, cudaStream_t stream);

}  // namespace dso
