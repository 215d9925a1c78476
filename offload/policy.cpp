#include <string>

#include "core/error.h"
#include "offload/engine.h"
#include "offload/policy_def.h"

namespace dso {

std::string_view policy_name(Policy p) {
  for (const PolicyDef* def : registered_policies())
    if (def->id() == p) return def->name();
  return "unknown";
}

Policy parse_policy(std::string_view name) {
  std::string choices;
  for (const PolicyDef* def : registered_policies()) {
    if (def->name() == name) return def->id();
    choices += choices.empty() ? "" : ", ";
    choices += def->name();
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

bool keeps_kv_on_host(Policy p) { return policy_def(p).keeps_kv_on_host(); }

bool is_sparse(Policy p) { return policy_def(p).is_sparse(); }

}  // namespace dso
