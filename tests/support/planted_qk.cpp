#include "support/planted_qk.h"

#include <algorithm>
#include <numeric>

#include "support/rope_reference.h"

namespace dso::test {

PlantedQK::PlantedQK(const AttentionShape& shape, int planted_pairs, float gain, std::uint64_t seed) : shape_(shape) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> base_scale(0.5f, 1.5f);
  const int d = shape.head_dim;
  const int half = d / 2;
  for (int l = 0; l < shape.layers; ++l)
    for (int j = 0; j < shape.kv_heads; ++j) {
      std::vector<int> pairs(half);
      std::iota(pairs.begin(), pairs.end(), 0);
      std::shuffle(pairs.begin(), pairs.end(), rng);
      std::vector<int> channels;
      for (int p = 0; p < planted_pairs; ++p) {
        channels.push_back(pairs[p]);
        channels.push_back(pairs[p] + half);
      }
      std::sort(channels.begin(), channels.end());
      planted_.push_back(channels);
    }
  const auto scales = [&](int heads, auto planted_of_head) {
    std::vector<float> out;
    for (int l = 0; l < shape.layers; ++l)
      for (int h = 0; h < heads; ++h) {
        const std::vector<int>& planted = planted_of_head(l, h);
        for (int c = 0; c < d; ++c) {
          const bool outlier = std::binary_search(planted.begin(), planted.end(), c);
          out.push_back(base_scale(rng) * (outlier ? gain : 1.0f));
        }
      }
    return out;
  };
  q_scale_ =
      scales(shape.q_heads, [&](int l, int h) -> const std::vector<int>& { return planted(l, h / shape.group()); });
  k_scale_ = scales(shape.kv_heads, [&](int l, int j) -> const std::vector<int>& { return planted(l, j); });
}

QKChunk PlantedQK::projections(int layer, std::int64_t tokens, std::mt19937_64& rng) const {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::size_t q_row = std::size_t(shape_.q_heads) * shape_.head_dim;
  const std::size_t k_row = std::size_t(shape_.kv_heads) * shape_.head_dim;
  QKChunk out{std::vector<float>(std::size_t(tokens) * q_row), std::vector<float>(std::size_t(tokens) * k_row)};
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (std::size_t i = 0; i < q_row; ++i) out.q[t * q_row + i] = normal(rng) * q_scale_[layer * q_row + i];
    for (std::size_t i = 0; i < k_row; ++i) out.k[t * k_row + i] = normal(rng) * k_scale_[layer * k_row + i];
  }
  return out;
}

QKChunk PlantedQK::rotated(const QKChunk& projections, std::int64_t first) const {
  QKChunk out = projections;
  const int d = shape_.head_dim;
  const auto turn = [&](std::vector<float>& x, int heads) {
    const std::int64_t tokens = std::int64_t(x.size()) / (std::int64_t(heads) * d);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (int h = 0; h < heads; ++h)
        apply_rope(x.data() + (t * heads + h) * d, d, first + t, calibration::HeadLayout::hugging_face);
  };
  turn(out.q, shape_.q_heads);
  turn(out.k, shape_.kv_heads);
  return out;
}

calibration::ChannelStatistics calibrate(const PlantedQK& model, std::int64_t tokens, std::int64_t chunk,
                                         std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  calibration::StatisticsAccumulator acc(model.shape());
  for (int l = 0; l < model.shape().layers; ++l)
    for (std::int64_t first = 0; first < tokens; first += chunk) {
      const std::int64_t n = std::min(chunk, tokens - first);
      const QKChunk before = model.projections(l, n, rng);
      const QKChunk after = model.rotated(before, first);
      acc.add_projections(l, n, before.q, before.k);
      acc.add_rotated(l, n, after.q, after.k);
    }
  return acc.means();
}

}  // namespace dso::test
