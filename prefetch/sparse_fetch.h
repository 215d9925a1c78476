#pragma once
// The sparse fetch of one layer: select each (sequence, KV head)'s tokens
// with a query over the GPU label cache, then gather the selected tokens
// below the GPU window from the pinned host cache into a fetch slot with the
// zero-copy gather kernel, all ordered on one stream.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <span>

#include "core/shape.h"
#include "gpu/rows.h"
#include "prefetch/fetch_slot.h"
#include "prefetch/phase_events.h"
#include "prefetch/token_selection.h"

namespace dso {

// Where one layer's tokens come from.
struct LayerSource {
  gpu::ConstRows keys;    // (sequence, kv_head, position): the pinned host cache, device addresses
  gpu::ConstRows values;
  const std::int32_t* channels = nullptr;  // [kv_heads][r], device
  gpu::ConstRows labels;                   // (sequence, kv_head, position): r wide, device
  const std::int32_t* lengths = nullptr;   // [sequences], device: tokens cached
};

class SparseFetch {
 public:
  explicit SparseFetch(const SelectionShape& shape) : selection_(shape), multiprocessors_(shape.multiprocessors) {}

  static std::int64_t device_bytes(const SelectionShape& shape) { return TokenSelection::device_bytes(shape); }

  // Fills slot.indices/selected/fetched and the first fetched() rows of each
  // head: select, then gather, on one stream. budgets: one per sequence, all
  // with the same sink and recent; max_fetched bounds every head's fetched
  // count (sizes the gather).
  void fill(FetchSlot& slot, const LayerSource& source, const void* q, std::span<const TokenBudget> budgets,
            std::int64_t max_fetched, cudaStream_t stream, PhaseEvents& clock) const;
  // The two halves of fill, for callers that run them on different streams
  // (gather after select, ordered by the caller).
  void select(FetchSlot& slot, const LayerSource& source, const void* q, std::span<const TokenBudget> budgets,
              cudaStream_t stream, PhaseEvents& clock) const;
  void gather(FetchSlot& slot, const LayerSource& source, std::int64_t max_fetched, cudaStream_t stream,
              PhaseEvents& clock) const;

 private:
  TokenSelection selection_;
  int multiprocessors_;  // 0: the current device's
};

}  // namespace dso
