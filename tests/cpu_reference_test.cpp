// The CPU backend is the reference for every GPU kernel, so it is itself
// checked against naive float64 formulas on fresh random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "cpu/attention.h"
#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/topk.h"
#include "support/fill.h"

namespace dso {
namespace {

using test::random_tensor;
using test::widen;

std::vector<int> random_channels(int d, int r, std::uint64_t seed) {
  std::vector<int> all(d);
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  return {all.begin(), all.begin() + r};
}

// Naive float64 attention of `group` heads over the given rows.
std::vector<double> reference_attention(const std::vector<double>& q, int group, int d, const std::vector<double>& k,
                                        const std::vector<double>& v, const std::vector<std::int32_t>& rows) {
  std::vector<double> out(std::size_t(group) * d, 0.0);
  for (int h = 0; h < group; ++h) {
    std::vector<double> logit(rows.size());
    double mx = -INFINITY;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      double s = 0;
      for (int c = 0; c < d; ++c) s += q[h * d + c] * k[std::size_t(rows[i]) * d + c];
      logit[i] = s / std::sqrt(double(d));
      mx = std::max(mx, logit[i]);
    }
    double den = 0;
    for (auto& l : logit) den += (l = std::exp(l - mx));
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (int c = 0; c < d; ++c) out[h * d + c] += logit[i] / den * v[std::size_t(rows[i]) * d + c];
  }
  return out;
}

double max_rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double scale = 0, err = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(double(got[i]) - want[i]));
  return err / std::max(scale, 1e-30);
}

struct ShapeCase {
  int group;
  int d;
  std::int64_t n;
};

class CpuReference : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(CpuReference, LabelsAreTheChosenKeyChannels) {
  const auto [group, d, n] = GetParam();
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    const int r = d / 16;
    auto keys = random_tensor<Half>(n * d, seed);
    auto channels = random_channels(d, r, seed + 100);
    std::vector<Half> labels(n * r, from_float<Half>(NAN));
    cpu::gather_labels(keys.data(), n, d, channels, labels.data());
    for (std::int64_t t = 0; t < n; ++t)
      for (int c = 0; c < r; ++c) ASSERT_EQ(labels[t * r + c].bits, keys[t * d + channels[c]].bits);
  }
}

TEST_P(CpuReference, ScoresSumTheGroupsQueriesOverLabelChannels) {
  const auto [group, d, n] = GetParam();
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE(seed);
    const int r = std::max(2, d / 16);
    auto q = random_tensor<BFloat16>(std::size_t(group) * d, seed);
    auto keys = random_tensor<BFloat16>(n * d, seed + 1);
    auto channels = random_channels(d, r, seed + 2);
    std::vector<BFloat16> labels(n * r);
    cpu::gather_labels(keys.data(), n, d, channels, labels.data());
    std::vector<float> scores(n, NAN);
    cpu::score_labels(q.data(), group, d, channels, labels.data(), n, scores.data());
    const auto qd = widen(q), kd = widen(keys);
    for (std::int64_t t = 0; t < n; ++t) {
      double want = 0, mag = 0;
      for (int h = 0; h < group; ++h)
        for (int c : channels) {
          want += qd[h * d + c] * kd[t * d + c];
          mag += std::abs(qd[h * d + c] * kd[t * d + c]);
        }
      ASSERT_NEAR(scores[t], want, 1e-5 * mag + 1e-6) << "token " << t;
    }
  }
}

TEST_P(CpuReference, SparseAttentionMatchesFloat64OverTheSelectedRows) {
  const auto [group, d, n] = GetParam();
  for (std::uint64_t seed : {21u, 22u, 23u}) {
    SCOPED_TRACE(seed);
    auto q = random_tensor<Half>(std::size_t(group) * d, seed);
    auto k = random_tensor<Half>(n * d, seed + 1);
    auto v = random_tensor<Half>(n * d, seed + 2);
    std::vector<std::int32_t> rows;
    std::mt19937_64 rng(seed);
    for (std::int32_t t = 0; t < n; ++t)
      if (rng() % 3 == 0 || t == 0) rows.push_back(t);
    std::vector<float> out(std::size_t(group) * d, NAN);
    cpu::sparse_attention(q.data(), group, d, k.data(), v.data(), rows.data(), std::int64_t(rows.size()), out.data());
    EXPECT_LT(max_rel_error(out, reference_attention(widen(q), group, d, widen(k), widen(v), rows)), 1e-3);
  }
}

TEST_P(CpuReference, DenseAttentionMatchesFloat64) {
  const auto [group, d, n] = GetParam();
  for (std::uint64_t seed : {31u, 32u}) {
    SCOPED_TRACE(seed);
    auto q = random_tensor<BFloat16>(std::size_t(group) * d, seed, 2.0f);
    auto k = random_tensor<BFloat16>(n * d, seed + 1);
    auto v = random_tensor<BFloat16>(n * d, seed + 2);
    std::vector<std::int32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    std::vector<float> out(std::size_t(group) * d, NAN);
    cpu::dense_attention(q.data(), group, d, k.data(), v.data(), n, out.data());
    EXPECT_LT(max_rel_error(out, reference_attention(widen(q), group, d, widen(k), widen(v), all)), 1e-3);
  }
}

