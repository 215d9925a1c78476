#pragma once
// The newest tokens of every (sequence, layer, KV head), where the cuda
// backend keeps them on the GPU for the host-resident sparse policies: at
// selection time the current token is not in host memory yet, and the recent
// window is attended every step, so neither is fetched. A ring of `size`
// tokens (recent + 1: the recent window and the current token).
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/shape.h"
#include "cpu/window_ring.h"

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
    for (int h = 0; h < kv_heads_; ++h)
      cpu::append_to_ring<T>({keys_.data() + at(sequence, layer, h), values_.data() + at(sequence, layer, h), size_,
                              head_dim_},
                             position, k + h * head_dim_, v + h * head_dim_,
                             std::int64_t(kv_heads_) * head_dim_, count);
    end_[std::size_t(sequence) * layers_ + layer] = position + count;
  }

  // Behind the `fetched` rows of k_out, v_out ([rows][head_dim]): the window
  // of one head once the step's token, position n, is held. Returns the rows
  // attention reads.
  std::int64_t assemble(int sequence, int layer, int kv_head, std::int64_t n, const TokenBudget& budget,
                        std::int64_t fetched, T* k_out, T* v_out) const {
    const std::int64_t held_end = end_[std::size_t(sequence) * layers_ + layer];
    require(held_end == n + 1 && window_rows(budget.recent) <= size_, "window holds positions [",
            held_end - size_, ", ", held_end, "), asked for the window of ", budget.recent,
            " recent tokens before position ", n);
    const std::int64_t head = at(sequence, layer, kv_head);
    return cpu::assemble_window<T>({keys_.data() + head, values_.data() + head, size_, head_dim_}, n, budget.sink,
                                   budget.recent, fetched, k_out, v_out);
  }

 private:
  // Where one head's ring starts in keys_ and values_.
  std::int64_t at(int sequence, int layer, int kv_head) const {
    return ((std::int64_t(sequence) * layers_ + layer) * kv_heads_ + kv_head) * size_ * head_dim_;
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
