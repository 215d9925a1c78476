#pragma once
// Each policy's one instance, defined in its own offload/policy_<name>.cpp.
// A new policy adds its line here and in policy_registry.cpp.
#include "offload/policy_def.h"

namespace dso {

const PolicyDef& dense_gpu_policy();
const PolicyDef& ds_gpu_policy();
const PolicyDef& flexgen_policy();
const PolicyDef& ds_offload_policy();
const PolicyDef& ds_offload_sync_policy();

}  // namespace dso
