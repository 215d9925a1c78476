// ds_gpu: Double Sparsity with K/V in GPU memory. Label scores, then the top-k
// over the n cached tokens; the step's token is appended and joins the
// selection; attention reads the cache rows through the index list. Under
// Selector::sparq the scores come from the full cached keys at the channels
// each step's query picks (gpu/sparq.h), with no labels.
#include "core/checked_math.h"
#include "offload/cpu_engine.h"
#include "offload/cuda_backend.h"
#include "cpu/step_counts.h"
#include "gpu/current_token.h"
#include "offload/policy_registry.h"
#include "offload/policy_rules.h"

namespace dso {

namespace {

// Indices [batch][kv_heads][rows], then counts [batch][kv_heads].
std::int64_t selected_bytes(const EngineConfig& c) {
  return checked_product("the selection buffer", c.batch, c.shape.kv_heads, attended_rows(c) + 1, 4);
}

class DsGpuState final : public CudaPolicyState {
 public:
  explicit DsGpuState(const EngineConfig& c)
      : selection_(selection_shape(c)), selected_(std::size_t(selected_bytes(c))) {}

  void decode(CudaEngine& e, const CudaStep& step) override {
    const EngineConfig& c = e.config();
    CudaCache& cache = e.cache();
    const int layer = step.layer;
    e.fill_step_budgets();
    std::int32_t* indices = selected_.as<std::int32_t>();
    std::int32_t* counts = indices + std::int64_t(c.batch) * e.kv_heads() * e.rows();
    const int timer = e.clock().begin(Phase::select, e.stream());
    const SelectionOutputs selected{indices, e.rows(), counts};
    if (c.selector == Selector::sparq)
      selection_.select_sparq({step.q, as_const(cache.keys(layer)), cache.device_lengths(layer)}, e.budgets(),
                              selected, e.stream());
    else
      selection_.select({step.q, cache.channels(layer), as_const(cache.labels(layer)), cache.device_lengths(layer)},
                        e.budgets(), selected, e.stream());
    e.clock().end(timer, e.stream());
    gpu::append_current_token({indices, e.rows(), counts, cache.device_lengths(layer), c.batch, e.kv_heads()},
                         e.stream());
    e.append_step(step);
    e.attend(step, as_const(cache.keys(layer)), as_const(cache.values(layer)), counts, true, indices);
    e.count_attended();
  }

 private:
  TokenSelection selection_;
  gpu::DeviceBuffer selected_;
};

class DsGpu final : public CpuDecodeBoth<DsGpu> {
 public:
  Policy id() const override { return Policy::ds_gpu; }
  std::string_view name() const override { return "ds_gpu"; }
  bool keeps_kv_on_host() const override { return false; }
  bool is_sparse() const override { return true; }
  bool keys_beside_selection() const override { return true; }

  template <class T>
  void decode_cpu_as(CpuEngine<T>& e, const CpuStep<T>& step) const {
    const std::int64_t rows = max_attended(e.config());
    std::vector<std::int32_t>& selected = e.selected();
    std::vector<std::int32_t>& selected_count = e.selected_count();
    for (int s = 0; s < e.config().batch; ++s)
      for (int h = 0; h < e.kv_heads(); ++h) {
        const std::int64_t n = step.lengths[std::size_t(s)];
        selected_count[std::size_t(e.head_index(s, h))] = std::int32_t(
            e.select(step.layer, s, h, e.query(step.q, s, h), n, selected.data() + e.head_index(s, h) * rows));
      }
    // The current token is always attended.
    const std::vector<std::int32_t> positions(step.lengths.begin(), step.lengths.end());
    cpu::append_current_token(selected.data(), rows, selected_count.data(), positions.data(), e.config().batch,
                              e.kv_heads());
    e.append_step_token(step);
    for (int s = 0; s < e.config().batch; ++s)
      for (int h = 0; h < e.kv_heads(); ++h)
        e.attend(step, s, h, e.kv().template keys_as<T>(s, step.layer, h),
                 e.kv().template values_as<T>(s, step.layer, h), selected.data() + e.head_index(s, h) * rows,
                 selected_count[std::size_t(e.head_index(s, h))]);
  }

  CudaPolicyBytes cuda_bytes(const EngineConfig& c) const override {
    return {0, checked_sum("the selection workspace", TokenSelection::device_bytes(selection_shape(c)),
                           selected_bytes(c))};
  }
  std::unique_ptr<CudaPolicyState> make_cuda_state(CudaEngine& e) const override {
    return std::make_unique<DsGpuState>(e.config());
  }
};

}  // namespace

const PolicyDef& ds_gpu_policy() {
  static const DsGpu policy;
  return policy;
}

}  // namespace dso
