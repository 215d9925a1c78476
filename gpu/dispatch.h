#pragma once
// Runtime shape and type values become template constants here and nowhere
// else; an unsupported value is a dso::Error naming it, never a silent no-op.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"

namespace dso::gpu {

template <int N>
using IntConstant = std::integral_constant<int, N>;

inline bool head_dim_supported(int head_dim) { return head_dim == 64 || head_dim == 128; }

template <class F>
decltype(auto) dispatch_head_dim(int head_dim, F&& f) {
  switch (head_dim) {
    case 64:
      return f(IntConstant<64>{});
    case 128:
      return f(IntConstant<128>{});
    default:
      fail("head_dim ", head_dim, " is not supported by the GPU kernels (64 or 128)");
  }
}

inline bool group_supported(int group) { return group >= 1 && group <= 8; }

// The GQA group size rounded up to the register tile the kernel is built for
// (1, 2, 4 or 8 query heads per KV head); the kernel masks the unused heads.
template <class F>
decltype(auto) dispatch_group(int group, F&& f) {
  switch (group) {
    case 1:
      return f(IntConstant<1>{});
    case 2:
      return f(IntConstant<2>{});
    case 3:
    case 4:
      return f(IntConstant<4>{});
    case 5:
    case 6:
    case 7:
    case 8:
      return f(IntConstant<8>{});
    default:
      fail("GQA group ", group, " is not supported by the GPU kernels (1 to 8 query heads per KV head)");
  }
}

// dso::Half and dso::BFloat16 have the layouts of __half and __nv_bfloat16.
static_assert(sizeof(Half) == sizeof(__half) && alignof(Half) == alignof(std::uint16_t));
static_assert(sizeof(BFloat16) == sizeof(__nv_bfloat16));

// The device type a host storage type is read as: float stays float.
template <class T>
struct DeviceTypeOf {
  using type = T;
};
template <>
struct DeviceTypeOf<Half> {
  using type = __half;
};
template <>
struct DeviceTypeOf<BFloat16> {
  using type = __nv_bfloat16;
};
template <class T>
using device_t = typename DeviceTypeOf<T>::type;

template <class F>
decltype(auto) dispatch_storage(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f16:
      return f(__half{});
    case DType::bf16:
      return f(__nv_bfloat16{});
    default:
      fail("storage dtype ", int(dtype), " is not supported by the GPU kernels (f16 or bf16)");
  }
}

}  // namespace dso::gpu
