#include "calibration/statistics.h"

#include <cmath>
#include <cstddef>

#include "core/error.h"

namespace dso::calibration {

namespace {

std::size_t table_size(const AttentionShape& shape, int heads) {
  return std::size_t(shape.layers) * std::size_t(heads) * std::size_t(shape.head_dim);
}

const AttentionShape& validated(const AttentionShape& shape) {
  shape.validate();
  return shape;
}

}  // namespace

std::span<const double> ChannelStatistics::of(Statistic s, int layer, int head) const {
  const int heads = heads_of(s, shape);
  require(layer >= 0 && layer < shape.layers, "layer ", layer, " is outside [0, ", shape.layers, ")");
  require(head >= 0 && head < heads, "head ", head, " of statistic ", statistic_name(s), " is outside [0, ", heads,
          ")");
  const std::vector<double>& table = s == Statistic::q ? q : s == Statistic::k ? k : qk;
  const std::size_t offset = (std::size_t(layer) * heads + head) * shape.head_dim;
  return {table.data() + offset, std::size_t(shape.head_dim)};
}

StatisticsAccumulator::StatisticsAccumulator(const AttentionShape& shape)
    : shape_(validated(shape)),
      sum_q_(table_size(shape_, shape_.q_heads), 0.0),
      sum_k_(table_size(shape_, shape_.kv_heads), 0.0),
      sum_qk_(table_size(shape_, shape_.q_heads), 0.0),
      projected_(std::size_t(shape_.layers), 0),
      rotated_(std::size_t(shape_.layers), 0) {}

void StatisticsAccumulator::check_chunk(const char* what, int layer, std::int64_t tokens, std::span<const float> q,
                                        std::span<const float> k) const {
  require(layer >= 0 && layer < shape_.layers, what, ": layer ", layer, " is outside [0, ", shape_.layers, ")");
  require(tokens >= 0, what, ": token count ", tokens, " is negative");
  const auto q_size = std::size_t(tokens) * shape_.q_heads * shape_.head_dim;
  const auto k_size = std::size_t(tokens) * shape_.kv_heads * shape_.head_dim;
  require(q.size() == q_size, what, ": q of layer ", layer, " has ", q.size(), " values, expected ", tokens,
          " tokens x ", shape_.q_heads, " heads x ", shape_.head_dim, " = ", q_size);
  require(k.size() == k_size, what, ": k of layer ", layer, " has ", k.size(), " values, expected ", tokens,
          " tokens x ", shape_.kv_heads, " heads x ", shape_.head_dim, " = ", k_size);
}

void StatisticsAccumulator::add_projections(int layer, std::int64_t tokens, std::span<const float> q,
                                            std::span<const float> k) {
  check_chunk("calibration (before RoPE)", layer, tokens, q, k);
  const std::size_t q_row = std::size_t(shape_.q_heads) * shape_.head_dim;
  const std::size_t k_row = std::size_t(shape_.kv_heads) * shape_.head_dim;
  double* sq = sum_q_.data() + std::size_t(layer) * q_row;
  double* sk = sum_k_.data() + std::size_t(layer) * k_row;
  for (std::int64_t t = 0; t < tokens; ++t) {
    const float* qt = q.data() + std::size_t(t) * q_row;
    const float* kt = k.data() + std::size_t(t) * k_row;
    for (std::size_t i = 0; i < q_row; ++i) sq[i] += std::abs(double(qt[i]));
    for (std::size_t i = 0; i < k_row; ++i) sk[i] += std::abs(double(kt[i]));
  }
  projected_[layer] += tokens;
}

void StatisticsAccumulator::add_rotated(int layer, std::int64_t tokens, std::span<const float> q,
                                        std::span<const float> k) {
  check_chunk("calibration (after RoPE)", layer, tokens, q, k);
  const int d = shape_.head_dim;
  const int group = shape_.group();
  const std::size_t q_row = std::size_t(shape_.q_heads) * d;
  const std::size_t k_row = std::size_t(shape_.kv_heads) * d;
  double* sqk = sum_qk_.data() + std::size_t(layer) * q_row;
  for (std::int64_t t = 0; t < tokens; ++t) {
    const float* qt = q.data() + std::size_t(t) * q_row;
    const float* kt = k.data() + std::size_t(t) * k_row;
    for (int h = 0; h < shape_.q_heads; ++h) {
      // Query head h reads KV head h / group, as repeat_kv lays the heads out.
      const float* qh = qt + std::size_t(h) * d;
      const float* kh = kt + std::size_t(h / group) * d;
      double* out = sqk + std::size_t(h) * d;
      for (int c = 0; c < d; ++c) out[c] += std::abs(double(qh[c]) * double(kh[c]));
    }
  }
  rotated_[layer] += tokens;
}

std::int64_t StatisticsAccumulator::projected_tokens(int layer) const {
  require(layer >= 0 && layer < shape_.layers, "layer ", layer, " is outside [0, ", shape_.layers, ")");
  return projected_[layer];
}

std::int64_t StatisticsAccumulator::rotated_tokens(int layer) const {
  require(layer >= 0 && layer < shape_.layers, "layer ", layer, " is outside [0, ", shape_.layers, ")");
  return rotated_[layer];
}

ChannelStatistics StatisticsAccumulator::means() const {
  ChannelStatistics out{shape_, sum_q_, sum_k_, sum_qk_};
  const auto divide = [&](std::vector<double>& table, int heads, int layer, std::int64_t count) {
    const std::size_t row = std::size_t(heads) * shape_.head_dim;
    for (std::size_t i = 0; i < row; ++i) table[std::size_t(layer) * row + i] /= double(count);
  };
  for (int l = 0; l < shape_.layers; ++l) {
    require(projected_[l] > 0, "calibration: layer ", l, " received no tokens before RoPE");
    require(rotated_[l] > 0, "calibration: layer ", l, " received no tokens after RoPE");
    divide(out.q, shape_.q_heads, l, projected_[l]);
    divide(out.k, shape_.kv_heads, l, projected_[l]);
    divide(out.qk, shape_.q_heads, l, rotated_[l]);
  }
  // A NaN would make the channel order meaningless without anyone noticing.
  for (Statistic s : all_statistics)
    for (int l = 0; l < shape_.layers; ++l)
      for (int h = 0; h < heads_of(s, shape_); ++h) {
        const std::span<const double> values = out.of(s, l, h);
        for (int c = 0; c < shape_.head_dim; ++c)
          require(std::isfinite(values[c]), "calibration: statistic ", statistic_name(s), " of layer ", l, " head ", h,
                  " channel ", c, " is ", values[c], ": the activations fed held NaN or infinite values");
      }
  return out;
}

}  // namespace dso::calibration
