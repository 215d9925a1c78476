// The CPU backend's prefill operations against the paths they replace: the
// BLAS product against matmul (model_ops.h), the softmax's exp against
// std::exp, and the tiled, threaded causal attention against dense_attention
// (attention.h), query by query, on random inputs; they differ by summation
// order and the exp's last bit, so within a rounding tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "cpu/attention.h"
#include "cpu/exp_nonpositive.h"
#include "cpu/gemm.h"
#include "cpu/model_ops.h"
#include "cpu/parallel.h"
#include "cpu/prefill_attention.h"
#include "support/fill.h"

namespace dso {
namespace {

using test::random_tensor;

// The largest |got - want| over the largest |want|.
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double scale = 0, err = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, double(std::abs(want[i])));
    err = std::max(err, std::abs(double(got[i]) - double(want[i])));
  }
  return err / std::max(scale, 1e-30);
}

TEST(Parallel, RunsEveryItemOnceOnAnyThreadCount) {
  EXPECT_GE(cpu::available_cores(), 1);
  EXPECT_EQ(cpu::resolve_threads(0), cpu::available_cores());
  EXPECT_EQ(cpu::resolve_threads(5), 5);
  for (int threads : {0, 1, 3, 64}) {
    SCOPED_TRACE(threads);
    std::vector<std::atomic<int>> seen(1000);
    cpu::parallel_for(std::int64_t(seen.size()), threads, [&](std::int64_t i) { ++seen[std::size_t(i)]; });
    for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i;
  }
  int calls = 0;
  cpu::parallel_for(0, 4, [&](std::int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(Parallel, RethrowsABodysErrorAfterEveryThreadStops) {
  std::atomic<int> ran{0};
  EXPECT_THROW(cpu::parallel_for(100, 3,
                                 [&](std::int64_t i) {
                                   ++ran;
                                   if (i == 7) fail("item ", i);
                                 }),
               Error);
  EXPECT_GE(ran.load(), 8);
}

struct GemmCase {
  std::int64_t out, in, rows;
  int threads;
};

// fp32 sums of up to 1536 products of O(1) numbers in two orders.
constexpr double kGemmTolerance = 1e-5;

TEST(GemmCpu, EqualsMatmulUpToRoundingAndOverwritesOrAccumulates) {
  // Widths off the 16-column split, and products large enough to be split
  // over threads (1536 x 576 x 64 is 14 threads' worth).
  const GemmCase cases[] = {{100, 37, 5, 1}, {100, 37, 5, 3}, {1536, 576, 64, 2}, {576, 1536, 64, 3}, {33, 8, 1, 2}};
  std::uint64_t seed = 1;
  for (const GemmCase& c : cases) {
    SCOPED_TRACE(testing::Message() << c.out << " x " << c.in << ", " << c.rows << " rows, " << c.threads
                                    << " threads");
    const auto w = random_tensor<float>(std::size_t(c.out * c.in), ++seed);
    const auto x = random_tensor<float>(std::size_t(c.rows * c.in), ++seed);
    const auto base = random_tensor<float>(std::size_t(c.rows * c.out), ++seed);
    for (bool accumulate : {false, true}) {
      SCOPED_TRACE(accumulate ? "accumulate" : "overwrite");
      std::vector<float> want = base, got = base;
      // Overwriting must not read y: NaN there must not survive.
      if (!accumulate) std::fill(got.begin(), got.end(), std::numeric_limits<float>::quiet_NaN());
      cpu::matmul(w.data(), c.out, c.in, x.data(), int(c.rows), want.data(), accumulate, 1);
      cpu::gemm(w.data(), c.out, c.in, x.data(), c.rows, got.data(), accumulate, c.threads);
      EXPECT_LT(relative_error(got, want), kGemmTolerance);
    }
  }
}

TEST(GemmCpu, RefusesEmptyShapes) {
  std::vector<float> w(4), x(4), y(4);
  EXPECT_THROW(cpu::gemm(w.data(), 2, 2, x.data(), 0, y.data(), false, 1), Error);
  EXPECT_THROW(cpu::gemm(w.data(), 0, 2, x.data(), 2, y.data(), false, 1), Error);
}

TEST(ExpNonpositive, IsWithinTwoUlpOfStdExpDownToMinus87) {
  // Every float of [-87, 0] was checked once (1 ulp at worst); a grid here.
  constexpr int points = 200000;
  for (int i = 0; i <= points; ++i) {
    const float x = -87.0f * float(i) / points;
    const float want = std::exp(x), ulp = std::nextafter(want, 2.0f) - want;
    ASSERT_LE(std::abs(cpu::exp_nonpositive(x) - want), 2 * ulp) << "x = " << x;
  }
  EXPECT_EQ(cpu::exp_nonpositive(0.0f), 1.0f);
  // Under -87 exp is below FLT_MIN; the clamp keeps the result tiny, positive.
  EXPECT_EQ(cpu::exp_nonpositive(-1e30f), cpu::exp_nonpositive(-87.0f));
  EXPECT_LT(cpu::exp_nonpositive(-87.0f), 2e-38f);
  EXPECT_GT(cpu::exp_nonpositive(-87.0f), 0.0f);
}

struct AttentionCase {
  int q_heads, kv_heads, d;
  std::int64_t first, rows, stride;
};

// The attention outputs are averages of O(1) values; the two paths differ in
// the order of fp32 sums over at most a few hundred keys.
constexpr double kAttentionTolerance = 2e-5;

// dense_attention of each query over the keys up to its position.
std::vector<float> query_by_query(const std::vector<float>& q, const AttentionCase& c, const std::vector<float>& k,
                                  const std::vector<float>& v) {
  const int group = c.q_heads / c.kv_heads;
  std::vector<float> out(q.size());
  for (std::int64_t t = 0; t < c.rows; ++t)
    for (int h = 0; h < c.kv_heads; ++h) {
      const std::int64_t at = (t * c.q_heads + std::int64_t(h) * group) * c.d;
      const std::int64_t head = std::int64_t(h) * c.stride * c.d;
      cpu::dense_attention(q.data() + at, group, c.d, k.data() + head, v.data() + head, c.first + t + 1,
                           out.data() + at);
    }
  return out;
}

TEST(PrefillAttentionCpu, EqualsDenseAttentionQueryByQuery) {
  // One query; a chunk ending inside a query tile; chunks crossing the
  // 256-key block at the diagonal and well past it; GQA groups of 1, 3 and 4.
  const AttentionCase cases[] = {{2, 2, 16, 0, 1, 1},    {6, 2, 16, 0, 45, 50},  {6, 2, 16, 300, 70, 400},
                                 {4, 1, 64, 200, 100, 300}, {8, 2, 32, 0, 257, 257}, {3, 3, 8, 600, 5, 605}};
  std::uint64_t seed = 100;
  for (const AttentionCase& c : cases) {
    SCOPED_TRACE(testing::Message() << c.q_heads << "/" << c.kv_heads << " heads of " << c.d << ", " << c.rows
                                    << " queries from " << c.first);
    // Queries of scale 2 give peaked softmaxes, where the running maximum moves.
    const auto q = random_tensor<float>(std::size_t(c.rows * c.q_heads * c.d), ++seed, 2.0f);
    const auto k = random_tensor<float>(std::size_t(c.kv_heads * c.stride * c.d), ++seed);
    const auto v = random_tensor<float>(k.size(), ++seed);
    const std::vector<float> want = query_by_query(q, c, k, v);
    std::vector<float> one_thread;
    for (int threads : {1, 3}) {
      SCOPED_TRACE(testing::Message() << threads << " threads");
      std::vector<float> got(q.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::prefill_attention(q.data(), c.rows, {c.q_heads, c.kv_heads, c.d}, k.data(), v.data(), c.stride, c.first,
                             got.data(), threads);
      EXPECT_LT(relative_error(got, want), kAttentionTolerance);
      // Each tile is computed alone, so the thread count changes nothing.
      if (threads == 1)
        one_thread = got;
      else
        EXPECT_EQ(got, one_thread);
    }
  }
}

TEST(PrefillAttentionCpu, RefusesKeysPastTheStrideAndUnevenGroups) {
  std::vector<float> q(64), kv(64), out(64);
  EXPECT_THROW(cpu::prefill_attention(q.data(), 2, {2, 2, 8}, kv.data(), kv.data(), 3, 2, out.data(), 1), Error);
  EXPECT_THROW(cpu::prefill_attention(q.data(), 1, {3, 2, 8}, kv.data(), kv.data(), 4, 0, out.data(), 1), Error);
}

}  // namespace
}  // namespace dso
