#pragma once
// One GPU buffer that a layer's K/V is fetched into for attention: K and V
// rows [sequence][kv_head][rows][head_dim], and, for sparse fetches, the
// selection they were fetched for. What it holds is tagged on the host (the
// layer and the cache lengths it was filled for), and its `ready` event marks
// the end of the fill on whichever stream ran it.
#include <cstdint>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "gpu/memory.h"
#include "gpu/rows.h"

namespace dso {

struct SlotShape {
  DType dtype = DType::f16;
  int sequences = 0;
  int kv_heads = 0;
  int head_dim = 0;
  std::int64_t rows = 0;  // per (sequence, KV head)
  bool sparse = true;     // holds a selection (indices, counts) beside the rows
};

class FetchSlot {
 public:
  explicit FetchSlot(const SlotShape& shape);

  static std::int64_t device_bytes(const SlotShape& shape);

  const SlotShape& shape() const { return shape_; }
  gpu::Rows keys() const { return {keys_.data(), strides()}; }
  gpu::Rows values() const { return {values_.data(), strides()}; }
  gpu::RowStrides strides() const { return gpu::RowStrides::dense(shape_.kv_heads, shape_.rows, shape_.head_dim); }

  // Sparse slots, [sequences][kv_heads][rows]: the selected positions, ascending.
  std::int32_t* indices() const { return indices_.as<std::int32_t>(); }
  // Sparse slots, [sequences][kv_heads] each: the selection's size, the rows
  // fetched from the host (its first ones), and the rows attention reads.
  std::int32_t* selected() const { return counts_.as<std::int32_t>(); }
  std::int32_t* fetched() const { return counts_.as<std::int32_t>() + heads(); }
  std::int32_t* attended() const { return counts_.as<std::int32_t>() + 2 * heads(); }

  // The layer and per-sequence cache lengths it was last filled for.
  void tag(int layer, std::span<const std::int64_t> lengths);
  bool holds(int layer, std::span<const std::int64_t> lengths) const;

  const gpu::Event& ready() const { return ready_; }
  // Recorded after the last work that reads the slot; a new fill waits for it.
  const gpu::Event& released() const { return released_; }

 private:
  std::int64_t heads() const { return std::int64_t(shape_.sequences) * shape_.kv_heads; }

  SlotShape shape_;
  gpu::DeviceBuffer keys_;
  gpu::DeviceBuffer values_;
  gpu::DeviceBuffer indices_;
  gpu::DeviceBuffer counts_;
  int layer_ = -1;
  std::vector<std::int64_t> lengths_;
  gpu::Event ready_;
  gpu::Event released_;
};

}  // namespace dso
