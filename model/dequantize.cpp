#include "model/dequantize.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace dso {
namespace {

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

float load_half(const std::byte* p) { return to_float(Half{load<std::uint16_t>(p)}); }

// The block layouts are ggml's: a Q4 block keeps element j in the low nibble
// of byte j and element j+16 in the high nibble of the same byte.
template <TensorType type, class Out>
void decode_block(const std::byte* b, Out* y) {
  if constexpr (type == TensorType::f32) {
    y[0] = from_float<Out>(load<float>(b));
  } else if constexpr (type == TensorType::f16) {
    y[0] = from_float<Out>(load_half(b));
  } else if constexpr (type == TensorType::bf16) {
    y[0] = from_float<Out>(to_float(BFloat16{load<std::uint16_t>(b)}));
  } else if constexpr (type == TensorType::q8_0) {
    const float d = load_half(b);
    for (int j = 0; j < 32; ++j) y[j] = from_float<Out>(d * float(load<std::int8_t>(b + 2 + j)));
  } else if constexpr (type == TensorType::q4_0) {
    const float d = load_half(b);
    for (int j = 0; j < 16; ++j) {
      const auto q = std::uint8_t(b[2 + j]);
      y[j] = from_float<Out>(d * float(int(q & 0x0f) - 8));
      y[j + 16] = from_float<Out>(d * float(int(q >> 4) - 8));
    }
  } else if constexpr (type == TensorType::q4_1) {
    const float d = load_half(b);
    const float m = load_half(b + 2);
    for (int j = 0; j < 16; ++j) {
      const auto q = std::uint8_t(b[4 + j]);
      y[j] = from_float<Out>(d * float(q & 0x0f) + m);
      y[j + 16] = from_float<Out>(d * float(q >> 4) + m);
    }
  }
}

template <TensorType type, class Out>
void decode_blocks(std::span<const std::byte> src, std::span<Out> dst) {
  const TensorTypeInfo info = tensor_type_info(type);
  const std::size_t blocks = dst.size() / std::size_t(info.block_elements);
  for (std::size_t i = 0; i < blocks; ++i)
    decode_block<type>(src.data() + i * std::size_t(info.block_bytes), dst.data() + i * std::size_t(info.block_elements));
}

// Exponent bits all ones: NaN or infinity.
bool nonfinite_f32(std::uint32_t bits) { return (bits & 0x7f800000u) == 0x7f800000u; }
bool nonfinite_f16(std::uint16_t bits) { return (bits & 0x7c00u) == 0x7c00u; }
bool nonfinite_bf16(std::uint16_t bits) { return (bits & 0x7f80u) == 0x7f80u; }

// Where the halves at `offsets` of each block (its scale, and its minimum for
// q4_1) are, and the first block with a non-finite one.
template <class Bits, bool (*nonfinite)(Bits), int... offsets>
std::optional<std::int64_t> first_bad_block(std::span<const std::byte> src, std::size_t block_bytes) {
  const std::size_t blocks = src.size() / block_bytes;
  // A branch-free scan of a chunk first: the common case (all finite) runs at memory speed.
  constexpr std::size_t chunk = 4096;
  for (std::size_t first = 0; first < blocks; first += chunk) {
    const std::size_t end = std::min(blocks, first + chunk);
    bool bad = false;
    for (std::size_t i = first; i < end; ++i)
      bad |= (nonfinite(load<Bits>(src.data() + i * block_bytes + offsets)) || ...);
    if (!bad) continue;
    for (std::size_t i = first; i < end; ++i)
      if ((nonfinite(load<Bits>(src.data() + i * block_bytes + offsets)) || ...)) return std::int64_t(i);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> first_nonfinite(TensorType type, std::span<const std::byte> src) {
  const TensorTypeInfo info = tensor_type_info(type);
  const auto block_bytes = std::size_t(info.block_bytes);
  const std::optional<std::int64_t> block = [&]() -> std::optional<std::int64_t> {
    switch (type) {
      case TensorType::f32: return first_bad_block<std::uint32_t, nonfinite_f32, 0>(src, block_bytes);
      case TensorType::f16: return first_bad_block<std::uint16_t, nonfinite_f16, 0>(src, block_bytes);
      case TensorType::bf16: return first_bad_block<std::uint16_t, nonfinite_bf16, 0>(src, block_bytes);
      case TensorType::q8_0:
      case TensorType::q4_0: return first_bad_block<std::uint16_t, nonfinite_f16, 0>(src, block_bytes);
      case TensorType::q4_1: return first_bad_block<std::uint16_t, nonfinite_f16, 0, 2>(src, block_bytes);
    }
    return std::nullopt;
  }();
  if (!block) return std::nullopt;
  return *block * info.block_elements;
}

template <class Out>
void dequantize(TensorType type, std::span<const std::byte> src, std::span<Out> dst) {
  const TensorTypeInfo info = tensor_type_info(type);
  require(dst.size() % std::size_t(info.block_elements) == 0, "cannot dequantise ", dst.size(), " ", info.name,
          " elements: not a whole number of ", info.block_elements, "-element blocks");
  const std::size_t need = dst.size() / std::size_t(info.block_elements) * std::size_t(info.block_bytes);
  require(src.size() == need, "dequantising ", dst.size(), " ", info.name, " elements needs ", need,
          " bytes, got ", src.size());
  switch (type) {
    case TensorType::f32: return decode_blocks<TensorType::f32>(src, dst);
    case TensorType::f16: return decode_blocks<TensorType::f16>(src, dst);
    case TensorType::bf16: return decode_blocks<TensorType::bf16>(src, dst);
    case TensorType::q8_0: return decode_blocks<TensorType::q8_0>(src, dst);
    case TensorType::q4_0: return decode_blocks<TensorType::q4_0>(src, dst);
    case TensorType::q4_1: return decode_blocks<TensorType::q4_1>(src, dst);
  }
}

template void dequantize<float>(TensorType, std::span<const std::byte>, std::span<float>);
template void dequantize<Half>(TensorType, std::span<const std::byte>, std::span<Half>);
template void dequantize<BFloat16>(TensorType, std::span<const std::byte>, std::span<BFloat16>);

}  // namespace dso
