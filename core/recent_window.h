#pragma once
// Where a sparse selection of one (sequence, KV head) splits its n cached
// tokens: [0, sink_end) are always kept, [window_begin, n) are the recent
// tokens, always kept too, and the top-k chooses among those between. The
// host-resident policies keep the recent tokens (and the step's own) on the
// GPU, so only the selected tokens below window_begin are fetched. The CPU
// reference, the policy rules and every kernel call these functions, so
// their boundaries cannot drift apart.
#include <cstdint>

#include "core/host_device.h"

namespace dso {

DSO_HOST_DEVICE constexpr std::int64_t sink_end(std::int64_t n, std::int64_t sink) { return n < sink ? n : sink; }

// The sink tokens are never counted twice: with n < sink + recent the window
// starts where the sink ends.
DSO_HOST_DEVICE constexpr std::int64_t window_begin(std::int64_t n, std::int64_t sink, std::int64_t recent) {
  return n - recent > sink_end(n, sink) ? n - recent : sink_end(n, sink);
}

// The most positions a window spans once the step's token joins it: the rows
// of the ring that keeps it on the GPU.
DSO_HOST_DEVICE constexpr std::int64_t window_rows(std::int64_t recent) { return recent + 1; }

}  // namespace dso
