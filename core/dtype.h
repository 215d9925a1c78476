#pragma once
// Storage types for K/V, labels and activations. Both are 16-bit patterns with
// the layout of CUDA's __half and __nv_bfloat16, so a host buffer of dso::Half
// can be handed to a kernel that reads __half. Arithmetic is always in fp32.
#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "core/error.h"

namespace dso {

enum class DType : std::uint8_t { f16, bf16 };

struct Half {
  std::uint16_t bits;
};
struct BFloat16 {
  std::uint16_t bits;
};

constexpr float to_float(float x) { return x; }

inline float to_float(Half h) {
  const std::uint32_t sign = std::uint32_t(h.bits & 0x8000u) << 16;
  std::uint32_t exp = (h.bits >> 10) & 0x1fu;
  std::uint32_t man = h.bits & 0x3ffu;
  std::uint32_t out;
  if (exp == 0x1f) {
    out = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    out = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    out = sign;
  } else {  // subnormal: renormalise
    exp = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      --exp;
    }
    out = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(out);
}

inline float to_float(BFloat16 b) { return std::bit_cast<float>(std::uint32_t(b.bits) << 16); }

template <class T>
T from_float(float x);

template <>
inline float from_float<float>(float x) {
  return x;
}

// Round to nearest even, as __float2half_rn does.
template <>
inline Half from_float<Half>(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return {std::uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u))};
  if (abs >= 0x477ff000u) return {std::uint16_t(sign | 0x7c00u)};  // rounds past 65504
  if (abs < 0x38800000u) {  // result is subnormal or zero
    const float f = std::bit_cast<float>(abs) * 16777216.0f;  // scale by 2^24
    const auto m = std::uint32_t(std::nearbyint(f));
    return {std::uint16_t(sign | m)};
  }
  std::uint32_t mant = abs + 0xc8000fffu + ((abs >> 13) & 1u);  // rebias exponent and round
  return {std::uint16_t(sign | (mant >> 13))};
}

template <>
inline BFloat16 from_float<BFloat16>(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {std::uint16_t((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return {std::uint16_t(u >> 16)};
}

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<Half>() {
  return DType::f16;
}
template <>
constexpr DType dtype_of<BFloat16>() {
  return DType::bf16;
}

// A DType value that no case below handles (a cast from outside the enum, or
// a dtype added without its case) is refused, named, instead of being taken
// for another.
[[noreturn]] inline void unhandled_dtype(DType t) { fail("dtype ", int(t), " is not handled"); }

inline std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
  }
  unhandled_dtype(t);
}

// Bytes of one element.
inline int dtype_size(DType t) {
  switch (t) {
    case DType::f16: return sizeof(Half);
    case DType::bf16: return sizeof(BFloat16);
  }
  unhandled_dtype(t);
}
static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2);

// Turns a runtime dtype into a template parameter, in one place.
template <class F>
decltype(auto) dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f16: return f(Half{});
    case DType::bf16: return f(BFloat16{});
  }
  unhandled_dtype(t);
}

}  // namespace dso
