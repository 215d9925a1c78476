#include "offload/cuda_layer_fetcher.h"

#include "gpu/check.h"

namespace dso {

namespace {

SlotShape dense(SlotShape shape) {
  shape.sparse = false;
  return shape;
}

}  // namespace

std::int64_t LayerFetcher::device_bytes(const SlotShape& shape) { return 2 * FetchSlot::device_bytes(dense(shape)); }

LayerFetcher::LayerFetcher(const SlotShape& shape, PhaseEvents& clock)
    : clock_(clock), slots_{FetchSlot(dense(shape)), FetchSlot(dense(shape))} {}

LayerFetcher::~LayerFetcher() {
  // The side stream may still be filling a slot whose memory goes next.
  cudaStreamSynchronize(side_.get());
}

FetchSlot& LayerFetcher::acquire(int layer, std::span<const std::int64_t> lengths, const CudaCache& cache,
                                 cudaStream_t compute) {
  int slot = 1 - current_;
  if (slots_[std::size_t(current_)].holds(layer, lengths)) slot = current_;
  if (!slots_[std::size_t(slot)].holds(layer, lengths)) fetch(slot, layer, lengths, cache, compute);
  DSO_CUDA_CHECK(cudaStreamWaitEvent(compute, slots_[std::size_t(slot)].ready().get(), 0));
  current_ = slot;
  return slots_[std::size_t(slot)];
}

void LayerFetcher::prefetch(int layer, std::span<const std::int64_t> lengths, const CudaCache& cache,
                            cudaStream_t compute) {
  fetch(1 - current_, layer, lengths, cache, compute);
}

void LayerFetcher::fetch(int slot_index, int layer, std::span<const std::int64_t> lengths, const CudaCache& cache,
                         cudaStream_t compute) {
  FetchSlot& slot = slots_[std::size_t(slot_index)];
  const SlotShape& s = slot.shape();
  const std::int64_t row_bytes = std::int64_t(s.head_dim) * dtype_size(s.dtype);
  // After the appends queued so far (the host rows copied) and the last
  // attention that read this slot.
  queued_.record(compute);
  DSO_CUDA_CHECK(cudaStreamWaitEvent(side_.get(), queued_.get(), 0));
  const int timer = clock_.begin(Phase::fetch, side_.get());
  for (int seq = 0; seq < s.sequences; ++seq)
    for (int h = 0; h < s.kv_heads; ++h) {
      const std::size_t bytes = std::size_t(lengths[std::size_t(seq)] * row_bytes);
      if (bytes == 0) continue;
      const std::int64_t offset = s.rows * row_bytes * (std::int64_t(seq) * s.kv_heads + h);
      DSO_CUDA_CHECK(cudaMemcpyAsync(static_cast<std::byte*>(slot.keys().data) + offset,
                                     cache.host_keys(seq, layer, h), bytes, cudaMemcpyHostToDevice, side_.get()));
      DSO_CUDA_CHECK(cudaMemcpyAsync(static_cast<std::byte*>(slot.values().data) + offset,
                                     cache.host_values(seq, layer, h), bytes, cudaMemcpyHostToDevice, side_.get()));
    }
  clock_.end(timer, side_.get());
  slot.ready().record(side_.get());
  slot.tag(layer, lengths);
}

}  // namespace dso
