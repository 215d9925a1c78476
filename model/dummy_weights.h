#pragma once
// Seeded random weights for speed runs of the built-in shapes (docs/architecture.md, the benchmark protocol:
// such runs say "weights": "dummy"). Every element is a hash of (seed, tensor,
// index) turned into a float by one int-to-float conversion and one multiply,
// each rounded once, so the host and the GPU compute the same bits: a CPU and
// a GPU decoder of one seed hold the same model, and the GPU makes its 16 GB
// of llama-3-8b weights in place, with no host copy.
//
// Scales keep activations sane: projections and the LM head are uniform with
// standard deviation 1/sqrt(in_features), the embedding with 1, norm weights
// uniform in [0.75, 1.25).
#include <cstdint>
#include <memory>

#include "core/host_device.h"
#include "model/llama_config.h"


namespace dso {

class WeightSource;
enum class WeightKind : std::uint8_t;

// value(i) = float(hash(seed, tensor, i) + bias) * step, hash in [-2^23, 2^23).
struct DummyRecipe {
  std::uint64_t seed = 0;
  std::uint64_t tensor = 0;  // distinct for every (kind, layer)
  std::int32_t bias = 0;
  float step = 0.0f;
};

DSO_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

DSO_HOST_DEVICE inline float dummy_value(const DummyRecipe& r, std::int64_t i) {
  // Indices stay below 2^40 (a trillion elements), tensor ids below 2^24.
  const std::uint64_t h = mix64(mix64(r.seed) ^ ((r.tensor << 40) + std::uint64_t(i)));
  const auto q = std::int32_t(h >> 40) - (std::int32_t(1) << 23);
  const float x = float(q + r.bias);
#if defined(__CUDA_ARCH__)
  return __fmul_rn(x, r.step);  // never contracted into a neighbouring add
#else
  return x * r.step;
#endif
}

DummyRecipe dummy_recipe(const LlamaConfig& config, std::uint64_t seed, WeightKind kind, int layer);

// Untied LM head, as the built-in shapes have.
std::unique_ptr<WeightSource> dummy_weights(const LlamaConfig& config, std::uint64_t seed);

}  // namespace dso
