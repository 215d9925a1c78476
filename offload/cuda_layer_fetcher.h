#pragma once
// The whole-layer fetch of flexgen: two GPU slots, each holding one layer's
// K/V of every sequence, and a side stream that copies layer (i+1) mod L into
// the slot layer i does not read, while layer i computes. Each (sequence,
// KV head) region of the host cache is contiguous, so a layer moves as one
// contiguous DMA copy per region of its filled rows, at the link's rate.
#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <span>

#include "gpu/memory.h"
#include "offload/cuda_cache.h"
#include "prefetch/fetch_slot.h"
#include "prefetch/phase_events.h"

namespace dso {

class LayerFetcher {
 public:
  // shape.rows: the cache capacity; shape.sparse is ignored.
  LayerFetcher(const SlotShape& shape, PhaseEvents& clock);
  ~LayerFetcher();
  LayerFetcher(const LayerFetcher&) = delete;
  LayerFetcher& operator=(const LayerFetcher&) = delete;

  static std::int64_t device_bytes(const SlotShape& shape);

  // The slot holding `layer` as cached now (lengths, per sequence), fetched
  // now where neither does; `compute` waits for it.
  FetchSlot& acquire(int layer, std::span<const std::int64_t> lengths, const CudaCache& cache,
                     cudaStream_t compute);
  // Queues the fetch of `layer` into the slot the last acquire did not
  // return, after everything queued on `compute` so far (its last readers
  // among it).
  void prefetch(int layer, std::span<const std::int64_t> lengths, const CudaCache& cache, cudaStream_t compute);

 private:
  void fetch(int slot, int layer, std::span<const std::int64_t> lengths, const CudaCache& cache,
             cudaStream_t compute);

  PhaseEvents& clock_;
  std::array<FetchSlot, 2> slots_;
  int current_ = 1;  // the slot the last acquire returned
  gpu::Stream side_;
  gpu::Event queued_;  // on the compute stream, where a fetch may start
};

}  // namespace dso
