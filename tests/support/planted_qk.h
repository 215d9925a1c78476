#pragma once
// Synthetic Q/K activations with planted outlier channels, the structure that
// makes channel sparsity work in real models: in every (layer, KV head) a few
// RoPE pairs (i, i + d/2) carry `gain` times the magnitude of the other
// channels, in the keys and in every query head of the group. Other channels
// get a random per-head scale, so that heads differ.
#include <cstdint>
#include <random>
#include <vector>

#include "calibration/statistics.h"
#include "core/shape.h"

namespace dso::test {

struct QKChunk {
  std::vector<float> q;  // [tokens][q_heads][d]
  std::vector<float> k;  // [tokens][kv_heads][d]
};

class PlantedQK {
 public:
  PlantedQK(const AttentionShape& shape, int planted_pairs, float gain, std::uint64_t seed);

  // Activations of `layer` for positions first .. first+tokens-1, before RoPE.
  QKChunk projections(int layer, std::int64_t tokens, std::mt19937_64& rng) const;
  // The same chunk turned by RoPE (Hugging Face layout) at its positions.
  QKChunk rotated(const QKChunk& projections, std::int64_t first) const;

  // Ascending planted channels of one (layer, KV head): 2 * planted_pairs of them.
  const std::vector<int>& planted(int layer, int kv_head) const {
    return planted_[std::size_t(layer) * shape_.kv_heads + kv_head];
  }
  const AttentionShape& shape() const { return shape_; }

 private:
  AttentionShape shape_;
  std::vector<std::vector<int>> planted_;  // [layer][kv_head]
  std::vector<float> q_scale_;             // [layer][q_head][d]
  std::vector<float> k_scale_;             // [layer][kv_head][d]
};

// A calibration run over `tokens` tokens of every layer, fed in chunks of
// at most `chunk` tokens, as a model runner would feed it.
calibration::ChannelStatistics calibrate(const PlantedQK& model, std::int64_t tokens, std::int64_t chunk,
                                         std::uint64_t seed);

}  // namespace dso::test
