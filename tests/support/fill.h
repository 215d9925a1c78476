#pragma once
// Seeded random tensors for tests. Seeds are fixed and printed on failure
// (SCOPED_TRACE at the call site), never taken from the clock.
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.h"

namespace dso::test {

template <class T>
std::vector<T> random_tensor(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<T> out(n);
  for (auto& x : out) x = from_float<T>(dist(rng));
  return out;
}

template <class T>
std::vector<double> widen(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = double(to_float(v[i]));
  return out;
}

}  // namespace dso::test
