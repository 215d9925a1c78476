#pragma once
// Calibration statistics: a streaming accumulator that a model runner feeds,
// layer by layer and chunk by chunk, with the Q/K activations it computes
// anyway, and the per-channel means it yields.
#include <cstdint>
#include <span>
#include <vector>

#include "calibration/statistic.h"
#include "core/shape.h"

namespace dso::calibration {

// Mean statistics of one calibration run, each [layers][heads][head_dim] with
// heads_of(statistic, shape) heads.
struct ChannelStatistics {
  AttentionShape shape;
  std::vector<double> q;
  std::vector<double> k;
  std::vector<double> qk;

  // The head_dim values of one (layer, head) of a statistic.
  std::span<const double> of(Statistic s, int layer, int head) const;
};

class StatisticsAccumulator {
 public:
  explicit StatisticsAccumulator(const AttentionShape& shape);

  // One chunk of `tokens` tokens of `layer`, before RoPE:
  // q is [tokens][q_heads][head_dim], k is [tokens][kv_heads][head_dim].
  // Feeds the q and k statistics.
  void add_projections(int layer, std::int64_t tokens, std::span<const float> q, std::span<const float> k);

  // The same layouts after RoPE. Feeds the qk statistic.
  void add_rotated(int layer, std::int64_t tokens, std::span<const float> q, std::span<const float> k);

  std::int64_t projected_tokens(int layer) const;
  std::int64_t rotated_tokens(int layer) const;

  // Sums divided by token counts. Fails, naming the layer, where a layer was
  // never fed: a silent all-zero statistic would order its channels 0, 1, 2...
  ChannelStatistics means() const;

  const AttentionShape& shape() const { return shape_; }

 private:
  void check_chunk(const char* what, int layer, std::int64_t tokens, std::span<const float> q,
                   std::span<const float> k) const;

  AttentionShape shape_;
  std::vector<double> sum_q_;   // [layers][q_heads][head_dim]
  std::vector<double> sum_k_;   // [layers][kv_heads][head_dim]
  std::vector<double> sum_qk_;  // [layers][q_heads][head_dim]
  std::vector<std::int64_t> projected_;
  std::vector<std::int64_t> rotated_;
};

}  // namespace dso::calibration
