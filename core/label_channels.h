#pragma once
// The label channels of every (layer, KV head): the r key channels whose values
// the label cache keeps, chosen by calibration (calibration/ turns a channel
// config file into one of these).
#include <cstdint>
#include <span>
#include <vector>

#include "core/shape.h"

namespace dso {

struct LabelChannels {
  int layers = 0;
  int kv_heads = 0;
  int r = 0;
  std::vector<int> index;  // [layers][kv_heads][r], each in [0, head_dim), no repeats within a head

  std::span<const int> of(int layer, int kv_head) const {
    return {index.data() + (std::int64_t(layer) * kv_heads + kv_head) * r, std::size_t(r)};
  }

  void validate(const AttentionShape& shape) const {
    require(layers == shape.layers && kv_heads == shape.kv_heads, "label channels are for ", layers,
            " layers x ", kv_heads, " KV heads, the model has ", shape.layers, " x ", shape.kv_heads);
    require(r > 0 && r <= shape.head_dim, "label channel count r=", r, " must be in [1, ", shape.head_dim,
            "]");
    require(index.size() == std::size_t(layers) * kv_heads * r, "label channel table has ", index.size(),
            " entries, expected ", std::size_t(layers) * kv_heads * r);
    for (int l = 0; l < layers; ++l)
      for (int h = 0; h < kv_heads; ++h) {
        std::vector<bool> seen(shape.head_dim, false);
        for (int c : of(l, h)) {
          require(c >= 0 && c < shape.head_dim, "label channel ", c, " of layer ", l, " head ", h,
                  " is outside [0, ", shape.head_dim, ")");
          require(!seen[c], "label channel ", c, " repeats in layer ", l, " head ", h);
          seen[c] = true;
        }
      }
  }

  // Channels 0..r-1 everywhere: for synthetic runs that have no calibration.
  static LabelChannels leading(const AttentionShape& shape, int r) {
    LabelChannels lc{shape.layers, shape.kv_heads, r, {}};
    lc.index.reserve(std::size_t(shape.layers) * shape.kv_heads * r);
    for (int i = 0; i < shape.layers * shape.kv_heads; ++i)
      for (int c = 0; c < r; ++c) lc.index.push_back(c);
    return lc;
  }
};

}  // namespace dso
