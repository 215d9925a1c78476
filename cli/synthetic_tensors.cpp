#include "cli/synthetic_tensors.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cli/synthetic_hash.h"

namespace dso::cli {

SyntheticTensors::SyntheticTensors(const AttentionShape& shape, DType dtype, std::uint64_t seed, int outliers)
    : shape_(shape), dtype_(dtype), seed_(seed), outlier_(std::size_t(shape.layers) * shape.kv_heads * shape.head_dim) {
  for (int lh = 0; lh < shape.layers * shape.kv_heads; ++lh) {
    std::vector<int> channels(std::size_t(shape.head_dim));
    std::iota(channels.begin(), channels.end(), 0);
    // A seeded shuffle, so that the planted channels differ per head.
    for (int i = shape.head_dim - 1; i > 0; --i) {
      const std::uint64_t pick = splitmix64(seed ^ splitmix64(std::uint64_t(lh) * 131 + std::uint64_t(i)));
      std::swap(channels[std::size_t(i)], channels[pick % std::uint64_t(i + 1)]);
    }
    for (int i = 0; i < std::min(outliers, shape.head_dim); ++i)
      outlier_[std::size_t(lh) * shape.head_dim + std::size_t(channels[std::size_t(i)])] = true;
  }
}

void SyntheticTensors::fill(TensorKind kind, std::uint64_t a, int layer, std::int64_t rows, std::int64_t first_row,
                            int heads, int group, void* out) const {
  const bool plant = kind != TensorKind::value && kind != TensorKind::new_value;
  const std::uint64_t tensor = synthetic_tensor_key(seed_, std::uint64_t(kind), a);
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::uint64_t row = synthetic_row_key(tensor, layer, first_row + r);
      for (int h = 0; h < heads; ++h) {
        const std::size_t planted = (std::size_t(layer) * shape_.kv_heads + std::size_t(h / group)) * shape_.head_dim;
        for (int c = 0; c < shape_.head_dim; ++c)
          *o++ = from_float<T>(synthetic_element(row, h, shape_.head_dim, c, plant && outlier_[planted + std::size_t(c)]));
      }
    }
  });
}

void SyntheticTensors::cached(TensorKind kind, int sequence, int layer, std::int64_t begin, std::int64_t count,
                              void* out) const {
  fill(kind, std::uint64_t(sequence), layer, count, begin, shape_.kv_heads, 1, out);
}

void SyntheticTensors::step(TensorKind kind, std::int64_t step, int layer, int batch, void* out) const {
  const bool query = kind == TensorKind::query;
  fill(kind, std::uint64_t(step), layer, batch, 0, query ? shape_.q_heads : shape_.kv_heads,
       query ? shape_.group() : 1, out);
}

std::vector<std::uint8_t> SyntheticTensors::outlier_mask() const {
  return std::vector<std::uint8_t>(outlier_.begin(), outlier_.end());
}

LabelChannels SyntheticTensors::calibrate(int r, std::int64_t sample) const {
  LabelChannels lc{shape_.layers, shape_.kv_heads, r, {}};
  std::vector<std::uint16_t> keys(std::size_t(sample) * shape_.kv_heads * shape_.head_dim);
  for (int l = 0; l < shape_.layers; ++l) {
    cached(TensorKind::key, 0, l, 0, sample, keys.data());
    for (int h = 0; h < shape_.kv_heads; ++h) {
      std::vector<double> mean_abs(std::size_t(shape_.head_dim), 0.0);
      dispatch_dtype(dtype_, [&](auto tag) {
        using T = decltype(tag);
        const T* k = reinterpret_cast<const T*>(keys.data());
        for (std::int64_t t = 0; t < sample; ++t)
          for (int c = 0; c < shape_.head_dim; ++c)
            mean_abs[std::size_t(c)] += std::abs(to_float(k[(t * shape_.kv_heads + h) * shape_.head_dim + c]));
      });
      std::vector<int> order(std::size_t(shape_.head_dim));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return mean_abs[std::size_t(a)] > mean_abs[std::size_t(b)]; });
      lc.index.insert(lc.index.end(), order.begin(), order.begin() + r);
    }
  }
  return lc;
}

}  // namespace dso::cli
