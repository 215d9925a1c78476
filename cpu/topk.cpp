#include "cpu/topk.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/recent_window.h"

namespace dso::cpu {

std::int64_t select_topk(const float* scores, std::int64_t n, const TokenBudget& budget, std::int32_t* out) {
  const std::int64_t sink = sink_end(n, budget.sink);
  const std::int64_t recent_begin = window_begin(n, budget.sink, budget.recent);
  const std::int64_t candidates = recent_begin - sink;
  std::int32_t* w = out;
  for (std::int64_t t = 0; t < sink; ++t) *w++ = std::int32_t(t);
  if (budget.k >= candidates) {
    for (std::int64_t t = sink; t < recent_begin; ++t) *w++ = std::int32_t(t);
  } else if (budget.k > 0) {
    std::vector<std::int32_t> order(candidates);
    std::iota(order.begin(), order.end(), std::int32_t(sink));
    const auto before = [scores](std::int32_t a, std::int32_t b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    };
    std::nth_element(order.begin(), order.begin() + budget.k, order.end(), before);
    std::sort(order.begin(), order.begin() + budget.k);
    w = std::copy(order.begin(), order.begin() + budget.k, w);
  }
  for (std::int64_t t = recent_begin; t < n; ++t) *w++ = std::int32_t(t);
  return w - out;
}

}  // namespace dso::cpu
