#pragma once
// From measured statistics to channel orders: what calibration stores.
#include <span>
#include <vector>

#include "calibration/channel_config.h"
#include "calibration/statistics.h"

namespace dso::calibration {

// Channel indices by descending value; equal values keep the lower channel
// first, so that an order never depends on the sort's whims.
std::vector<int> order_by_descending(std::span<const double> values);

// The full order of every (layer, head) of the q, k and qk statistics: the
// channel config a calibration run writes.
ChannelConfig config_from_statistics(const ChannelStatistics& statistics, std::string source = "calibration");

}  // namespace dso::calibration
