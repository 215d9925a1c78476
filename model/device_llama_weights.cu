#include "model/device_llama_weights.h"

#include <algorithm>

#include "core/dtype.h"
#include "gpu/dispatch.h"
#include "gpu/model_check.h"
#include "gpu/model_ops.cuh"

namespace dso {

namespace {


template <class D>
__global__ void __launch_bounds__(gpu::kernels::kBlock) fill_dummy_kernel(D* out, std::int64_t n, DummyRecipe recipe) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = gpu::kernels::store<D>(dummy_value(recipe, i));
}

// Writes tensor (kind, layer) of `source` at dst: made in place when the
// source has a recipe for it, else read on the host, rounded and copied.
template <class W>
void put(const WeightSource& source, WeightKind kind, int layer, W* dst, cudaStream_t stream) {
  const std::int64_t n = weight_shape(source.config(), kind).size();
  if (const std::optional<DummyRecipe> recipe = source.recipe(kind, layer)) {
    using D = gpu::device_t<W>;
    const auto blocks = unsigned(std::min<std::int64_t>((n + gpu::kernels::kBlock - 1) / gpu::kernels::kBlock, 65536));
    fill_dummy_kernel<<<blocks, gpu::kernels::kBlock, 0, stream>>>(reinterpret_cast<D*>(dst), n, *recipe);
    DSO_LAUNCH_CHECK(cudaGetLastError(), stream);
    return;
  }
  std::vector<float> values(static_cast<std::size_t>(n));
  source.read(kind, layer, values);
  std::vector<W> rounded(values.size());
  std::transform(values.begin(), values.end(), rounded.begin(), [](float x) { return from_float<W>(x); });
  // Synchronous: `rounded` goes out of scope on return.
  DSO_CUDA_CHECK(cudaMemcpyAsync(dst, rounded.data(), sizeof(W) * rounded.size(), cudaMemcpyHostToDevice, stream));
  DSO_CUDA_CHECK(cudaStreamSynchronize(stream));
}

template <class W>
gpu::DeviceArray<W> make(const WeightSource& source, WeightKind kind, int layer, cudaStream_t stream) {
  gpu::DeviceArray<W> a(std::size_t(weight_shape(source.config(), kind).size()));
  put(source, kind, layer, a.data(), stream);
  return a;
}

}  // namespace

template <class W>
DeviceLlamaWeights<W>::DeviceLlamaWeights(const WeightSource& source, cudaStream_t stream)
    : tied_(source.tied_lm_head()) {
  const LlamaConfig& c = source.config();
  token_embedding_ = make<W>(source, WeightKind::token_embedding, 0, stream);
  final_norm_ = make<W>(source, WeightKind::final_norm, 0, stream);
  if (!tied_) lm_head_ = make<W>(source, WeightKind::lm_head, 0, stream);
  layers_.resize(std::size_t(c.layers));
  for (int l = 0; l < c.layers; ++l) {
    DeviceLayerWeights<W>& lw = layers_[std::size_t(l)];
    lw.attn_norm = make<W>(source, WeightKind::attn_norm, l, stream);
    lw.wq = make<W>(source, WeightKind::wq, l, stream);
    lw.wk = make<W>(source, WeightKind::wk, l, stream);
    lw.wv = make<W>(source, WeightKind::wv, l, stream);
    lw.wo = make<W>(source, WeightKind::wo, l, stream);
    lw.ffn_norm = make<W>(source, WeightKind::ffn_norm, l, stream);
    const std::int64_t gate = weight_shape(c, WeightKind::w_gate).size();
    lw.w_gate_up = gpu::DeviceArray<W>(std::size_t(2 * gate));
    put(source, WeightKind::w_gate, l, lw.w_gate_up.data(), stream);
    put(source, WeightKind::w_up, l, lw.w_gate_up.data() + gate, stream);
    lw.w_down = make<W>(source, WeightKind::w_down, l, stream);
  }
  DSO_CUDA_CHECK(cudaStreamSynchronize(stream));
}

template class DeviceLlamaWeights<Half>;
template class DeviceLlamaWeights<BFloat16>;

}  // namespace dso
