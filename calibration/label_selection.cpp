#include "calibration/label_selection.h"

#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "calibration/channel_order.h"
#include "core/error.h"

namespace dso::calibration {

namespace {

// Query heads j*group .. j*group+group-1 share KV head j; k rows are per KV head.
int rows_per_kv_head(Statistic s, const AttentionShape& shape) { return s == Statistic::k ? 1 : shape.group(); }

void check_r(int r, const AttentionShape& shape) {
  require(r > 0 && r <= shape.head_dim, "label channel count r=", r, " must be in [1, ", shape.head_dim, "]");
}

// Picks the first r of each (layer, KV head) order that `order_of` yields.
template <class OrderOf>
LabelChannels take_leading(const AttentionShape& shape, int r, OrderOf order_of) {
  LabelChannels out{shape.layers, shape.kv_heads, r, {}};
  out.index.reserve(std::size_t(shape.layers) * shape.kv_heads * r);
  for (int l = 0; l < shape.layers; ++l)
    for (int j = 0; j < shape.kv_heads; ++j) {
      const std::vector<int> order = order_of(l, j);
      out.index.insert(out.index.end(), order.begin(), order.begin() + r);
    }
  out.validate(shape);
  return out;
}

}  // namespace

LabelChannels label_channels_from_config(const ChannelConfig& config, const AttentionShape& shape, Statistic s, int r) {
  validate_channel_config(config, shape);
  check_r(r, shape);
  const ProjectionOrders& orders = config.orders(s);
  require(r <= orders.channels, config.source, ": ", projection_name(s), " lists ", orders.channels,
          " channels per head, fewer than r=", r);
  const int rows = rows_per_kv_head(s, shape);
  return take_leading(shape, r, [&](int l, int j) {
    // A rank sum is ordered ascending; negated it fits the descending order.
    std::vector<double> negated_rank_sum(shape.head_dim, 0.0);
    for (int h = j * rows; h < (j + 1) * rows; ++h) {
      std::vector<int> rank(shape.head_dim, orders.channels);
      const std::span<const int> list = orders.of(l, h);
      for (int position = 0; position < orders.channels; ++position) rank[list[position]] = position;
      for (int c = 0; c < shape.head_dim; ++c) negated_rank_sum[c] -= rank[c];
    }
    return order_by_descending(negated_rank_sum);
  });
}

LabelChannels label_channels_from_statistics(const ChannelStatistics& statistics, Statistic s, int r) {
  const AttentionShape& shape = statistics.shape;
  check_r(r, shape);
  const int rows = rows_per_kv_head(s, shape);
  return take_leading(shape, r, [&](int l, int j) {
    std::vector<double> group_sum(shape.head_dim, 0.0);
    for (int h = j * rows; h < (j + 1) * rows; ++h) {
      const std::span<const double> values = statistics.of(s, l, h);
      for (int c = 0; c < shape.head_dim; ++c) group_sum[c] += values[c];
    }
    return order_by_descending(group_sum);
  });
}

LabelChannels random_label_channels(const AttentionShape& shape, int r, std::uint64_t seed) {
  shape.validate();
  check_r(r, shape);
  std::mt19937_64 rng(seed);
  return take_leading(shape, r, [&](int, int) {
    // Fisher-Yates: std::shuffle's draws differ between standard libraries.
    std::vector<int> order(std::size_t(shape.head_dim));
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[std::size_t(rng() % (i + 1))]);
    return order;
  });
}

}  // namespace dso::calibration
