#pragma once
// What the K/V cache and the label cache store per element, apart from the
// activations' DType (core/dtype.h). Today the two 16-bit types, stored as
// the activations come; an 8-bit format (fp8, or int8 with per-token scales)
// gets its value and size here, and its conversions where the cache is
// written and read.
#include <cstdint>
#include <string_view>

#include "core/dtype.h"
#include "core/error.h"

namespace dso {

enum class KVFormat : std::uint8_t { f16, bf16 };

constexpr std::string_view kv_format_name(KVFormat f) {
  switch (f) {
    case KVFormat::f16: return "f16";
    case KVFormat::bf16: return "bf16";
  }
  return "unknown";
}

// Bytes of one stored element; throws dso::Error for a value that is no KVFormat.
inline int kv_format_size(KVFormat f) {
  switch (f) {
    case KVFormat::f16: return int(sizeof(Half));
    case KVFormat::bf16: return int(sizeof(BFloat16));
  }
  fail("K/V format ", int(f), " has no size (f16 or bf16)");
}

// The format that stores a dtype's values as they are.
inline KVFormat kv_format_of(DType t) {
  switch (t) {
    case DType::f16: return KVFormat::f16;
    case DType::bf16: return KVFormat::bf16;
  }
  fail("dtype ", int(t), " has no K/V format (f16 or bf16)");
}

}  // namespace dso