TEST_P(CpuReference, SparseEqualsDenseWhenTheBudgetCoversEveryToken) {
  const auto [group, d, n] = GetParam();
  auto q = random_tensor<Half>(std::size_t(group) * d, 41);
  auto k = random_tensor<Half>(n * d, 42);
  auto v = random_tensor<Half>(n * d, 43);
  const int r = d / 16;
  auto channels = random_channels(d, r, 44);
  std::vector<Half> labels(n * r);
  cpu::gather_labels(k.data(), n, d, channels, labels.data());
  std::vector<float> scores(n);
  cpu::score_labels(q.data(), group, d, channels, labels.data(), n, scores.data());
  for (std::int64_t budget_k : {n, n + 5}) {
    std::vector<std::int32_t> idx(n);
    ASSERT_EQ(cpu::select_topk(scores.data(), n, {budget_k, 1, 2}, idx.data()), n);
    std::vector<float> sparse(std::size_t(group) * d), dense(std::size_t(group) * d);
    cpu::sparse_attention(q.data(), group, d, k.data(), v.data(), idx.data(), n, sparse.data());
    cpu::dense_attention(q.data(), group, d, k.data(), v.data(), n, dense.data());
    for (std::size_t i = 0; i < dense.size(); ++i) ASSERT_EQ(sparse[i], dense[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CpuReference,
                         ::testing::Values(ShapeCase{1, 64, 1}, ShapeCase{1, 128, 257}, ShapeCase{3, 64, 97},
                                           ShapeCase{3, 128, 1000}, ShapeCase{4, 64, 513},
                                           ShapeCase{4, 128, 130}),
                         [](const auto& info) {
                           return "g" + std::to_string(info.param.group) + "_d" + std::to_string(info.param.d) +
                                  "_n" + std::to_string(info.param.n);
                         });

// Top-k is tested by its properties, and against a brute-force ranking.
void check_selection(const std::vector<float>& s, const TokenBudget& b) {
  const auto n = std::int64_t(s.size());
  std::vector<std::int32_t> idx(selection_size(n, b) + 1, -7);
  const std::int64_t count = cpu::select_topk(s.data(), n, b, idx.data());
  ASSERT_EQ(count, selection_size(n, b));
  ASSERT_EQ(idx[count], -7) << "wrote past the selection";
  ASSERT_TRUE(std::is_sorted(idx.begin(), idx.begin() + count));
  ASSERT_EQ(std::adjacent_find(idx.begin(), idx.begin() + count), idx.begin() + count) << "repeated index";
  std::set<std::int32_t> chosen(idx.begin(), idx.begin() + count);
  const std::int64_t sink = std::min(n, b.sink), recent_begin = std::max(sink, n - b.recent);
  for (std::int64_t t = 0; t < n; ++t)
    if (t < sink || t >= recent_begin) ASSERT_TRUE(chosen.count(std::int32_t(t))) << "always-kept " << t;
  // Brute force: rank candidates by (score desc, index asc); the first k win.
  std::vector<std::int32_t> cand;
  for (std::int64_t t = sink; t < recent_begin; ++t) cand.push_back(std::int32_t(t));
  std::stable_sort(cand.begin(), cand.end(), [&](auto a, auto c) { return s[a] > s[c]; });
  const std::int64_t k = std::min<std::int64_t>(b.k, std::int64_t(cand.size()));
  for (std::int64_t i = 0; i < std::int64_t(cand.size()); ++i)
    ASSERT_EQ(chosen.count(cand[i]) == 1, i < k) << "candidate rank " << i << " token " << cand[i];
}

TEST(SelectTopk, MatchesBruteForceRankingOnRandomScores) {
  for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    for (std::int64_t n : {1, 2, 3, 17, 256, 257, 1000, 4099}) {
      std::vector<float> s(n);
      std::normal_distribution<float> dist;
      for (auto& x : s) x = dist(rng);
      for (TokenBudget b : {TokenBudget{1, 0, 0}, TokenBudget{n / 16, 0, 0}, TokenBudget{n / 16, 4, 8},
                            TokenBudget{n, 0, 0}, TokenBudget{n + 3, 2, 2}, TokenBudget{0, 3, 1},
                            TokenBudget{5, n, n}})
        check_selection(s, b);
    }
  }
}

TEST(SelectTopk, TiesGoToTheLowerIndex) {
  for (std::int64_t n : {5, 64, 1001}) {
    std::vector<float> flat(n, 0.5f);
    check_selection(flat, {n / 3 + 1, 0, 0});
    std::vector<std::int32_t> idx(n);
    const auto count = cpu::select_topk(flat.data(), n, {3, 0, 0}, idx.data());
    ASSERT_EQ(count, 3);
    EXPECT_EQ(idx[0], 0);
    EXPECT_EQ(idx[1], 1);
    EXPECT_EQ(idx[2], 2);
    std::vector<float> few(n);  // low entropy: three distinct values
    for (std::int64_t t = 0; t < n; ++t) few[t] = float(t % 3);
    check_selection(few, {n / 2, 1, 1});
  }
}

}  // namespace
}  // namespace dso
