#pragma once
// The newest tokens of every (sequence, layer, KV head), where the cuda
// backend keeps them on the GPU for the host-resident sparse policies: at
// selection time the current token is not in host memory yet, and the recent
// window is attended every step, so neither is fetched. A ring of `size`
// tokens (recent + 1: the recent window and the current token).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace dso {

template <class T>
class CpuWindow {
 public:
  CpuWindow() = default;
  CpuWindow(int sequences, int layers, int kv_heads, int head_dim, std::int64_t size)
      : layers_(layers),
        kv_heads_(kv_heads),
        head_dim_(head_dim),
        size_(size),
        keys_(std::size_t(sequences) * layers * kv_heads * size * head_dim),
        values_(keys_.size()),
        end_(std::size_t(sequences) * layers, 0) {}

  // k, v: [count][kv_heads][head_dim], positions position .. position+count-1;
  // only the newest `size` stay.
  void append(int sequence, int layer, std::int64_t position, const T* k, const T* v, std::int64_t count) {
    for (std::int64_t t = std::max<std::int64_t>(0, count - size_); t < count; ++t)
      for (int h = 0; h < kv_heads_; ++h) {
        const std::int64_t at = offset(sequence, layer, h, position + t);
        const std::int64_t from = (t * kv_heads_ + h) * head_dim_;
        std::memcpy(&keys_[at], k + from, sizeof(T) * head_dim_);
        std::memcpy(&values_[at], v + from, sizeof(T) * head_dim_);
      }
    end_[std::size_t(sequence) * layers_ + layer] = position + count;
  }

  // Copies positions [begin, end) of one head into k_out, v_out ([end - begin][head_dim]).
  void copy(int sequence, int layer, int kv_head, std::int64_t begin, std::int64_t end, T* k_out, T* v_out) const {
    const std::int64_t held_end = end_[std::size_t(sequence) * layers_ + layer];
    require(begin >= held_end - size_ && end <= held_end, "window holds positions [", held_end - size_, ", ",
            held_end, "), asked for [", begin, ", ", end, ")");
    for (std::int64_t p = begin; p < end; ++p) {
      const std::int64_t at = offset(sequence, layer, kv_head, p);
      std::memcpy(k_out + (p - begin) * head_dim_, &keys_[at], sizeof(T) * head_dim_);
      std::memcpy(v_out + (p - begin) * head_dim_, &values_[at], sizeof(T) * head_dim_);
    }
  }

 private:
  std::int64_t offset(int sequence, int layer, int kv_head, std::int64_t position) const {
    const std::int64_t head = (std::int64_t(sequence) * layers_ + layer) * kv_heads_ + kv_head;
    return (head * size_ + position % size_) * head_dim_;
  }

  int layers_ = 0;
  int kv_heads_ = 0;
  int head_dim_ = 0;
  std::int64_t size_ = 0;
  std::vector<T> keys_;
  std::vector<T> values_;
  std::vector<std::int64_t> end_;  // one past the newest position held, per (sequence, layer)
};

}  // namespace dso
