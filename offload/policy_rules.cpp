#include "offload/policy_rules.h"

#include <algorithm>

#include "core/checked_math.h"
#include "host_cache/host_kv_cache.h"
#include "offload/policy_def.h"

namespace dso {

int fetch_slots(Policy p) { return policy_def(p).fetch_slots(); }

bool selects_synchronously(const EngineConfig& config, int layer) {
  return layer == 0 || std::find(config.sync_layers.begin(), config.sync_layers.end(), layer) !=
                           config.sync_layers.end();
}

bool selects_speculatively(const EngineConfig& config, int layer) {
  return policy_def(config.policy).selects_speculatively(config, layer);
}

bool needs_q_next(const EngineConfig& config, int layer) {
  return layer + 1 < config.shape.layers && selects_speculatively(config, layer + 1);
}

KVFormat kv_format_in(const EngineConfig& config) { return config.kv_format.value_or(kv_format_of(config.dtype)); }

ActivationStrides q_strides_in(const EngineConfig& config) {
  const AttentionShape& s = config.shape;
  return {config.q_strides.sequence ? config.q_strides.sequence : std::int64_t(s.q_heads) * s.head_dim,
          config.q_strides.head ? config.q_strides.head : s.head_dim};
}

ActivationStrides out_strides_in(const EngineConfig& config) {
  const AttentionShape& s = config.shape;
  return {config.out_strides.sequence ? config.out_strides.sequence : std::int64_t(s.q_heads) * s.head_dim,
          config.out_strides.head ? config.out_strides.head : s.head_dim};
}

bool uses_label_channels(const EngineConfig& config) {
  return is_sparse(config.policy) && config.selector == Selector::labels;
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
  return 2 * std::int64_t(config.shape.head_dim) * kv_format_size(kv_format_in(config));
}

std::int64_t kv_cache_bytes(const EngineConfig& config) {
  const AttentionShape& s = config.shape;
  return HostKVLayout{config.batch, s.layers, s.kv_heads, s.head_dim, config.capacity, config.dtype}.bytes();
}

std::int64_t label_cache_bytes(const EngineConfig& config) {
  if (!uses_label_channels(config)) return 0;
  return checked_product("the label cache size", config.batch, config.shape.layers, config.shape.kv_heads,
                         config.capacity, config.channels.r, kv_format_size(kv_format_in(config)));
}

std::int64_t window_cache_bytes(const EngineConfig& config) {
  if (!is_sparse(config.policy) || !keeps_kv_on_host(config.policy)) return 0;
  return checked_product("the GPU window size", config.batch, config.shape.layers, config.shape.kv_heads,
                         window_rows(config.budget.recent), kv_token_bytes(config));
}

}  // namespace dso
