#pragma once
// Rotary position embedding in the Hugging Face head layout, shared by the CPU
// and GPU backends so that both rotate by the same angles.
//
// HF layout ("rotate_half"): channel i < d/2 pairs with channel i + d/2, and
// pair i turns by pos * theta^(-2i/d). GGUF files written by llama.cpp's
// converter store each head's Q/K rows reordered so that pairs sit side by
// side (2i, 2i+1) for llama.cpp's interleaved RoPE; the maps below move a
// channel between the two layouts, so a loader can un-permute the rows once and
// the runtime (label channels included) speaks the HF layout only.
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "core/host_device.h"


namespace dso {

// What RoPE rotates: x is [batch][heads][head_dim], sequence b at positions[b]
// (a host pointer for the CPU backend, a device pointer for the GPU one).
struct RopeSpec {
  int batch = 0;
  int heads = 0;
  int head_dim = 0;
  const std::int32_t* positions = nullptr;
  float theta = 10000.0f;

  void validate() const {
    require(batch > 0 && heads > 0 && head_dim > 0, "RoPE shape must be positive: batch=", batch, " heads=", heads,
            " head_dim=", head_dim);
    require(head_dim % 2 == 0, "RoPE needs an even head_dim, got ", head_dim);
    require(positions != nullptr, "RoPE needs the positions of the ", batch, " sequences");
    require(theta > 0.0f, "RoPE theta must be positive, got ", theta);
  }
};

// cos and sin of pair `pair` at position `pos`. The angle is formed in double:
// at 256K positions an fp32 angle would be off by ~0.01 rad.
struct RopeRotation {
  float cos;
  float sin;
};

DSO_HOST_DEVICE inline RopeRotation rope_rotation(std::int64_t pos, int pair, int head_dim, float theta) {
  const double angle = double(pos) * ::pow(double(theta), -2.0 * double(pair) / double(head_dim));
  return {float(::cos(angle)), float(::sin(angle))};
}

// Rotates one pair (lo = channel i, hi = channel i + d/2) in place.
DSO_HOST_DEVICE inline void rope_rotate(float& lo, float& hi, RopeRotation r) {
  const float a = lo, b = hi;
  lo = a * r.cos - b * r.sin;
  hi = b * r.cos + a * r.sin;
}

// GGUF row 2i + j of a head holds HF row j * d/2 + i (j in {0, 1}): llama.cpp's
// converter reshapes each head's rows to [2][d/2] and swaps the two axes.
constexpr int hf_channel_of_gguf(int gguf_channel, int head_dim) {
  return (gguf_channel % 2) * (head_dim / 2) + gguf_channel / 2;
}

constexpr int gguf_channel_of_hf(int hf_channel, int head_dim) {
  const int half = head_dim / 2;
  return hf_channel < half ? 2 * hf_channel : 2 * (hf_channel - half) + 1;
}

static_assert(gguf_channel_of_hf(hf_channel_of_gguf(5, 8), 8) == 5);
static_assert(hf_channel_of_gguf(1, 64) == 32 && gguf_channel_of_hf(32, 64) == 1);

}  // namespace dso
