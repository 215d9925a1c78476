#include "cpu/scores.h"

#include <vector>

#include "core/dtype.h"

namespace dso::cpu {

template <class T>
void score_labels(const T* q, int group, int d, std::span<const int> channels, const T* labels,
                  std::int64_t n, float* scores) {
  // Summing the group's queries first is exact in real arithmetic and makes
  // the per-token cost r, not group * r.
  const auto r = static_cast<std::int64_t>(channels.size());
  std::vector<float> q_sum(r, 0.0f);
  for (int h = 0; h < group; ++h)
    for (std::int64_t c = 0; c < r; ++c) q_sum[c] += to_float(q[std::int64_t(h) * d + channels[c]]);
  for (std::int64_t t = 0; t < n; ++t) {
    float s = 0.0f;
    for (std::int64_t c = 0; c < r; ++c) s += q_sum[c] * to_float(labels[t * r + c]);
    scores[t] = s;
  }
}

template void score_labels(const Half*, int, int, std::span<const int>, const Half*, std::int64_t, float*);
template void score_labels(const BFloat16*, int, int, std::span<const int>, const BFloat16*, std::int64_t,
                           float*);
template void score_labels(const float*, int, int, std::span<const int>, const float*, std::int64_t, float*);

}  // namespace dso::cpu
