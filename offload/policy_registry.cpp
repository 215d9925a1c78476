#include "offload/policy_registry.h"

#include <array>

#include "core/error.h"

namespace dso {

std::span<const PolicyDef* const> registered_policies() {
  static const std::array<const PolicyDef*, 5> all{&dense_gpu_policy(), &ds_gpu_policy(), &flexgen_policy(),
                                                   &ds_offload_policy(), &ds_offload_sync_policy()};
  return all;
}

const PolicyDef& policy_def(Policy p) {
  for (const PolicyDef* def : registered_policies())
    if (def->id() == p) return *def;
  fail("unknown policy ", int(p));
}

}  // namespace dso
