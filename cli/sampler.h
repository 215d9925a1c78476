#pragma once
// The next token drawn from a decode step's logits: from softmax(logits /
// temperature) restricted to the top_k most likely tokens and then to the
// smallest set of them whose probability reaches top_p. (Temperature 0,
// greedy decoding, is the decoder's own argmax and needs no sampler.) Draws come from a seeded generator whose sequence is fixed
// by the standard, so a seed gives the same text on every machine.
#include <cstdint>
#include <random>
#include <span>

namespace dso::cli {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy
  int top_k = 0;           // 0: every token
  double top_p = 1;        // 1: no nucleus cut
  std::uint64_t seed = 1;

  bool greedy() const { return temperature == 0; }
  // Throws dso::Error naming the option that is out of range.
  void check() const;
};

class Sampler {
 public:
  // Throws dso::Error for options out of range, and for greedy ones.
  explicit Sampler(const SamplingOptions& options);
  // `logits`: one sequence's [vocab]; all must be finite.
  std::int32_t next(std::span<const float> logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 random_;
};

}  // namespace dso::cli
