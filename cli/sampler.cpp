#include "cli/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace dso::cli {

void SamplingOptions::check() const {
  require(std::isfinite(temperature) && temperature >= 0, "--temperature must be 0 (greedy) or more, got ",
          temperature);
  require(top_k >= 0, "--top-k must be 0 (every token) or more, got ", top_k);
  require(top_p > 0 && top_p <= 1, "--top-p must be in (0, 1], got ", top_p);
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), random_(options.seed) {
  options_.check();
  require(!options_.greedy(), "greedy decoding takes the decoder's own argmax, not a sampler");
}

std::int32_t Sampler::next(std::span<const float> logits) {
  require(!logits.empty(), "no logits to sample from");
  for (std::size_t i = 0; i < logits.size(); ++i)
    require(std::isfinite(logits[i]), "the logit of token ", i, " is ", logits[i], ": cannot sample");
  std::vector<std::int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  // Ties go to the lower id, as greedy decoding breaks them.
  const auto more_likely = [&](std::int32_t a, std::int32_t b) {
    return logits[std::size_t(a)] > logits[std::size_t(b)] || (logits[std::size_t(a)] == logits[std::size_t(b)] && a < b);
  };
  std::size_t kept = order.size();
  if (options_.top_k > 0) kept = std::min(kept, std::size_t(options_.top_k));
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(kept), order.end(), more_likely);
  order.resize(kept);
  const double top = logits[std::size_t(order.front())];
  std::vector<double> weight(kept);
  double total = 0;
  for (std::size_t i = 0; i < kept; ++i)
    total += weight[i] = std::exp((double(logits[std::size_t(order[i])]) - top) / options_.temperature);
  // The nucleus: the most likely tokens until their share reaches top_p (the
  // first token always stays).
  double share = 0;
  std::size_t nucleus = 0;
  while (nucleus < kept && (nucleus == 0 || share < options_.top_p)) share += weight[nucleus++] / total;
  double mass = 0;
  for (std::size_t i = 0; i < nucleus; ++i) mass += weight[i];

  // 53 random bits as a double in [0, 1): the same on every standard library.
  const double u = double(random_() >> 11) * 0x1.0p-53 * mass;
  double sum = 0;
  for (std::size_t i = 0; i < nucleus; ++i)
    if ((sum += weight[i]) > u) return order[i];
  return order[nucleus - 1];
}

}  // namespace dso::cli
