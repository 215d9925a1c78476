#include "prefetch/fetch_slot.h"

#include <algorithm>

#include "core/checked_math.h"

namespace dso {

namespace {

std::int64_t row_bytes(const SlotShape& s) {
  return checked_product("a fetch buffer", s.sequences, s.kv_heads, s.rows, s.head_dim, dtype_size(s.dtype));
}

std::int64_t index_bytes(const SlotShape& s) {
  return s.sparse ? checked_product("a fetch buffer's indices", s.sequences, s.kv_heads, s.rows, 4) : 0;
}

std::int64_t count_bytes(const SlotShape& s) {
  return s.sparse ? checked_product("a fetch buffer's counts", 3, s.sequences, s.kv_heads, 4) : 0;
}

}  // namespace

std::int64_t FetchSlot::device_bytes(const SlotShape& shape) {
  std::int64_t total = checked_sum("a fetch buffer", row_bytes(shape), row_bytes(shape));
  total = checked_sum("a fetch buffer", total, index_bytes(shape));
  return checked_sum("a fetch buffer", total, count_bytes(shape));
}

FetchSlot::FetchSlot(const SlotShape& shape)
    : shape_(shape),
      keys_(std::size_t(row_bytes(shape))),
      values_(std::size_t(row_bytes(shape))),
      indices_(std::size_t(index_bytes(shape))),
      counts_(std::size_t(count_bytes(shape))) {}

void FetchSlot::tag(int layer, std::span<const std::int64_t> lengths) {
  layer_ = layer;
  lengths_.assign(lengths.begin(), lengths.end());
}

bool FetchSlot::holds(int layer, std::span<const std::int64_t> lengths) const {
  return layer_ == layer && std::equal(lengths_.begin(), lengths_.end(), lengths.begin(), lengths.end());
}

}  // namespace dso
