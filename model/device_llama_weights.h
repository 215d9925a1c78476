#pragma once
// A whole model's weights in GPU memory, as the GPU decoder reads them: W is
// Half or BFloat16, HF layout, each tensor [rows][cols]. The gate and up
// projections are stacked into one [2 * ffn_hidden][hidden] matrix, so one
// product feeds gpu::swiglu's fused form. Real weights are read and rounded on
// the host one tensor at a time; dummy weights are made on the device.
#include <cuda_runtime_api.h>

#include <vector>

#include "gpu/device_array.h"
#include "model/weight_source.h"

namespace dso {

template <class W>
struct DeviceLayerWeights {
  gpu::DeviceArray<W> attn_norm, wq, wk, wv, wo, ffn_norm, w_gate_up, w_down;
};

template <class W>
class DeviceLlamaWeights {
 public:
  // Work runs on `stream`, which is synchronised before this returns.
  DeviceLlamaWeights(const WeightSource& source, cudaStream_t stream);

  const W* token_embedding() const { return token_embedding_.data(); }
  const W* final_norm() const { return final_norm_.data(); }
  const W* output_head() const { return tied_ ? token_embedding_.data() : lm_head_.data(); }
  const DeviceLayerWeights<W>& layer(int l) const { return layers_[std::size_t(l)]; }

 private:
  bool tied_;
  gpu::DeviceArray<W> token_embedding_, final_norm_, lm_head_;
  std::vector<DeviceLayerWeights<W>> layers_;
};

}  // namespace dso
