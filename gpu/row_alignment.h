#pragma once
// Kernels that move rows as 16-byte vectors need every row start 16-byte
// aligned: the base address, and each stride a multiple of 8 two-byte elements.
#include <cstdint>

#include "core/error.h"
#include "gpu/rows.h"

namespace dso::gpu {

inline bool vector_aligned(const void* data, const RowStrides& s) {
  return data && reinterpret_cast<std::uintptr_t>(data) % 16 == 0 && s.sequence % 8 == 0 && s.head % 8 == 0 &&
         s.token % 8 == 0;
}

template <class RowsView>
void require_vector_rows(const RowsView& rows, const char* what) {
  require(vector_aligned(rows.data, rows.strides), what,
          ": rows must be 16-byte aligned (non-null base, strides multiples of 8 elements); got strides (",
          rows.strides.sequence, ", ", rows.strides.head, ", ", rows.strides.token, ")");
}

}  // namespace dso::gpu
