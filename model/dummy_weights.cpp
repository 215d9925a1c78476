#include "model/dummy_weights.h"

#include <cmath>

#include "core/error.h"
#include "model/weight_source.h"

namespace dso {

namespace {

constexpr std::int32_t kHashRange = std::int32_t(1) << 23;  // |hash| below this

class DummyWeights final : public WeightSource {
 public:
  DummyWeights(const LlamaConfig& config, std::uint64_t seed) : config_(config), seed_(seed) { config_.validate(); }

  const LlamaConfig& config() const override { return config_; }
  bool is_dummy() const override { return true; }
  bool tied_lm_head() const override { return false; }

  void read(WeightKind kind, int layer, std::span<float> out) const override {
    check_weight_read(config_, kind, layer, out);
    const DummyRecipe r = dummy_recipe(config_, seed_, kind, layer);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = dummy_value(r, std::int64_t(i));
  }

  std::optional<DummyRecipe> recipe(WeightKind kind, int layer) const override {
    return dummy_recipe(config_, seed_, kind, layer);
  }

 private:
  LlamaConfig config_;
  std::uint64_t seed_;
};

}  // namespace

DummyRecipe dummy_recipe(const LlamaConfig& config, std::uint64_t seed, WeightKind kind, int layer) {
  const std::uint64_t tensor = (std::uint64_t(is_layer_weight(kind) ? layer + 1 : 0) << 4) | std::uint64_t(kind);
  if (is_norm_weight(kind)) {
    // 1 + hash * 2^-25: a power-of-two step and an exact bias, in [0.75, 1.25).
    return {seed, tensor, 4 * kHashRange, std::ldexp(1.0f, -25)};
  }
  // Uniform in [-a, a) has standard deviation a / sqrt(3).
  const double std_dev = kind == WeightKind::token_embedding ? 1.0 : 1.0 / std::sqrt(double(weight_shape(config, kind).cols));
  return {seed, tensor, 0, float(std_dev * std::sqrt(3.0) / kHashRange)};
}

std::unique_ptr<WeightSource> dummy_weights(const LlamaConfig& config, std::uint64_t seed) {
  return std::make_unique<DummyWeights>(config, seed);
}

}  // namespace dso
