#pragma once
// Cache lengths kept on the device and advanced by a kernel, so that a step
// (or a captured graph of one) needs no host-to-device copy to move them:
// lengths[s] += count for every s < sequences. CPU reference: cpu/step_counts.h.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dso::gpu {

struct AdvanceLengthsArgs {
  std::int32_t* lengths = nullptr;  // [sequences], device
  int sequences = 0;
  int count = 0;
};

void advance_lengths(const AdvanceLengthsArgs& args, cudaStream_t stream);

}  // namespace dso::gpu
