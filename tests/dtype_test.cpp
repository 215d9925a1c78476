// dso::Half and dso::BFloat16 must convert exactly as CUDA's host conversions
// do, since GPU kernels and the CPU reference read the same bits.
#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <bit>
#include <cstring>
#include <random>

#include "core/dtype.h"
#include "support/error_of.h"

namespace dso {
namespace {

std::uint16_t bits_of(__half h) { return std::bit_cast<std::uint16_t>(h); }
std::uint16_t bits_of(__nv_bfloat16 h) { return std::bit_cast<std::uint16_t>(h); }

TEST(DType, EveryHalfWidensLikeCuda) {
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const float mine = to_float(Half{std::uint16_t(b)});
    const float cuda = __half2float(std::bit_cast<__half>(std::uint16_t(b)));
    if (std::isnan(cuda)) {
      ASSERT_TRUE(std::isnan(mine)) << std::hex << b;
    } else {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(mine), std::bit_cast<std::uint32_t>(cuda)) << std::hex << b;
    }
  }
}

TEST(DType, NarrowingRoundsLikeCuda) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2'000'000; ++i) {
    // Random bit patterns cover subnormals, overflow, infinities and ties.
    const float x = std::bit_cast<float>(std::uint32_t(rng()));
    if (std::isnan(x)) continue;
    ASSERT_EQ(from_float<Half>(x).bits, bits_of(__float2half_rn(x))) << x;
    ASSERT_EQ(from_float<BFloat16>(x).bits, bits_of(__float2bfloat16_rn(x))) << x;
  }
  for (float x : {65504.0f, 65519.0f, 65520.0f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, -0.0f}) {
    EXPECT_EQ(from_float<Half>(x).bits, bits_of(__float2half_rn(x))) << x;
  }
}

TEST(DType, BFloat16WidensExactly) {
  for (std::uint32_t b = 0; b < 0x10000u; b += 7) {
    const float f = to_float(BFloat16{std::uint16_t(b)});
    if (!std::isnan(f)) ASSERT_EQ(from_float<BFloat16>(f).bits, b);
  }
}

// A value outside the enum was taken for bf16 by the dispatch and given a
// size of 2 whatever it was.
TEST(DType, AValueNoCaseHandlesIsRefusedByName) {
  const DType unknown = DType(7);
  EXPECT_EQ(dtype_size(DType::f16), 2);
  EXPECT_EQ(dtype_size(DType::bf16), 2);
  EXPECT_EQ(dtype_name(DType::bf16), "bf16");
  EXPECT_EQ(dispatch_dtype(DType::f16, [](auto tag) { return dtype_of<decltype(tag)>(); }), DType::f16);
  EXPECT_EQ(dispatch_dtype(DType::bf16, [](auto tag) { return dtype_of<decltype(tag)>(); }), DType::bf16);
  EXPECT_EQ(test::error_of([&] { dtype_size(unknown); }), "dtype 7 is not handled");
  EXPECT_EQ(test::error_of([&] { dtype_name(unknown); }), "dtype 7 is not handled");
  EXPECT_EQ(test::error_of([&] { dispatch_dtype(unknown, [](auto) { return 0; }); }), "dtype 7 is not handled");
}

}  // namespace
}  // namespace dso
