#include "offload/policy_rules.h"

#include <algorithm>

namespace dso {

int fetch_slots(Policy p) {
  switch (p) {
    case Policy::flexgen:
    case Policy::ds_offload: return 2;
    case Policy::ds_offload_sync: return 1;
    case Policy::dense_gpu:
    case Policy::ds_gpu: return 0;
  }
  return 0;
}

bool selects_synchronously(const EngineConfig& config, int layer) {
  return layer == 0 || std::find(config.sync_layers.begin(), config.sync_layers.end(), layer) !=
                           config.sync_layers.end();
}

bool selects_speculatively(const EngineConfig& config, int layer) {
  return config.policy == Policy::ds_offload && !selects_synchronously(config, layer);
}

bool needs_q_next(const EngineConfig& config, int layer) {
  return layer + 1 < config.shape.layers && selects_speculatively(config, layer + 1);
}

TokenBudget budget_at(const EngineConfig& config, std::int64_t n) {
  TokenBudget b = config.budget;
  if (config.k_fraction > 0) b.k = std::max<std::int64_t>(1, std::int64_t(config.k_fraction * double(n)));
  return b;
}

std::int64_t window_begin(std::int64_t n, const TokenBudget& budget) {
  return window_begin(n, budget.sink, budget.recent);
}

std::int64_t fetched_tokens(std::int64_t n, const TokenBudget& budget) {
  return selection_size(n, budget) - (n - window_begin(n, budget));
}

std::int64_t max_attended(const EngineConfig& config) {
  if (!is_sparse(config.policy)) return config.capacity;
  // Selections grow with n, and decode needs room for the new token, so the
  // largest happens at n = capacity - 1.
  const std::int64_t n = config.capacity - 1;
  return selection_size(n, budget_at(config, n)) + 1;
}

std::int64_t kv_token_bytes(const EngineConfig& config) {
  return 2 * std::int64_t(config.shape.head_dim) * dtype_size(config.dtype);
}

}  // namespace dso
