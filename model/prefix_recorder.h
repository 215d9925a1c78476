#pragma once
// Keeps the K/V that prefills hand the engine, so that decoders of other
// policies can start from the same prefixes (Decoder::restore_prefix) without
// running the model over them again: an evaluation prefills each window or
// prompt once, densely, and decodes the rest under every setting it sweeps.
#include <cstdint>
#include <vector>

#include "model/decoder.h"

namespace dso {

class PrefixRecorder {
 public:
  explicit PrefixRecorder(const LlamaConfig& config) : config_(config) {}

  // For DecoderOptions::prefill_observer; the recorder must outlive the decoder.
  PrefillObserver observer();

  // Prefills of `sequence`, `tokens` tokens long, are kept in `into` (sized
  // here) until keep names another prefix for it; prefills of sequences never
  // named are not kept.
  void keep(int sequence, CachedPrefix& into, std::int64_t tokens);

 private:
  void record(const PrefillActivations& a);

  LlamaConfig config_;
  std::vector<CachedPrefix*> targets_;  // by sequence
};

}  // namespace dso
