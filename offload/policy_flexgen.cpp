// flexgen (the baseline): K/V in the pinned host cache; each layer's K/V is
// fetched whole into a GPU slot, one layer ahead on a side stream
// (offload/cuda_layer_fetcher.h); the new token goes to the host cache
// (zero-copy) and into the slot; dense attention over the slot.
#include <cstring>

#include "gpu/append.h"
#include "offload/cpu_engine.h"
#include "offload/cuda_backend.h"
#include "offload/cuda_layer_fetcher.h"
#include "offload/phase_timer.h"
#include "offload/policy_registry.h"
#include "offload/policy_rules.h"

namespace dso {

namespace {

class FlexgenState final : public CudaPolicyState {
 public:
  explicit FlexgenState(CudaEngine& e) : fetcher_(slot_shape(e.config()), e.clock()) {}

  void decode(CudaEngine& e, const CudaStep& step) override {
    const EngineConfig& c = e.config();
    CudaCache& cache = e.cache();
    const int layer = step.layer;
    FetchSlot& slot = fetcher_.acquire(layer, e.before(), cache, e.stream());
    // The new token was computed on the GPU: it joins the fetched layer there,
    // at row n, before the append advances the lengths past it.
    gpu::KVAppendArgs token;
    token.dtype = c.dtype;
    token.head_dim = c.shape.head_dim;
    token.k_new = step.k_new;
    token.v_new = step.v_new;
    token.tokens = {c.batch, e.kv_heads(), 1, cache.device_lengths(layer)};
    token.k_cache = slot.keys();
    token.v_cache = slot.values();
    token.capacity = c.capacity;
    gpu::append_kv(token, e.stream());
    e.append_step(step);
    const int next = (layer + 1) % c.shape.layers;
    fetcher_.prefetch(next, cache.lengths(next), cache, e.stream());
    e.attend(step, as_const(slot.keys()), as_const(slot.values()), cache.device_lengths(layer), false, nullptr);
    for (std::int64_t n : e.before()) e.count_host_bytes(n * e.kv_heads() * kv_token_bytes(c));
    e.count_attended();
  }

 private:
  LayerFetcher fetcher_;
};

class Flexgen final : public CpuDecodeBoth<Flexgen> {
 public:
  Policy id() const override { return Policy::flexgen; }
  std::string_view name() const override { return "flexgen"; }
  bool keeps_kv_on_host() const override { return true; }
  bool is_sparse() const override { return false; }
  int fetch_slots() const override { return 2; }
  std::int64_t fetched_tokens(const EngineConfig&, std::int64_t n) const override { return n; }

  template <class T>
  void decode_cpu_as(CpuEngine<T>& e, const CpuStep<T>& step) const {
    CpuFetchSlot<T>& slot = e.slot_for(step.layer);
    const int d = e.head_dim();
    const std::int64_t row_bytes = std::int64_t(sizeof(T)) * d;
    {
      PhaseTimer timer(e.counters().ms_fetch);
      for (int s = 0; s < e.config().batch; ++s)
        for (int h = 0; h < e.kv_heads(); ++h) {
          const std::int64_t n = step.lengths[std::size_t(s)];
          std::memcpy(slot.keys_of(s, h), e.kv().keys(s, step.layer, h), std::size_t(n * row_bytes));
          std::memcpy(slot.values_of(s, h), e.kv().values(s, step.layer, h), std::size_t(n * row_bytes));
          e.counters().h2d_bytes += n * kv_token_bytes(e.config());
        }
    }
    e.append_step_token(step);
    for (int s = 0; s < e.config().batch; ++s)
      for (int h = 0; h < e.kv_heads(); ++h) {
        // The new token was computed on the GPU: it joins the fetched layer there.
        const std::int64_t n = step.lengths[std::size_t(s)];
        std::memcpy(slot.keys_of(s, h) + n * d, e.new_token(step.k_new, s) + h * d, std::size_t(row_bytes));
        std::memcpy(slot.values_of(s, h) + n * d, e.new_token(step.v_new, s) + h * d, std::size_t(row_bytes));
        e.attend(step, s, h, slot.keys_of(s, h), slot.values_of(s, h), nullptr, n + 1);
      }
  }

  CudaPolicyBytes cuda_bytes(const EngineConfig& c) const override {
    return {LayerFetcher::device_bytes(slot_shape(c)), 0};
  }
  std::unique_ptr<CudaPolicyState> make_cuda_state(CudaEngine& e) const override {
    return std::make_unique<FlexgenState>(e);
  }
};

}  // namespace

const PolicyDef& flexgen_policy() {
  static const Flexgen policy;
  return policy;
}

}  // namespace dso
