#include "model/prefix_recorder.h"

#include <algorithm>

#include "core/error.h"

namespace dso {

PrefillObserver PrefixRecorder::observer() {
  return [this](const PrefillActivations& a) { record(a); };
}

void PrefixRecorder::keep(int sequence, CachedPrefix& into, std::int64_t tokens) {
  require(sequence >= 0 && tokens >= 0, "cannot keep a prefix of ", tokens, " tokens of sequence ", sequence);
  if (targets_.size() <= std::size_t(sequence)) targets_.resize(std::size_t(sequence) + 1);
  const auto size = std::size_t(config_.layers) * std::size_t(tokens) * config_.kv_heads * config_.head_dim;
  into.tokens = tokens;
  into.k.assign(size, 0.0f);
  into.v.assign(size, 0.0f);
  targets_[std::size_t(sequence)] = &into;
}

void PrefixRecorder::record(const PrefillActivations& a) {
  if (std::size_t(a.sequence) >= targets_.size() || targets_[std::size_t(a.sequence)] == nullptr) return;
  CachedPrefix& prefix = *targets_[std::size_t(a.sequence)];
  require(a.first + a.tokens <= prefix.tokens, "sequence ", a.sequence, " prefilled tokens up to ",
          a.first + a.tokens, ", more than the ", prefix.tokens, " it was to keep");
  const std::int64_t kv_dim = std::int64_t(config_.kv_heads) * config_.head_dim;
  const std::int64_t at = (std::int64_t(a.layer) * prefix.tokens + a.first) * kv_dim;
  std::copy(a.k.begin(), a.k.end(), prefix.k.begin() + at);
  std::copy(a.v.begin(), a.v.end(), prefix.v.begin() + at);
}

}  // namespace dso
