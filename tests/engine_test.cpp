// Every policy of the cpu backend against a float64 reference built from the
// algorithm's rules, and the policies against each other where the design says
// they must agree.
#include <gtest/gtest.h>

#include "support/engine_cases.h"
#include "support/engine_reference.h"

namespace dso::test {
namespace {

constexpr Policy all_policies[] = {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload,
                                   Policy::ds_offload_sync};

template <class T>
class EngineTest : public ::testing::Test {};
using DTypes = ::testing::Types<Half, BFloat16>;
TYPED_TEST_SUITE(EngineTest, DTypes);

// ds_offload gets a q_next unrelated to the next layer's query, so its
// speculative layers select differently from the others; the reference
// selects with that q_next too.
TYPED_TEST(EngineTest, EveryPolicyMatchesFloat64Reference) {
  using T = TypeParam;
  for (const EngineCase& c : engine_cases())
    for (std::uint64_t seed : engine_seeds) {
      const auto in = case_inputs<T>(c, seed, false);
      for (Policy p : all_policies) {
        SCOPED_TRACE(trace(c, seed, p));
        const EngineConfig config = case_config(c, in, p);
        const auto run = run_engine(config, in);
        const auto ref = reference_run(config, in);
        for (std::size_t i = 0; i < run.out.size(); ++i) expect_close(run.out[i], ref.out[i]);
      }
    }
}

TYPED_TEST(EngineTest, FlexgenEqualsDenseGpu) {
  using T = TypeParam;
  for (const EngineCase& c : engine_cases())
    for (std::uint64_t seed : engine_seeds) {
      SCOPED_TRACE(trace(c, seed, Policy::flexgen));
      const auto in = case_inputs<T>(c, seed, true);
      const auto dense = run_engine(case_config(c, in, Policy::dense_gpu), in);
      const auto flexgen = run_engine(case_config(c, in, Policy::flexgen), in);
      for (std::size_t i = 0; i < dense.out.size(); ++i) expect_bitwise_equal(flexgen.out[i], dense.out[i]);
    }
}

TYPED_TEST(EngineTest, OffloadSyncEqualsDsGpu) {
  using T = TypeParam;
  for (const EngineCase& c : engine_cases())
    for (std::uint64_t seed : engine_seeds) {
      SCOPED_TRACE(trace(c, seed, Policy::ds_offload_sync));
      const auto in = case_inputs<T>(c, seed, false);
      const auto gpu = run_engine(case_config(c, in, Policy::ds_gpu), in);
      const auto offload = run_engine(case_config(c, in, Policy::ds_offload_sync), in);
      for (std::size_t i = 0; i < gpu.out.size(); ++i) expect_bitwise_equal(offload.out[i], gpu.out[i]);
    }
}

// A perfect speculation (q_next is the next layer's true query) leaves
// nothing for prefetching to change.
TYPED_TEST(EngineTest, OffloadWithTrueNextQueryEqualsDsGpu) {
  using T = TypeParam;
  for (const EngineCase& c : engine_cases())
    for (std::uint64_t seed : engine_seeds) {
      SCOPED_TRACE(trace(c, seed, Policy::ds_offload));
      const auto in = case_inputs<T>(c, seed, true);
      const auto gpu = run_engine(case_config(c, in, Policy::ds_gpu), in);
      const auto offload = run_engine(case_config(c, in, Policy::ds_offload), in);
      for (std::size_t i = 0; i < gpu.out.size(); ++i) expect_bitwise_equal(offload.out[i], gpu.out[i]);
    }
}

// With a budget covering the whole context, every token is selected and the
// sparse policies are dense attention.
TYPED_TEST(EngineTest, FullBudgetEqualsDense) {
  using T = TypeParam;
  for (EngineCase c : engine_cases()) {
    c.budget.k = c.capacity();
    c.k_fraction = 0;
    for (std::uint64_t seed : engine_seeds) {
      const auto in = case_inputs<T>(c, seed, false);
      const auto dense = run_engine(case_config(c, in, Policy::dense_gpu), in);
      for (Policy p : {Policy::ds_gpu, Policy::ds_offload, Policy::ds_offload_sync}) {
        SCOPED_TRACE(trace(c, seed, p));
        const auto run = run_engine(case_config(c, in, p), in);
        for (std::size_t i = 0; i < dense.out.size(); ++i) {
          std::vector<double> want(dense.out[i].size());
          for (std::size_t j = 0; j < want.size(); ++j) want[j] = to_float(dense.out[i][j]);
          expect_close(run.out[i], want);
        }
      }
    }
  }
}

}  // namespace
}  // namespace dso::test
