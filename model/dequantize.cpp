#include "model/dequantize.h"

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

}  // namespace

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
