// ds_offload: K/V in the pinned host cache, labels on the GPU. Layer i+1's
// selection and gather are issued to the Prefetcher during layer i with the
// speculative query q_next, so they run while layer i computes; layer 0 and
// the sync layers select with their true query, as ds_offload_sync does.
#include <algorithm>
#include <vector>

#include "core/error.h"

#include "offload/cpu_engine.h"
#include "offload/cuda_backend.h"
#include "offload/policy_registry.h"
#include "offload/policy_rules.h"
#include "prefetch/prefetcher.h"

namespace dso {

namespace {

class DsOffloadState final : public CudaPolicyState {
 public:
  explicit DsOffloadState(CudaEngine& e)
      : config_(e.config()),
        prefetcher_(selection_shape(e.config()), slot_shape(e.config()), e.clock()),
        next_budgets_(std::size_t(e.config().batch)) {}

  void check_ready(int layer, std::span<const std::int64_t> lengths) const override {
    if (!selects_synchronously(config_, layer))
      require(prefetcher_.holds(layer, lengths), "layer ", layer, " selects with the speculative query given to layer ", layer - 1,
           ", and none was given for its current cache: decode layer ", layer - 1, " with q_next first");
  }

  void decode(CudaEngine& e, const CudaStep& step) override {
    const EngineConfig& c = e.config();
    const int layer = step.layer;
    e.fill_step_budgets();
    if (selects_synchronously(c, layer)) {
      prefetcher_.issue(layer, e.source(layer), step.q, e.budgets(), e.max_fetched(e.before(), e.budgets()),
                        e.before(), e.stream());
      e.count_fetched_bytes(e.before(), e.budgets());
    }
    if (e.needs_q_next(layer)) {
      // Layer + 1's selection over the tokens it holds now, fetched while this layer computes.
      const std::span<const std::int64_t> next = e.cache().lengths(layer + 1);
      e.fill_budgets(next, next_budgets_);
      prefetcher_.issue(layer + 1, e.source(layer + 1), step.q_next, next_budgets_, e.max_fetched(next, next_budgets_),
                        next, e.stream());
      e.count_fetched_bytes(next, next_budgets_);
    }
    FetchSlot& slot = prefetcher_.acquire(layer, e.stream());
    e.append_step(step);
    e.attend_slot(step, slot);
    prefetcher_.release(layer, e.stream());
    e.count_attended();
  }

 private:
  const EngineConfig& config_;  // the engine's, which outlives this
  Prefetcher prefetcher_;
  std::vector<TokenBudget> next_budgets_;  // per sequence, for the layer prefetched
};

class DsOffload final : public CpuDecodeBoth<DsOffload> {
 public:
  Policy id() const override { return Policy::ds_offload; }
  std::string_view name() const override { return "ds_offload"; }
  bool keeps_kv_on_host() const override { return true; }
  bool is_sparse() const override { return true; }
  int fetch_slots() const override { return 2; }
  bool selects_speculatively(const EngineConfig& c, int layer) const override {
    return !selects_synchronously(c, layer);
  }
  std::int64_t fetched_tokens(const EngineConfig& c, std::int64_t n) const override {
    return dso::fetched_tokens(n, budget_at(c, n));
  }

  template <class T>
  void decode_cpu_as(CpuEngine<T>& e, const CpuStep<T>& step) const {
    CpuFetchSlot<T>& slot = e.slot_for(step.layer);
    if (!selects_speculatively(e.config(), step.layer)) e.fill_slot(slot, step.layer, step.q, step.lengths);
    e.append_step_token(step);
    e.attend_slot(step, slot);
    if (e.needs_q_next(step.layer)) {
      // The speculative selection of the next layer, over the tokens it holds
      // now, fetched into the slot that layer will read.
      const int next = step.layer + 1;
      e.fill_slot(e.slot_for(next), next, step.q_next, e.lengths_at(next));
    }
  }

  CudaPolicyBytes cuda_bytes(const EngineConfig& c) const override {
    return {Prefetcher::device_bytes(selection_shape(c), slot_shape(c)), 0};
  }
  std::unique_ptr<CudaPolicyState> make_cuda_state(CudaEngine& e) const override {
    return std::make_unique<DsOffloadState>(e);
  }
};

}  // namespace

const PolicyDef& ds_offload_policy() {
  static const DsOffload policy;
  return policy;
}

}  // namespace dso
