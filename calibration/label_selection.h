#pragma once
// The label channels S_j of every (layer, KV head), the first r channels of an
// order. Selection is per KV head (the fetch unit), so statistics kept per
// query head (q, qk) are combined over the group of query heads that share
// KV head j; the k statistic is per KV head already.
#include <cstdint>

#include "calibration/channel_config.h"
#include "calibration/statistics.h"
#include "core/label_channels.h"

namespace dso::calibration {

// From a config, which stores orders but not the values behind them: the
// group's orders are combined by rank sum. A channel scores the sum, over the
// group's query heads, of its position in that head's list (a channel a
// prefix list leaves out counts as one past its end); the lowest sum comes
// first, the lower channel on equal sums. With a group of one, or for k, this
// is the head's own list. r may not exceed the listed channels per head.
// Validates the config against the shape first.
LabelChannels label_channels_from_config(const ChannelConfig& config, const AttentionShape& shape, Statistic s, int r);

// From statistics at hand: channels by the group's summed statistic,
// descending, the lower channel on equal sums.
LabelChannels label_channels_from_statistics(const ChannelStatistics& statistics, Statistic s, int r);

// r distinct channels drawn uniformly for every (layer, KV head): the control
// that shows what calibration buys. The same seed gives the same channels on
// every platform (a fixed generator and a shuffle written out here).
LabelChannels random_label_channels(const AttentionShape& shape, int r, std::uint64_t seed);

}  // namespace dso::calibration
