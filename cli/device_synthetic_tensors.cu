#include "cli/device_synthetic_tensors.h"

#include <algorithm>
#include <vector>

#include "cli/synthetic_hash.h"
#include "gpu/check.h"
#include "gpu/dispatch.h"
#include "gpu/vec.cuh"

namespace dso::cli {

namespace {

struct FillParams {
  std::uint64_t tensor;
  int layer;
  std::int64_t rows, first_row;
  int heads, group, head_dim, kv_heads;
  const std::uint8_t* outliers;  // null: nothing planted
};

template <class T>
__global__ void synthetic_fill_kernel(FillParams p, T* out) {
  const std::int64_t total = p.rows * p.heads * p.head_dim;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i % p.head_dim);
    const int h = int(i / p.head_dim % p.heads);
    const std::int64_t r = i / p.head_dim / p.heads;
    const bool outlier =
        p.outliers && p.outliers[(std::int64_t(p.layer) * p.kv_heads + h / p.group) * p.head_dim + c];
    const float x = synthetic_element(synthetic_row_key(p.tensor, p.layer, p.first_row + r), h, p.head_dim, c, outlier);
    out[i] = gpu::from_f32<T>(x);
  }
}

}  // namespace

DeviceSyntheticTensors::DeviceSyntheticTensors(const SyntheticTensors& host)
    : shape_(host.shape()), dtype_(host.dtype()), seed_(host.seed()) {
  const std::vector<std::uint8_t> mask = host.outlier_mask();
  outliers_ = gpu::DeviceBuffer(mask.size());
  DSO_CUDA_CHECK(cudaMemcpy(outliers_.data(), mask.data(), mask.size(), cudaMemcpyHostToDevice));
  // The copy ran on the legacy default stream, which the fill's non-blocking
  // stream does not wait for, and may return before it lands.
  DSO_CUDA_CHECK(cudaDeviceSynchronize());
}

void DeviceSyntheticTensors::fill(TensorKind kind, std::uint64_t a, int layer, std::int64_t rows,
                                  std::int64_t first_row, int heads, int group, void* out, cudaStream_t stream) const {
  const bool plant = kind != TensorKind::value && kind != TensorKind::new_value;
  const FillParams p{synthetic_tensor_key(seed_, std::uint64_t(kind), a),
                     layer,
                     rows,
                     first_row,
                     heads,
                     group,
                     shape_.head_dim,
                     shape_.kv_heads,
                     plant ? outliers_.as<std::uint8_t>() : nullptr};
  const std::int64_t total = rows * heads * shape_.head_dim;
  if (total == 0) return;
  constexpr int threads = 256;
  const auto blocks = unsigned(std::min<std::int64_t>((total + threads - 1) / threads, 8192));
  gpu::dispatch_storage(dtype_, [&](auto storage) {
    using T = decltype(storage);
    synthetic_fill_kernel<T><<<blocks, threads, 0, stream>>>(p, static_cast<T*>(out));
    DSO_CUDA_CHECK(gpu::launch_status(stream));
  });
}

void DeviceSyntheticTensors::cached(TensorKind kind, int sequence, int layer, std::int64_t begin, std::int64_t count,
                                    void* out, cudaStream_t stream) const {
  fill(kind, std::uint64_t(sequence), layer, count, begin, shape_.kv_heads, 1, out, stream);
}

void DeviceSyntheticTensors::step(TensorKind kind, std::int64_t step, int layer, int batch, void* out,
                                  cudaStream_t stream) const {
  const bool query = kind == TensorKind::query;
  fill(kind, std::uint64_t(step), layer, batch, 0, query ? shape_.q_heads : shape_.kv_heads,
       query ? shape_.group() : 1, out, stream);
}

}  // namespace dso::cli
