#include "model/calibrate.h"

#include <algorithm>

#include "core/error.h"

namespace dso {

calibration::ChannelStatistics calibrate(const WeightSource& weights, DecoderOptions options,
                                         std::span<const std::int32_t> tokens, std::int64_t block,
                                         const CalibrationProgress& progress) {
  require(block > 0, "calibration block must be positive, got ", block);
  require(!tokens.empty(), "calibration needs text: no tokens were given");
  const LlamaConfig& config = weights.config();
  calibration::StatisticsAccumulator statistics(config.attention());
  const std::int64_t planned = std::int64_t(tokens.size()) * config.layers;
  std::int64_t done = 0;

  EngineConfig& e = options.engine;
  e.policy = Policy::dense_gpu;
  e.batch = 1;
  e.capacity = std::min<std::int64_t>(block, std::int64_t(tokens.size()));
  e.budget = {};
  e.k_fraction = 0;
  e.channels = {};
  e.selector = Selector::labels;
  options.prefill_observer = [&](const PrefillActivations& a) {
    statistics.add_projections(a.layer, a.tokens, a.q_proj, a.k_proj);
    statistics.add_rotated(a.layer, a.tokens, a.q, a.k);
    done += a.tokens;
    if (progress) progress(done, planned);
  };
  const auto decoder = make_decoder(weights, options);
  for (std::size_t begin = 0; begin < tokens.size(); begin += std::size_t(e.capacity)) {
    decoder->reset(1);
    decoder->prefill(0, tokens.subspan(begin, std::min(tokens.size() - begin, std::size_t(e.capacity))));
  }
  return statistics.means();
}

}  // namespace dso
