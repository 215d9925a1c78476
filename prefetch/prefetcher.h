#pragma once
// The double-buffered prefetcher of ds_offload: two fetch slots, a selection
// stream, a fetch stream and events. While layer i computes, issue(i + 1,
// q_hat) scores layer i+1's labels with the speculative query and selects its
// top-k tokens on the selection stream, then gathers them from the pinned host
// cache into slot (i+1) mod 2 on the fetch stream. With its own stream the
// selection can run while layer i's gather still holds the PCIe link. Layer
// i+1 then waits for its slot's event alone (acquire), never for the device.
// A slot is refilled only after the attention that read it (release), so two
// layers' fetches and computes overlap without sharing a buffer. Layers that
// select with their true query go through issue too, and their compute waits
// for the fill at once.
#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <span>

#include "gpu/memory.h"
#include "prefetch/fetch_slot.h"
#include "prefetch/phase_events.h"
#include "prefetch/sparse_fetch.h"

namespace dso {

class Prefetcher {
 public:
  // slot.sparse must be set; slot.rows covers the largest selection plus the window.
  Prefetcher(const SelectionShape& selection, const SlotShape& slot, PhaseEvents& clock);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  static std::int64_t device_bytes(const SelectionShape& selection, const SlotShape& slot);

  // Queues the fetch of `layer`'s tokens, selected with q (device,
  // [sequences][q_heads][head_dim]), on the side streams, after everything
  // queued on `compute` so far. q is copied first, so the caller may reuse
  // its buffer for work queued on `compute` later. lengths: the host's
  // count of the tokens each sequence has cached at `layer` (the tag).
  void issue(int layer, const LayerSource& source, const void* q, std::span<const TokenBudget> budgets,
             std::int64_t max_fetched, std::span<const std::int64_t> lengths, cudaStream_t compute);

  // Whether the slot of `layer` holds its tokens for these cache lengths.
  bool holds(int layer, std::span<const std::int64_t> lengths) const;
  // The slot of `layer`, with `compute` made to wait for its fill.
  FetchSlot& acquire(int layer, cudaStream_t compute);
  // After the work on `compute` that reads the slot of `layer`.
  void release(int layer, cudaStream_t compute);

 private:
  FetchSlot& slot_of(int layer) { return slots_[std::size_t(layer % 2)]; }

  PhaseEvents& clock_;
  std::array<FetchSlot, 2> slots_;
  std::array<gpu::DeviceBuffer, 2> queries_;  // the speculative query each slot was selected with
  SparseFetch fetch_;
  gpu::Stream select_stream_;
  gpu::Stream fetch_stream_;
  gpu::Event inputs_queued_;  // on the compute stream, at the time of an issue
  gpu::Event selected_;       // on the selection stream, after an issue's selection
};

}  // namespace dso
