#include "prefetch/prefetcher.h"

#include "core/checked_math.h"
#include "gpu/check.h"

namespace dso {

namespace {

std::int64_t query_bytes(const SelectionShape& s) {
  return checked_product("the speculative query buffer", s.sequences, s.q_heads, s.head_dim, dtype_size(s.dtype));
}

}  // namespace

std::int64_t Prefetcher::device_bytes(const SelectionShape& selection, const SlotShape& slot) {
  std::int64_t total = checked_product("the prefetch buffers", 2, FetchSlot::device_bytes(slot));
  total = checked_sum("the prefetch buffers", total, 2 * query_bytes(selection));
  return checked_sum("the prefetch buffers", total, SparseFetch::device_bytes(selection));
}

Prefetcher::Prefetcher(const SelectionShape& selection, const SlotShape& slot, PhaseEvents& clock)
    : clock_(clock),
      slots_{FetchSlot(slot), FetchSlot(slot)},
      queries_{gpu::DeviceBuffer(std::size_t(query_bytes(selection))),
               gpu::DeviceBuffer(std::size_t(query_bytes(selection)))},
      fetch_(selection) {}

Prefetcher::~Prefetcher() {
  // The side streams may still be filling a slot whose memory goes next.
  cudaStreamSynchronize(select_stream_.get());
  cudaStreamSynchronize(fetch_stream_.get());
}

void Prefetcher::issue(int layer, const LayerSource& source, const void* q, std::span<const TokenBudget> budgets,
                       std::int64_t max_fetched, std::span<const std::int64_t> lengths, cudaStream_t compute) {
  FetchSlot& slot = slot_of(layer);
  const gpu::DeviceBuffer& query = queries_[std::size_t(layer % 2)];
  // The slot's last fill read this query buffer; normally long done.
  DSO_CUDA_CHECK(cudaStreamWaitEvent(compute, slot.ready().get(), 0));
  DSO_CUDA_CHECK(cudaMemcpyAsync(query.data(), q, query.bytes(), cudaMemcpyDeviceToDevice, compute));
  inputs_queued_.record(compute);
  // The selection starts after the query copy and every label and length
  // update queued before it, and once the slot's previous readers are done;
  // the gather follows the selection and the previous layer's gather.
  DSO_CUDA_CHECK(cudaStreamWaitEvent(select_stream_.get(), inputs_queued_.get(), 0));
  DSO_CUDA_CHECK(cudaStreamWaitEvent(select_stream_.get(), slot.released().get(), 0));
  fetch_.select(slot, source, query.data(), budgets, select_stream_.get(), clock_);
  selected_.record(select_stream_.get());
  DSO_CUDA_CHECK(cudaStreamWaitEvent(fetch_stream_.get(), selected_.get(), 0));
  fetch_.gather(slot, source, max_fetched, fetch_stream_.get(), clock_);
  slot.ready().record(fetch_stream_.get());
  slot.tag(layer, lengths);
}

bool Prefetcher::holds(int layer, std::span<const std::int64_t> lengths) const {
  return slots_[std::size_t(layer % 2)].holds(layer, lengths);
}

FetchSlot& Prefetcher::acquire(int layer, cudaStream_t compute) {
  FetchSlot& slot = slot_of(layer);
  DSO_CUDA_CHECK(cudaStreamWaitEvent(compute, slot.ready().get(), 0));
  return slot;
}

void Prefetcher::release(int layer, cudaStream_t compute) { slot_of(layer).released().record(compute); }

}  // namespace dso
