#include "gpu/advance_lengths.h"

#include "core/error.h"
#include "gpu/check.h"
#include "gpu/grid_stride.cuh"

namespace dso::gpu {

namespace {

__global__ void advance_lengths_kernel(AdvanceLengthsArgs a) {
  for (std::int64_t s = kernels::first_item(); s < a.sequences; s += kernels::item_stride()) a.lengths[s] += a.count;
}

}  // namespace

void advance_lengths(const AdvanceLengthsArgs& a, cudaStream_t stream) {
  require(a.sequences >= 0, "advance lengths: negative sequence count ", a.sequences);
  if (a.sequences == 0 || a.count == 0) return;
  require(a.lengths, "advance lengths: lengths must be a device pointer, got null");
  advance_lengths_kernel<<<kernels::grid_stride_blocks(a.sequences), kernels::kGridStrideThreads, 0, stream>>>(a);
  DSO_CUDA_CHECK(launch_status(stream));
}

}  // namespace dso::gpu
