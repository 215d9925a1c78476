#pragma once
// The exp of the prefill attention's softmax.
#include <bit>
#include <cstdint>

namespace dso::cpu {

// exp(x) for a score minus its row's maximum (x <= 0), within a few ulp of
// std::exp down to -87 (below, where exp is under FLT_MIN, it gives e^-87):
// Cody-Waite reduction to r in [-ln2/2, ln2/2], Cephes's degree-6
// polynomial, and 2^n put in the exponent bits. Unlike a call to std::exp,
// a loop of it vectorises (in a file compiled with -fno-trapping-math), and
// a prefill takes one per attended (query, key).
inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr float kLowest = -87.0f;      // 2^n stays a normal float above it
  const float clamped = x < kLowest ? kLowest : x;
  const float n = (clamped * kLog2e + kRound) - kRound;
  const float r = (clamped - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = (p * r * r + r) + 1.0f;
  const float scale = std::bit_cast<float>((std::int32_t(n) + 127) << 23);
  return y * scale;
}

}  // namespace dso::cpu
