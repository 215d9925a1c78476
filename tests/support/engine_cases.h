#pragma once
// The configurations the engine tests sweep: GQA groups 1, 3 and 4, awkward
// head dims and prefill lengths (0, 1, primes), budgets with and without sink
// and recent tokens, fixed k and k as a fraction of the context.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/engine_harness.h"

namespace dso::test {

struct EngineCase {
  std::string name;
  AttentionShape shape;
  std::vector<std::int64_t> prefill;  // per sequence: the batch is its size
  TokenBudget budget;
  double k_fraction = 0;
  int r = 1;
  std::vector<int> sync_layers{0};
  int steps = 5;

  std::int64_t capacity() const {
    std::int64_t most = 0;
    for (std::int64_t n : prefill) most = std::max(most, n);
    return most + steps + 3;
  }
};

inline std::vector<EngineCase> engine_cases() {
  return {
      {"group1", {3, 2, 2, 16}, {37, 1}, {0, 0, 0}, 0.2, 2, {0}},
      {"group3", {3, 6, 2, 10}, {101, 0, 29}, {0, 1, 3}, 1.0 / 16, 3, {0}},
      {"group4", {4, 4, 1, 32}, {211}, {7, 2, 5}, 0, 4, {0, 2}},
  };
}

inline const std::vector<std::uint64_t> engine_seeds{11, 12, 13};

template <class T>
EngineConfig case_config(const EngineCase& c, const DecodeInputs<T>& in, Policy policy) {
  EngineConfig config = make_config(in, policy, c.capacity(), c.r);
  config.budget = c.budget;
  config.k_fraction = c.k_fraction;
  config.sync_layers = c.sync_layers;
  return config;
}

template <class T>
DecodeInputs<T> case_inputs(const EngineCase& c, std::uint64_t seed, bool q_next_is_true_query) {
  return make_inputs<T>(c.shape, int(c.prefill.size()), c.prefill, c.steps, seed, q_next_is_true_query);
}

// |got - want| <= atol + rtol |want| with tolerances a little above the
// output's rounding for the dtype; reports the first miss of each tensor.
template <class T>
void expect_close(const std::vector<T>& got, const std::vector<double>& want) {
  const double tol = std::is_same_v<T, Half> ? 2e-3 : 1.6e-2;
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = to_float(got[i]);
    if (!(std::abs(g - want[i]) <= tol + tol * std::abs(want[i]))) {
      ADD_FAILURE() << "element " << i << ": got " << g << ", want " << want[i];
      return;
    }
  }
}

template <class T>
void expect_bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].bits != b[i].bits) {
      ADD_FAILURE() << "element " << i << ": " << to_float(a[i]) << " vs " << to_float(b[i]);
      return;
    }
}

inline std::string trace(const EngineCase& c, std::uint64_t seed, Policy p) {
  return c.name + " seed " + std::to_string(seed) + " policy " + std::string(policy_name(p));
}

}  // namespace dso::test
