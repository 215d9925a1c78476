#include "offload/config_checks.h"

#include <limits>
#include <utility>

#include "core/error.h"
#include "offload/policy_def.h"
#include "offload/policy_rules.h"

namespace dso {

void validate_config(const EngineConfig& config) {
  config.shape.validate();
  require(config.dtype == DType::f16 || config.dtype == DType::bf16, "dtype must be f16 or bf16");
  const KVFormat format = kv_format_in(config);
  require(kv_format_name(format) != "unknown", "unknown K/V format ", int(format));
  require(format == kv_format_of(config.dtype), "kv_format ", kv_format_name(format), " with dtype ",
          dtype_name(config.dtype), ": the backends store K/V as the activations come, so the cache holds the dtype's own "
          "format (", kv_format_name(kv_format_of(config.dtype)), ")");
  require(config.device.index >= 0, "device index must not be negative, got ", config.device.index);
  require(config.device.multiprocessors >= 0, "device multiprocessors must not be negative, got ",
          config.device.multiprocessors);
  const AttentionShape& s = config.shape;
  for (const auto& [what, given] : {std::pair{"q_strides", config.q_strides}, std::pair{"out_strides", config.out_strides}}) {
    require(given.sequence >= 0 && given.head >= 0, what, " must not be negative");
    const std::int64_t head = given.head ? given.head : s.head_dim;
    const std::int64_t sequence = given.sequence ? given.sequence : std::int64_t(s.q_heads) * s.head_dim;
    require(head >= s.head_dim && sequence >= head * s.q_heads, what, " {", given.sequence, ", ", given.head,
            "} make heads or sequences overlap: a head needs ", s.head_dim, " elements, a sequence ", s.q_heads,
            " heads");
  }
  require(config.backend == Backend::cpu || config.backend == Backend::cuda, "unknown backend ",
          int(config.backend));
  const PolicyDef& policy = policy_def(config.policy);  // throws for a value no policy has
  require(config.batch > 0, "batch must be positive, got ", config.batch);
  // Token positions are 32-bit in the selection kernels.
  require(config.capacity > 0 && config.capacity <= std::numeric_limits<std::int32_t>::max(),
          "capacity must be in [1, 2^31), got ", config.capacity, " tokens");

  const TokenBudget& b = config.budget;
  require(b.k >= 0 && b.sink >= 0 && b.recent >= 0, "token budget must not be negative: k=", b.k,
          " sink=", b.sink, " recent=", b.recent);
  require(config.k_fraction >= 0 && config.k_fraction <= 1, "k_fraction must be in [0, 1], got ",
          config.k_fraction);
  require(config.k_fraction == 0 || b.k == 0, "set either budget.k (", b.k, ") or k_fraction (",
          config.k_fraction, "), not both");
  require(selector_name(config.selector) != "unknown", "unknown selector ", int(config.selector));
  if (config.selector == Selector::sparq) {
    require(policy.keys_beside_selection(), "selector sparq reads the full keys at channels chosen per step, which "
            "only ds_gpu keeps where selection runs; policy ", policy_name(config.policy), " selects from labels");
    require(config.sparq_r > 0 && config.sparq_r <= config.shape.head_dim, "sparq_r=", config.sparq_r,
            " channels per step must be in [1, ", config.shape.head_dim, "]");
  }
  if (is_sparse(config.policy)) {
    require(b.k > 0 || config.k_fraction > 0, "policy ", policy_name(config.policy),
            " selects tokens: set budget.k or k_fraction");
    require(config.selector == Selector::sparq || !config.channels.index.empty(), "policy ",
            policy_name(config.policy),
            " needs label channels (a calibration, or LabelChannels::leading for synthetic runs)");
  }
  if (!config.channels.index.empty() || config.channels.r != 0) config.channels.validate(config.shape);

  for (int layer : config.sync_layers)
    require(layer >= 0 && layer < config.shape.layers, "sync layer ", layer, " is outside [0, ",
            config.shape.layers, ")");
}

void check_decode_call(const EngineConfig& config, int layer, const DecodeArgs& args,
                       std::span<const std::int64_t> lengths) {
  require(layer >= 0 && layer < config.shape.layers, "decode of layer ", layer, ", the model has ",
          config.shape.layers);
  require(args.q != nullptr && args.k_new != nullptr && args.v_new != nullptr && args.out != nullptr,
          "decode of layer ", layer, " was given a null q, k_new, v_new or out");
  require(args.q_next != nullptr || !needs_q_next(config, layer), "decode of layer ", layer,
          " needs q_next: layer ", layer + 1, " selects with a speculative query under ds_offload");
  for (std::size_t s = 0; s < lengths.size(); ++s)
    require(lengths[s] < config.capacity, "sequence ", s, " holds ", lengths[s], " tokens at layer ", layer,
            ", its full capacity: decoding one more needs a capacity above ", config.capacity);
}

}  // namespace dso
