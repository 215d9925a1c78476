#pragma once
// Programmatic dependent launch (compute capability 9.0): a kernel started
// with launch_after_previous may begin while the kernel before it on the
// stream is still running, which hides the launch gap between short kernels.
// Such a kernel calls wait_for_previous_grids before it touches memory that
// the previous kernel writes (the wait returns once that grid has finished and
// its writes are visible); allow_next_grid lets the next kernel be scheduled
// early. On other devices, or when launched plainly, both are no-ops.
#include <cuda_runtime.h>

namespace dso::gpu {

__device__ __forceinline__ void wait_for_previous_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_next_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

template <class... Params, class... Args>
cudaError_t launch_after_previous(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                                  const Args&... args) {
  cudaLaunchAttribute overlap{};
  overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.stream = stream;
  config.attrs = &overlap;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, Params(args)...);
}

}  // namespace dso::gpu
