#include "cpu/scores.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/dtype.h"

namespace dso::cpu {

namespace {

// Token t's entry for the c-th of the r channels lies at rows[t * stride + at(c)].
template <class T, class At>
void score_rows(const T* q, int group, int d, std::span<const int> channels, const T* rows, std::int64_t stride,
                At at, std::int64_t n, float* scores) {
  // Summing the group's queries first is exact in real arithmetic and makes
  // the per-token cost r, not group * r.
  const auto r = static_cast<std::int64_t>(channels.size());
  std::vector<float> q_sum(r, 0.0f);
  for (int h = 0; h < group; ++h)
    for (std::int64_t c = 0; c < r; ++c) q_sum[c] += to_float(q[std::int64_t(h) * d + channels[c]]);
  for (std::int64_t t = 0; t < n; ++t) {
    const T* row = rows + t * stride;
    float s = 0.0f;
    for (std::int64_t c = 0; c < r; ++c) s += q_sum[c] * to_float(row[at(c)]);
    scores[t] = s;
  }
}

}  // namespace

template <class T>
void score_labels(const T* q, int group, int d, std::span<const int> channels, const T* labels,
                  std::int64_t n, float* scores) {
  score_rows(q, group, d, channels, labels, std::int64_t(channels.size()), [](std::int64_t c) { return c; }, n,
             scores);
}

template <class T>
void score_key_channels(const T* q, int group, int d, std::span<const int> channels, const T* keys,
                        std::int64_t n, float* scores) {
  score_rows(q, group, d, channels, keys, d, [channels](std::int64_t c) { return std::int64_t(channels[c]); }, n,
             scores);
}

template <class T>
void sparq_channels(const T* q, int group, int d, int r, int* out) {
  std::vector<float> magnitude(std::size_t(d), 0.0f);
  for (int h = 0; h < group; ++h)
    for (int c = 0; c < d; ++c) magnitude[std::size_t(c)] += std::abs(to_float(q[std::int64_t(h) * d + c]));
  std::vector<int> order(static_cast<std::size_t>(d));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + r, order.end(), [&](int a, int b) {
    return magnitude[std::size_t(a)] > magnitude[std::size_t(b)] ||
           (magnitude[std::size_t(a)] == magnitude[std::size_t(b)] && a < b);
  });
  std::copy(order.begin(), order.begin() + r, out);
}

#define DSO_SCORE_INSTANCES(T)                                                                                 \
  template void score_labels(const T*, int, int, std::span<const int>, const T*, std::int64_t, float*);       \
  template void score_key_channels(const T*, int, int, std::span<const int>, const T*, std::int64_t, float*); \
  template void sparq_channels(const T*, int, int, int, int*);
DSO_SCORE_INSTANCES(Half)
DSO_SCORE_INSTANCES(BFloat16)
DSO_SCORE_INSTANCES(float)
#undef DSO_SCORE_INSTANCES

}  // namespace dso::cpu
