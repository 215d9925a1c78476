#include "calibration/channel_order.h"

#include <algorithm>
#include <numeric>

namespace dso::calibration {

std::vector<int> order_by_descending(std::span<const double> values) {
  std::vector<int> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [values](int a, int b) { return values[a] > values[b]; });
  return order;
}

ChannelConfig config_from_statistics(const ChannelStatistics& statistics, std::string source) {
  const AttentionShape& shape = statistics.shape;
  ChannelConfig config{std::move(source), shape.layers, {}};
  for (Statistic s : all_statistics) {
    ProjectionOrders orders{heads_of(s, shape), shape.head_dim, {}};
    orders.index.reserve(std::size_t(shape.layers) * orders.heads * orders.channels);
    for (int l = 0; l < shape.layers; ++l)
      for (int h = 0; h < orders.heads; ++h) {
        const std::vector<int> order = order_by_descending(statistics.of(s, l, h));
        orders.index.insert(orders.index.end(), order.begin(), order.end());
      }
    config.projections.emplace(std::string(projection_name(s)), std::move(orders));
  }
  return config;
}

}  // namespace dso::calibration
