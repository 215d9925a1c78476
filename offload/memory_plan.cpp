#include "core/checked_math.h"
#include "core/recent_window.h"
#include "host_cache/host_kv_cache.h"
#include "offload/config_checks.h"
#include "offload/engine.h"
#include "offload/policy_rules.h"

namespace dso {

MemoryPlan Engine::plan(const EngineConfig& config) {
  validate_config(config);
  const AttentionShape& s = config.shape;
  const std::int64_t elem = dtype_size(config.dtype);
  const Policy p = config.policy;
  MemoryPlan plan;
  plan.kv_bytes = HostKVLayout{config.batch, s.layers, s.kv_heads, s.head_dim, config.capacity, config.dtype}.bytes();
  if (is_sparse(p)) {
    if (config.selector == Selector::labels)
      plan.label_bytes = checked_product("the label cache size", config.batch, s.layers, s.kv_heads, config.capacity,
                                         config.channels.r, elem);
    // Scores of every cached token and the selected positions, one (sequence, KV head) each.
    plan.workspace_bytes =
        checked_product("the selection workspace", config.batch, s.kv_heads, config.capacity + max_attended(config),
                        4);
  }
  if (is_sparse(p) && keeps_kv_on_host(p))
    plan.window_bytes = checked_product("the GPU window size", config.batch, s.layers, s.kv_heads,
                                        window_rows(config.budget.recent), kv_token_bytes(config));
  plan.fetch_bytes = checked_product("the fetch buffer size", fetch_slots(p), config.batch, s.kv_heads,
                                     max_attended(config), kv_token_bytes(config));

  plan.host_bytes = keeps_kv_on_host(p) ? plan.kv_bytes : 0;
  std::int64_t gpu = keeps_kv_on_host(p) ? 0 : plan.kv_bytes;
  for (std::int64_t part : {plan.label_bytes, plan.window_bytes, plan.fetch_bytes, plan.workspace_bytes})
    gpu = checked_sum("the GPU memory plan", gpu, part);
  plan.gpu_bytes = gpu;
  return plan;
}

}  // namespace dso
