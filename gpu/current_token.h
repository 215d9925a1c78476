#pragma once
// The step's own token joins every (sequence, KV head)'s selection: its
// position, lengths[s] (the tokens cached before it), is written after the
// counts[i] selected ones and counts[i] grows by one, all on the device.
// Selections are ascending and the step's token is the newest, so the result
// stays ascending. CPU reference: cpu/step_counts.h.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dso::gpu {

struct CurrentTokenArgs {
  std::int32_t* indices = nullptr;  // [sequences][kv_heads][index_stride], room for counts[i] + 1
  std::int64_t index_stride = 0;
  std::int32_t* counts = nullptr;         // [sequences][kv_heads], incremented
  const std::int32_t* lengths = nullptr;  // [sequences]
  int sequences = 0;
  int kv_heads = 0;
};

void append_current_token(const CurrentTokenArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
