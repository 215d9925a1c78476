// ds_offload_sync (the ablation): K/V in the pinned host cache. Label scores
// with the exact query, top-k, zero-copy gather of the selected tokens below
// the GPU window, then the append, the window copied behind them and
// attention over the slot: no overlap.
#include "offload/cpu_engine.h"
#include "offload/cuda_backend.h"
#include "offload/policy_registry.h"
#include "offload/policy_rules.h"
#include "prefetch/sparse_fetch.h"

namespace dso {

namespace {

class DsOffloadSyncState final : public CudaPolicyState {
 public:
  explicit DsOffloadSyncState(const EngineConfig& c) : slot_(slot_shape(c)), fetch_(selection_shape(c)) {}

  void decode(CudaEngine& e, const CudaStep& step) override {
    e.fill_step_budgets();
    fetch_.fill(slot_, e.source(step.layer), step.q, e.budgets(), e.max_fetched(e.before(), e.budgets()), e.stream(),
                e.clock());
    e.count_fetched_bytes(e.before(), e.budgets());
    e.append_step(step);
    e.attend_slot(step, slot_);
    e.count_attended();
  }

 private:
  FetchSlot slot_;
  SparseFetch fetch_;
};

class DsOffloadSync final : public CpuDecodeBoth<DsOffloadSync> {
 public:
  Policy id() const override { return Policy::ds_offload_sync; }
  std::string_view name() const override { return "ds_offload_sync"; }
  bool keeps_kv_on_host() const override { return true; }
  bool is_sparse() const override { return true; }
  int fetch_slots() const override { return 1; }
  std::int64_t fetched_tokens(const EngineConfig& c, std::int64_t n) const override {
    return dso::fetched_tokens(n, budget_at(c, n));
  }

  template <class T>
  void decode_cpu_as(CpuEngine<T>& e, const CpuStep<T>& step) const {
    CpuFetchSlot<T>& slot = e.slot_for(step.layer);
    e.fill_slot(slot, step.layer, step.q, step.lengths);
    e.append_step_token(step);
    e.attend_slot(step, slot);
  }

  CudaPolicyBytes cuda_bytes(const EngineConfig& c) const override {
    return {FetchSlot::device_bytes(slot_shape(c)), SparseFetch::device_bytes(selection_shape(c))};
  }
  std::unique_ptr<CudaPolicyState> make_cuda_state(CudaEngine& e) const override {
    return std::make_unique<DsOffloadSyncState>(e.config());
  }
};

}  // namespace

const PolicyDef& ds_offload_sync_policy() {
  static const DsOffloadSync policy;
  return policy;
}

}  // namespace dso
