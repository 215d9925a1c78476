#pragma once
// The rows of a layer's query projection that its speculative query needs
// (ds_offload, docs/architecture.md): q̂ = RoPE(W_q x) is read by the label scorer at
// the label channels only, and RoPE mixes channel c with its partner
// (c + d/2) mod d, so only the rows of those pairs are multiplied. Packed once
// at load, shared by the CPU and GPU backends.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/label_channels.h"
#include "core/shape.h"

namespace dso {

// Pair k of the pack is HF channel pair (pair_channel[k], pair_channel[k] + d/2)
// of query head pair_head[k]; weight rows 2k and 2k + 1 are the W_q rows of
// those two channels. Pairs are ordered by head, then channel.
template <class W>
struct SpeculativeQueryPack {
  int q_heads = 0;
  int head_dim = 0;
  std::int64_t hidden = 0;
  std::vector<std::int32_t> pair_head;
  std::vector<std::int32_t> pair_channel;
  std::vector<W> weight;  // [2 * pairs()][hidden]

  std::int64_t pairs() const { return std::int64_t(pair_head.size()); }
  std::int64_t rows() const { return 2 * pairs(); }
};

// w_q: [q_heads * head_dim][hidden], HF layout, of the layer whose query is
// predicted; its label channels are channels.of(layer, kv_head), shared by the
// kv_head's group of query heads.
template <class W>
SpeculativeQueryPack<W> pack_speculative_query(const W* w_q, std::int64_t hidden, const AttentionShape& shape,
                                               const LabelChannels& channels, int layer) {
  shape.validate();
  channels.validate(shape);
  require(layer >= 0 && layer < shape.layers, "speculative query of layer ", layer, ", the model has ", shape.layers,
          " layers");
  require(hidden > 0, "speculative query: hidden size ", hidden, " must be positive");
  const int d = shape.head_dim, half = d / 2;
  SpeculativeQueryPack<W> pack{shape.q_heads, d, hidden, {}, {}, {}};
  for (int h = 0; h < shape.q_heads; ++h) {
    std::vector<bool> needed(half, false);
    for (int c : channels.of(layer, h / shape.group())) needed[c % half] = true;
    for (int i = 0; i < half; ++i)
      if (needed[i]) {
        pack.pair_head.push_back(h);
        pack.pair_channel.push_back(i);
      }
  }
  const auto row_bytes = std::size_t(hidden) * sizeof(W);
  pack.weight.resize(std::size_t(pack.rows()) * hidden);
  for (std::int64_t k = 0; k < pack.pairs(); ++k)
    for (int j = 0; j < 2; ++j) {
      const std::int64_t src_row = std::int64_t(pack.pair_head[k]) * d + pack.pair_channel[k] + j * half;
      std::memcpy(pack.weight.data() + (2 * k + j) * hidden, w_q + src_row * hidden, row_bytes);
    }
  return pack;
}

}  // namespace dso
