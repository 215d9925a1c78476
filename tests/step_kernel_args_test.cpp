// The bookkeeping kernels' launchers refuse what they cannot do before any
// CUDA call, so these run without a GPU: an element type outside the one
// dtype dispatch, a ring too small for the window, negative sizes.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "gpu/current_token.h"
#include "gpu/fetch_counts.h"
#include "gpu/window_assembly.h"
#include "gpu/window_ring.h"

#include "support/error_of.h"

namespace dso {
namespace {

using test::error_of;

constexpr DType kUnhandled = DType(7);

TEST(StepKernelArgs, RingAppendRefusesAnUnhandledDtypeEvenWithNothingToDo) {
  gpu::RingAppendArgs a;
  a.dtype = kUnhandled;
  a.ring.size = 4;
  EXPECT_NE(error_of([&] { gpu::append_to_ring(a, nullptr); }).find("storage dtype 7 is not supported"),
            std::string::npos);
  a.dtype = DType::bf16;
  a.ring.size = 0;
  EXPECT_NE(error_of([&] { gpu::append_to_ring(a, nullptr); }).find("size must be positive"), std::string::npos);
}

TEST(StepKernelArgs, WindowAssemblyRefusesAnUnhandledDtypeAndASmallRing) {
  gpu::WindowAssemblyArgs a;
  a.dtype = kUnhandled;
  a.head_dim = 64;
  a.recent = 3;
  a.ring.size = 4;
  EXPECT_NE(error_of([&] { gpu::assemble_window(a, nullptr); }).find("storage dtype 7 is not supported"),
            std::string::npos);
  a.dtype = DType::f16;
  a.ring.size = 3;
  EXPECT_NE(error_of([&] { gpu::assemble_window(a, nullptr); }).find("a ring of 3 rows cannot hold a window of"),
            std::string::npos);
}

TEST(StepKernelArgs, CountsRefuseNegativeSizesAndMissingArrays) {
  gpu::FetchCountArgs f;
  f.sequences = 1;
  f.kv_heads = 1;
  f.sink = -1;
  EXPECT_NE(error_of([&] { gpu::count_fetched(f, nullptr); }).find("negative budget"), std::string::npos);
  f.sink = 0;
  EXPECT_NE(error_of([&] { gpu::count_fetched(f, nullptr); }).find("null device pointer"), std::string::npos);
  gpu::CurrentTokenArgs c;
  c.sequences = -1;
  EXPECT_NE(error_of([&] { gpu::append_current_token(c, nullptr); }).find("negative sizes"), std::string::npos);
  c.sequences = 2;
  c.kv_heads = 1;
  EXPECT_NE(error_of([&] { gpu::append_current_token(c, nullptr); }).find("index stride must be positive"),
            std::string::npos);
}

}  // namespace
}  // namespace dso
