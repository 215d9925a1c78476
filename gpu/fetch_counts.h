#pragma once
// How many of a selection's tokens come from the host cache: each (sequence,
// KV head)'s selection less its recent window (core/recent_window.h),
// computed on the device from the top-k counts and the cached lengths so that
// no count crosses to the host. CPU reference: cpu/step_counts.h.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dso::gpu {

struct FetchCountArgs {
  const std::int32_t* selected = nullptr;  // [sequences][kv_heads]: selection sizes from the top-k
  const std::int32_t* lengths = nullptr;   // [sequences]: tokens cached when the selection ran
  std::int32_t* fetched = nullptr;         // [sequences][kv_heads], written
  int sequences = 0;
  int kv_heads = 0;
  std::int64_t sink = 0;
  std::int64_t recent = 0;
};

void count_fetched(const FetchCountArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
