#pragma once
// 16-bit storage <-> fp32 on the device, one 16-byte vector (8 elements) at a
// time: the width at which a warp's loads coalesce into whole sectors.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace dso::gpu {

// The unsigned type that moves `BYTES` bytes in one load.
template <int BYTES>
struct VecOf;
template <>
struct VecOf<16> {
  using type = uint4;
};
template <>
struct VecOf<8> {
  using type = uint2;
};
template <>
struct VecOf<4> {
  using type = std::uint32_t;
};
template <>
struct VecOf<2> {
  using type = std::uint16_t;
};

template <class T>
__device__ __forceinline__ float to_f32(T x);
template <>
__device__ __forceinline__ float to_f32<__half>(__half x) {
  return __half2float(x);
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Two packed elements (low half first) to fp32.
template <class T>
__device__ __forceinline__ float2 unpack2(std::uint32_t bits);
template <>
__device__ __forceinline__ float2 unpack2<__half>(std::uint32_t bits) {
  __half2 h;
  static_assert(sizeof(h) == sizeof(bits));
  memcpy(&h, &bits, sizeof(bits));
  return __half22float2(h);
}
template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(std::uint32_t bits) {
  return make_float2(__uint_as_float(bits << 16), __uint_as_float(bits & 0xffff0000u));
}

// A read-only 16-byte load that has L2 fetch the whole aligned block of
// BLOCK bytes around it (128 or 256): a scattered row then costs one DRAM
// request instead of one per 128-byte line.
template <int BLOCK>
__device__ __forceinline__ uint4 load_in_block(const uint4* p) {
  static_assert(BLOCK == 128 || BLOCK == 256);
  uint4 v;
  if constexpr (BLOCK == 256)
    asm("ld.global.nc.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  else
    asm("ld.global.nc.L2::128B.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

template <class T>
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const float2 a = unpack2<T>(v.x), b = unpack2<T>(v.y), c = unpack2<T>(v.z), d = unpack2<T>(v.w);
  f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = c.x, f[5] = c.y, f[6] = d.x, f[7] = d.y;
}

}  // namespace dso::gpu
