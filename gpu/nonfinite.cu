#include "gpu/nonfinite.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/model_check.h"

namespace dso::gpu {

namespace {

constexpr int kThreads = 256;
// A grid-stride loop over at most this many blocks: a vocabulary of logits is
// read in one wave, and the atomics stay few.
constexpr std::int64_t kMaxBlocks = 256;

__global__ void count_nonfinite_kernel(const float* x, std::int64_t n, unsigned long long* count) {
  unsigned int local = 0;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    local += isfinite(x[i]) ? 0u : 1u;
  for (int offset = 16; offset > 0; offset /= 2) local += __shfl_down_sync(0xffffffffu, local, offset);
  // Finite outputs, the usual case, add nothing: no atomic at all.
  if ((threadIdx.x & 31) == 0 && local != 0) atomicAdd(count, static_cast<unsigned long long>(local));
}

}  // namespace

void count_nonfinite(const float* x, std::int64_t n, unsigned long long* count, cudaStream_t stream) {
  require(n >= 0, "count_nonfinite: ", n, " values");
  if (n == 0) return;
  const auto blocks = static_cast<unsigned>(std::min(kMaxBlocks, (n + kThreads - 1) / kThreads));
  count_nonfinite_kernel<<<blocks, kThreads, 0, stream>>>(x, n, count);
  DSO_LAUNCH_CHECK(cudaGetLastError(), stream);
}

}  // namespace dso::gpu
