#pragma once
// The boundary between fetched and GPU-resident tokens, as offload/policy_rules
// draws it, in a form device code can evaluate: among n cached tokens the
// window of newest ones starts at max(min(n, sink), n - recent), the same
// place cpu::select_topk starts its recent tokens, so the selected tokens
// below it are exactly the sink and top-k ones.
#include <cstdint>

#include "gpu/rows.h"

namespace dso {

DSO_HOST_DEVICE inline std::int64_t window_start(std::int64_t n, std::int64_t sink, std::int64_t recent) {
  const std::int64_t sink_end = n < sink ? n : sink;
  return n - recent > sink_end ? n - recent : sink_end;
}

}  // namespace dso
