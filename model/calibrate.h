#pragma once
// Calibration of a model's label channels (docs/architecture.md, selection): the model runs over
// calibration text a block at a time, each block a fresh sequence fed by
// prefill (dense attention), and every layer's queries and keys of every
// prefill chunk feed the statistics: before RoPE for q and k, after RoPE for
// qk. Channels are numbered the Hugging Face way, as the weights are.
#include <cstdint>
#include <functional>
#include <span>

#include "calibration/statistics.h"
#include "model/decoder.h"
#include "model/weight_source.h"

namespace dso {

// Called after every layer of every prefill chunk with the work done and the
// work planned, in token-layers.
using CalibrationProgress = std::function<void(std::int64_t done, std::int64_t planned)>;

// Runs every token of `tokens` through the model, in blocks of `block` tokens
// (the last one may be shorter). `options` gives the backend, dtype and
// prefill chunk; the engine is made dense, for one sequence of `block`
// tokens, whatever else it says. Throws before any work where there is
// nothing to calibrate on or the block is not positive.
calibration::ChannelStatistics calibrate(const WeightSource& weights, DecoderOptions options,
                                         std::span<const std::int32_t> tokens, std::int64_t block,
                                         const CalibrationProgress& progress = {});

}  // namespace dso
