#pragma once
// The cuda backend's engine: what every policy shares on the GPU (the cache,
// the attention plan and workspace, the phase clock, the engine's stream,
// the counters) and the steps policies are made of. Each policy's decode
// (offload/policy_<name>.cpp) orders those steps over its own CudaPolicyState.
// Lengths, selection counts and window bookkeeping stay on the device, so a
// step moves nothing from host to device but the K/V it fetches, and the
// statistics are counted on the host from the policy rules, with no waits.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "gpu/decode_attention.h"
#include "gpu/memory.h"
#include "gpu/rows.h"
#include "offload/cuda_cache.h"
#include "offload/cuda_engine.h"
#include "offload/engine.h"
#include "offload/policy_def.h"
#include "prefetch/fetch_slot.h"
#include "prefetch/phase_events.h"
#include "prefetch/sparse_fetch.h"
#include "prefetch/token_selection.h"

namespace dso {

// One layer of one decode step, device addresses.
struct CudaStep {
  int layer = 0;
  const void* q = nullptr;
  gpu::ConstRows k_new;  // (sequence, kv_head, 0)
  gpu::ConstRows v_new;
  const void* q_next = nullptr;
  void* out = nullptr;
};

// The shapes the policies' GPU buffers are planned for.
std::int64_t attended_rows(const EngineConfig& c);
SelectionShape selection_shape(const EngineConfig& c);
SlotShape slot_shape(const EngineConfig& c);

class CudaEngine final : public Engine {
 public:
  CudaEngine(const EngineConfig& config, const CudaEngineOptions& options);
  ~CudaEngine() override;

  const EngineConfig& config() const override { return config_; }
  std::int64_t length(int sequence, int layer) const override { return cache_.length(sequence, layer); }
  void set_stream(CUstream_st* stream) override;
  const StepStats& stats() const override;
  void reset_stats() override;
  SelectionProbe probe_selection(int layer, int sequence, const void* q) override;
  void prefill(int layer, int sequence, const void* k, const void* v, std::int64_t count) override;
  void decode(int layer, const void* q, const void* k_new, const void* v_new, const void* q_next,
              void* out) override;

  // The steps policies are made of.
  const PolicyDef& policy() const { return policy_; }
  CudaCache& cache() { return cache_; }
  PhaseEvents& clock() { return clock_; }
  cudaStream_t stream() const { return stream_; }
  std::int64_t rows() const { return rows_; }
  int kv_heads() const { return config_.shape.kv_heads; }
  // Per sequence: the layer's tokens before the step, and their budgets.
  std::span<const std::int64_t> before() const { return before_; }
  std::span<const TokenBudget> budgets() const { return budgets_; }
  // One budget per sequence for a selection over `lengths` tokens.
  void fill_budgets(std::span<const std::int64_t> lengths, std::vector<TokenBudget>& budgets) const;
  void fill_step_budgets() { fill_budgets(before_, budgets_); }
  std::int64_t max_fetched(std::span<const std::int64_t> lengths, std::span<const TokenBudget> budgets) const;
  void count_fetched_bytes(std::span<const std::int64_t> lengths, std::span<const TokenBudget> budgets);
  void count_host_bytes(std::int64_t bytes) { stats_.h2d_bytes += bytes; }
  void count_attended();
  void append_step(const CudaStep& step);
  // Attention of every sequence over `k`/`v` rows: the first lengths[...]
  // (per sequence, or per (sequence, KV head) where per_head), or those at
  // `indices` where given.
  void attend(const CudaStep& step, gpu::ConstRows k, gpu::ConstRows v, const std::int32_t* lengths,
              bool per_head, const std::int32_t* indices);
  // After the append: the window behind the fetched rows, and what attention reads.
  void attend_slot(const CudaStep& step, FetchSlot& slot);
  LayerSource source(int layer) const;

 private:
  EngineConfig config_;
  const PolicyDef& policy_;
  // The legacy default stream until set_stream: ordered with the caller's
  // plain cudaMemcpy and default-stream kernels without any set-up.
  cudaStream_t stream_ = nullptr;
  mutable PhaseEvents clock_;
  CudaCache cache_;
  std::int64_t rows_;
  gpu::DecodeAttentionPlan attention_plan_;
  gpu::DeviceBuffer attention_workspace_;
  std::vector<std::int64_t> before_;  // per sequence: the layer's tokens before the step's
  std::vector<TokenBudget> budgets_;  // per sequence, for the layer decoded
  mutable StepStats stats_;
  gpu::Event stream_switch_;
  std::unique_ptr<CudaPolicyState> state_;  // last: made over the members above
};

gpu::ConstRows as_const(const gpu::Rows& rows);

}  // namespace dso
