#include "offload/cuda_step_kernels.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/check.h"
#include "prefetch/window_rule.h"

namespace dso {

namespace {

using Element = std::uint16_t;
constexpr int kThreads = 256;
constexpr std::int64_t kMaxBlocks = 1024;

unsigned blocks_for(std::int64_t work) {
  return unsigned(std::clamp<std::int64_t>((work + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

__global__ void advance_lengths_kernel(std::int32_t* lengths, int sequences, int count) {
  for (int s = blockIdx.x * blockDim.x + threadIdx.x; s < sequences; s += gridDim.x * blockDim.x)
    lengths[s] += count;
}

__global__ void current_token_kernel(CurrentTokenArgs a) {
  const int heads = a.sequences * a.kv_heads;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < heads; i += gridDim.x * blockDim.x) {
    const std::int32_t count = a.counts[i];
    a.indices[std::int64_t(i) * a.index_stride + count] = a.lengths[i / a.kv_heads];
    a.counts[i] = count + 1;
  }
}

// One thread per element of a kept token's K or V row.
__global__ void ring_append_kernel(RingAppendArgs a) {
  const int kept = int(a.count < a.ring.size ? a.count : a.ring.size);
  const int first = a.count - kept;
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * kept * 2 * a.head_dim;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i % a.head_dim);
    std::int64_t rest = i / a.head_dim;
    const bool value = rest % 2;
    rest /= 2;
    const int t = first + int(rest % kept);
    rest /= kept;
    const int h = int(rest % a.kv_heads);
    const int s = int(rest / a.kv_heads);
    const std::int64_t row = (std::int64_t(a.positions[s]) + t) % a.ring.size;
    const gpu::ConstRows& src = value ? a.values : a.keys;
    const gpu::Rows& dst = value ? a.ring.values : a.ring.keys;
    static_cast<Element*>(dst.data)[dst.strides.offset(s, h, row) + c] =
        static_cast<const Element*>(src.data)[src.strides.offset(s, h, t) + c];
  }
}

__global__ void assemble_window_kernel(WindowAssemblyArgs a) {
  const std::int64_t size = a.ring.size;
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * size * 2 * a.head_dim;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i % a.head_dim);
    std::int64_t rest = i / a.head_dim;
    const bool value = rest % 2;
    rest /= 2;
    const std::int64_t j = rest % size;
    rest /= size;
    const int h = int(rest % a.kv_heads);
    const int s = int(rest / a.kv_heads);
    const std::int64_t n = std::int64_t(a.lengths[s]) - 1;  // tokens before the step's
    const std::int64_t begin = window_start(n, a.sink, a.recent);
    const std::int64_t head = std::int64_t(s) * a.kv_heads + h;
    const std::int64_t fetched = a.fetched[head];
    if (j == 0 && c == 0 && !value) a.attended[head] = std::int32_t(fetched + n + 1 - begin);
    const std::int64_t position = begin + j;
    if (position > n) continue;
    const gpu::Rows& src = value ? a.ring.values : a.ring.keys;
    const gpu::Rows& dst = value ? a.slot_values : a.slot_keys;
    static_cast<Element*>(dst.data)[dst.strides.offset(s, h, fetched + j) + c] =
        static_cast<const Element*>(src.data)[src.strides.offset(s, h, position % size) + c];
  }
}

}  // namespace

void advance_lengths(std::int32_t* lengths, int sequences, int count, cudaStream_t stream) {
  if (sequences == 0 || count == 0) return;
  advance_lengths_kernel<<<blocks_for(sequences), kThreads, 0, stream>>>(lengths, sequences, count);
  DSO_CUDA_CHECK(gpu::launch_status(stream));
}

void append_current_token(const CurrentTokenArgs& a, cudaStream_t stream) {
  const int heads = a.sequences * a.kv_heads;
  if (heads == 0) return;
  current_token_kernel<<<blocks_for(heads), kThreads, 0, stream>>>(a);
  DSO_CUDA_CHECK(gpu::launch_status(stream));
}

void append_to_ring(const RingAppendArgs& a, cudaStream_t stream) {
  require(a.ring.size > 0, "window ring: size must be positive");
  const std::int64_t kept = std::min<std::int64_t>(a.count, a.ring.size);
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * kept * 2 * a.head_dim;
  if (total == 0) return;
  ring_append_kernel<<<blocks_for(total), kThreads, 0, stream>>>(a);
  DSO_CUDA_CHECK(gpu::launch_status(stream));
}

void assemble_window(const WindowAssemblyArgs& a, cudaStream_t stream) {
  const std::int64_t total = std::int64_t(a.sequences) * a.kv_heads * a.ring.size * 2 * a.head_dim;
  if (total == 0) return;
  assemble_window_kernel<<<blocks_for(total), kThreads, 0, stream>>>(a);
  DSO_CUDA_CHECK(gpu::launch_status(stream));
}

}  // namespace dso
