#pragma once
// Approximate attention scores, CPU reference.
// GQA: the fetch unit is one KV head, so the score of token t is summed over
// the `group` query heads that share the head, at a subset S of channels:
//   s_t = sum_h sum_{c in S} q_h[c] * K_t[c]
// read from the label cache (K_t[S], Double Sparsity) or from the full keys
// (SparQ). Both sum in the same order, so the same S gives the same scores.
#include <cstdint>
#include <span>

namespace dso::cpu {

// q: [group][d]; labels: [n][channels.size()], K_t at `channels`; scores: [n]
template <class T>
void score_labels(const T* q, int group, int d, std::span<const int> channels, const T* labels,
                  std::int64_t n, float* scores);

// q: [group][d]; keys: [n][d]; scores: [n]
template <class T>
void score_key_channels(const T* q, int group, int d, std::span<const int> channels, const T* keys,
                        std::int64_t n, float* scores);

// SparQ's channels for one (sequence, KV head) and step: the r channels of
// largest sum over the group of |q_h[c]|, by descending sum, the lower
// channel first on equal sums. q: [group][d]; out: [r].
template <class T>
void sparq_channels(const T* q, int group, int d, int r, int* out);

}  // namespace dso::cpu
