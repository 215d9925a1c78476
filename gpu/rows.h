#pragma once
// How kernels see their tensors: rows of contiguous elements (a head's d
// channels, a token's r labels) addressed by (sequence, head, token) through
// 64-bit element strides, so one description covers the head-major host cache
// [sequence][layer][kv_head][capacity][d], the GPU label cache, the gathered
// buffers and the step's new tokens, and offsets beyond 2^31 stay exact.
#include <cstdint>

#include "core/host_device.h"

namespace dso::gpu {

struct RowStrides {
  std::int64_t sequence = 0;
  std::int64_t head = 0;
  std::int64_t token = 0;

  DSO_HOST_DEVICE std::int64_t offset(std::int64_t s, std::int64_t h, std::int64_t t) const {
    return s * sequence + h * head + t * token;
  }

  friend bool operator==(const RowStrides& a, const RowStrides& b) {
    return a.sequence == b.sequence && a.head == b.head && a.token == b.token;
  }

  // A [sequence][head][tokens][width] tensor stored densely.
  static RowStrides dense(int heads, std::int64_t tokens, int width) {
    return {std::int64_t(heads) * tokens * width, tokens * width, width};
  }
};

struct ConstRows {
  const void* data = nullptr;
  RowStrides strides;
};

struct Rows {
  void* data = nullptr;
  RowStrides strides;
};

// The tokens one step appends: `count` per sequence, the first of sequence s
// going to cache position positions[s] (a device array, so a captured step
// can be replayed as the sequences grow).
struct NewTokens {
  int sequences = 0;
  int kv_heads = 0;
  int count = 0;
  const std::int32_t* positions = nullptr;
};

}  // namespace dso::gpu
