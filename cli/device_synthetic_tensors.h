#pragma once
// SyntheticTensors made on the GPU, element for element the same: the cuda
// benchmark fills a cache of tens of GiB from device buffers in big chunks
// without generating a byte on the host.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cli/synthetic_tensors.h"
#include "gpu/memory.h"

namespace dso::cli {

class DeviceSyntheticTensors {
 public:
  explicit DeviceSyntheticTensors(const SyntheticTensors& host);

  // As SyntheticTensors::cached and ::step, into device memory, ordered on `stream`.
  void cached(TensorKind kind, int sequence, int layer, std::int64_t begin, std::int64_t count, void* out,
              cudaStream_t stream) const;
  void step(TensorKind kind, std::int64_t step, int layer, int batch, void* out, cudaStream_t stream) const;

 private:
  void fill(TensorKind kind, std::uint64_t a, int layer, std::int64_t rows, std::int64_t first_row, int heads,
            int group, void* out, cudaStream_t stream) const;

  AttentionShape shape_;
  DType dtype_;
  std::uint64_t seed_;
  gpu::DeviceBuffer outliers_;  // [layer][kv_head][head_dim] bytes
};

}  // namespace dso::cli
