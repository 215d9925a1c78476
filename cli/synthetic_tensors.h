#pragma once
// Dummy tensors for speed runs (no model: "weights": "dummy"). Uniform noise of
// unit variance, with `outliers` channels per (layer, KV head) scaled up in
// the keys and in the queries of the head's group, as calibrated models show,
// so that label selection has something to find. Every element is a hash of
// (seed, tensor, position), so any chunk can be made alone, in any order, and
// every policy of a run sees the same numbers.
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/label_channels.h"
#include "core/shape.h"

namespace dso::cli {

enum class TensorKind : std::uint64_t { key = 1, value, query, new_key, new_value };

class SyntheticTensors {
 public:
  SyntheticTensors(const AttentionShape& shape, DType dtype, std::uint64_t seed, int outliers);

  // Cached keys or values of tokens [begin, begin + count) of one (sequence,
  // layer): [count][kv_heads][head_dim].
  void cached(TensorKind kind, int sequence, int layer, std::int64_t begin, std::int64_t count, void* out) const;
  // One decode step's query [batch][q_heads][head_dim], or new key or value
  // [batch][kv_heads][head_dim], of one layer.
  void step(TensorKind kind, std::int64_t step, int layer, int batch, void* out) const;
  // A cheap calibration: each head's r channels of largest mean |k| over the
  // first `sample` cached tokens of sequence 0.
  LabelChannels calibrate(int r, std::int64_t sample) const;

  const AttentionShape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  std::uint64_t seed() const { return seed_; }
  // [layer][kv_head][head_dim]: 1 where the channel is planted.
  std::vector<std::uint8_t> outlier_mask() const;

 private:
  void fill(TensorKind kind, std::uint64_t a, int layer, std::int64_t rows, std::int64_t first_row, int heads,
            int group, void* out) const;

  AttentionShape shape_;
  DType dtype_;
  std::uint64_t seed_;
  std::vector<bool> outlier_;  // [layer][kv_head][head_dim]
};

}  // namespace dso::cli
