#pragma once
// Token selection for one (sequence, KV head), CPU reference.
// Keeps the budget's sink and recent tokens, plus the k highest-scoring tokens
// of the rest. Indices come out sorted ascending (the order the host cache
// rewards); among equal scores the lower index wins, so the result is
// deterministic. With k at least the number of candidates, every token is kept.
#include <cstdint>

#include "core/shape.h"

namespace dso::cpu {

// scores: [n]; out: room for selection_size(n, budget) indices.
// Returns the number written, selection_size(n, budget).
std::int64_t select_topk(const float* scores, std::int64_t n, const TokenBudget& budget, std::int32_t* out);

}  // namespace dso::cpu
