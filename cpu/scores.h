#pragma once
// Approximate attention scores from the label cache, CPU reference.
// GQA: the fetch unit is one KV head, so the score of token t is summed over
// the `group` query heads that share the head:
//   s_t = sum_h sum_c q_h[S_c] * label_t[c]
#include <cstdint>
#include <span>

namespace dso::cpu {

// q: [group][d]; labels: [n][channels.size()]; scores: [n]
template <class T>
void score_labels(const T* q, int group, int d, std::span<const int> channels, const T* labels,
                  std::int64_t n, float* scores);

}  // namespace dso::cpu
