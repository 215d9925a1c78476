#include "prefetch/sparse_fetch.h"

#include <algorithm>

#include "core/error.h"
#include "gpu/fetch_counts.h"
#include "gpu/gather.h"
#include "gpu/memory.h"

namespace dso {

void SparseFetch::fill(FetchSlot& slot, const LayerSource& source, const void* q, std::span<const TokenBudget> budgets,
                       std::int64_t max_fetched, cudaStream_t stream, PhaseEvents& clock) const {
  select(slot, source, q, budgets, stream, clock);
  gather(slot, source, max_fetched, stream, clock);
}

void SparseFetch::select(FetchSlot& slot, const LayerSource& source, const void* q,
                         std::span<const TokenBudget> budgets, cudaStream_t stream, PhaseEvents& clock) const {
  const SlotShape& s = slot.shape();
  require(!budgets.empty() && s.sparse, "sparse fetch: needs budgets and a slot for a selection");
  const int select = clock.begin(Phase::select, stream);
  selection_.select({q, source.channels, source.labels, source.lengths}, budgets,
                    {slot.indices(), s.rows, slot.selected()}, stream);
  gpu::count_fetched({slot.selected(), source.lengths, slot.fetched(), s.sequences, s.kv_heads,
                      budgets.front().sink, budgets.front().recent},
                     stream);
  clock.end(select, stream);
}

void SparseFetch::gather(FetchSlot& slot, const LayerSource& source, std::int64_t max_fetched, cudaStream_t stream,
                         PhaseEvents& clock) const {
  const SlotShape& s = slot.shape();
  const int fetch = clock.begin(Phase::fetch, stream);
  gpu::GatherArgs gather;
  gather.dtype = s.dtype;
  gather.sequences = s.sequences;
  gather.kv_heads = s.kv_heads;
  gather.head_dim = s.head_dim;
  gather.k_source = source.keys;
  gather.v_source = source.values;
  gather.indices = slot.indices();
  gather.index_stride = s.rows;
  gather.counts = slot.fetched();
  gather.max_count = max_fetched;
  gather.k_destination = slot.keys();
  gather.v_destination = slot.values();
  // Blocks for a quarter of the multiprocessors keep the PCIe link as busy
  // as a full wave does (measured on whole ds_offload_sync steps), and leave
  // the rest to the layer computing meanwhile.
  gather.max_blocks = std::max(1, (multiprocessors_ > 0 ? multiprocessors_ : gpu::multiprocessor_count()) / 4);
  gpu::gather_rows(gather, stream);
  clock.end(fetch, stream);
}

}  // namespace dso
