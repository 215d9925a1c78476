#pragma once
// One Decoder implementation per backend. make_decoder validates the options
// and checks memory, then hands them to one of these, which may assume both.
#include <memory>

#include "model/decoder.h"

namespace dso {

std::unique_ptr<Decoder> make_cpu_decoder(const WeightSource& weights, const DecoderOptions& options);
std::unique_ptr<Decoder> make_gpu_decoder(const WeightSource& weights, const DecoderOptions& options);

}  // namespace dso
