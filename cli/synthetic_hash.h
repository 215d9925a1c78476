#pragma once
// The element formula of the synthetic tensors, shared by SyntheticTensors on
// the host and the device fill, so that both backends of a run see the same
// numbers: every element is a hash of (seed, tensor, layer, row, head, channel).
#include <cstdint>

#include "core/host_device.h"

namespace dso::cli {

DSO_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr float synthetic_outlier_scale = 4.0f;

// The key of one tensor: kind, and the sequence (cached tensors) or step (step tensors).
DSO_HOST_DEVICE inline std::uint64_t synthetic_tensor_key(std::uint64_t seed, std::uint64_t kind, std::uint64_t a) {
  return splitmix64(splitmix64(seed ^ kind) ^ a);
}

DSO_HOST_DEVICE inline std::uint64_t synthetic_row_key(std::uint64_t tensor, int layer, std::int64_t row) {
  return splitmix64(tensor ^ ((std::uint64_t(layer) << 32) + std::uint64_t(row)));
}

// Uniform in [-sqrt(3), sqrt(3)) (unit variance), scaled up on planted channels.
// Every step is exact or a single rounding, so host and device agree bit for bit.
DSO_HOST_DEVICE inline float synthetic_element(std::uint64_t row_key, int head, int head_dim, int channel,
                                               bool outlier) {
  const std::uint64_t bits = splitmix64(row_key + std::uint64_t(head) * std::uint64_t(head_dim) + std::uint64_t(channel));
  const float x = float(double(bits >> 11) * 0x1.0p-53 * 2.0 - 1.0) * 1.7320508f;
  return outlier ? x * synthetic_outlier_scale : x;
}

}  // namespace dso::cli
