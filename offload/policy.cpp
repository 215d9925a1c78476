#include <array>
#include <string>

#include "core/error.h"
#include "offload/engine.h"

namespace dso {

namespace {

constexpr std::array<Policy, 5> all_policies{Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen,
                                             Policy::ds_offload, Policy::ds_offload_sync};

}  // namespace

std::string_view policy_name(Policy p) {
  switch (p) {
    case Policy::dense_gpu: return "dense_gpu";
    case Policy::ds_gpu: return "ds_gpu";
    case Policy::flexgen: return "flexgen";
    case Policy::ds_offload: return "ds_offload";
    case Policy::ds_offload_sync: return "ds_offload_sync";
  }
  return "unknown";
}

Policy parse_policy(std::string_view name) {
  std::string choices;
  for (Policy p : all_policies) {
    if (policy_name(p) == name) return p;
    choices += choices.empty() ? "" : ", ";
    choices += policy_name(p);
  }
  fail("unknown policy '", name, "' (choose from ", choices, ")");
}

std::string_view selector_name(Selector s) {
  switch (s) {
    case Selector::labels: return "labels";
    case Selector::sparq: return "sparq";
  }
  return "unknown";
}

Selector parse_selector(std::string_view name) {
  for (Selector s : {Selector::labels, Selector::sparq})
    if (selector_name(s) == name) return s;
  fail("unknown selector '", name, "' (choose from labels, sparq)");
}

bool keeps_kv_on_host(Policy p) {
  return p == Policy::flexgen || p == Policy::ds_offload || p == Policy::ds_offload_sync;
}

bool is_sparse(Policy p) { return p != Policy::dense_gpu && p != Policy::flexgen; }

}  // namespace dso
