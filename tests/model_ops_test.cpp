// The CPU decoder operations are the reference of the GPU kernels and the
// CPU backend, so each is checked against a naive float64 formula on fresh
// random inputs, several seeds, awkward sizes and batches 1 and 3.
#include "cpu/model_ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <set>
#include <string>

#include "core/rope.h"
#include "core/speculative_query.h"
#include "support/fill.h"

namespace dso {
namespace {

using test::random_tensor;
using test::widen;

constexpr std::uint64_t kSeeds[] = {101, 102, 103};
constexpr int kBatches[] = {1, 3};

struct TypeNames {
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, float>) return "f32";
    if constexpr (std::is_same_v<T, Half>) return "f16";
    return "bf16";
  }
};
using WeightTypes = ::testing::Types<float, Half, BFloat16>;

std::vector<std::int32_t> random_ints(std::size_t n, std::int32_t lo, std::int32_t hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> dist(lo, hi);
  std::vector<std::int32_t> out(n);
  for (auto& v : out) v = dist(rng);
  return out;
}

std::vector<int> random_channels(int d, int r, std::mt19937_64& rng) {
  std::vector<int> all(d);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  return {all.begin(), all.begin() + r};
}

// Float64 y[b] = W x[b], and sum |W||x| per output: a float sum of n terms
// with 8 partial sums is within about (n/8 + 4) ulp of that magnitude.
struct Product {
  std::vector<double> value, magnitude;
};

template <class W>
Product reference_matmul(const std::vector<W>& w, std::int64_t out_f, std::int64_t in_f, const std::vector<float>& x,
                         int batch) {
  Product p{std::vector<double>(std::size_t(batch) * out_f), std::vector<double>(std::size_t(batch) * out_f)};
  const auto wd = widen(w);
  for (int b = 0; b < batch; ++b)
    for (std::int64_t o = 0; o < out_f; ++o) {
      double s = 0, m = 0;
      for (std::int64_t i = 0; i < in_f; ++i) {
        const double t = wd[o * in_f + i] * double(x[b * in_f + i]);
        s += t;
        m += std::abs(t);
      }
      p.value[b * out_f + o] = s;
      p.magnitude[b * out_f + o] = m;
    }
  return p;
}

double sum_tolerance(std::int64_t n, double magnitude) {
  return (double(n) / 8 + 4) * std::numeric_limits<float>::epsilon() * magnitude + 1e-30;
}

// Float64 RoPE of one pair in the HF layout.
void reference_rotate(double& lo, double& hi, std::int64_t pos, int pair, int d, double theta) {
  const double angle = double(pos) * std::pow(theta, -2.0 * pair / d);
  const double a = lo, b = hi;
  lo = a * std::cos(angle) - b * std::sin(angle);
  hi = b * std::cos(angle) + a * std::sin(angle);
}

template <class W>
class ModelOpsCpu : public ::testing::Test {};
TYPED_TEST_SUITE(ModelOpsCpu, WeightTypes, TypeNames);

TYPED_TEST(ModelOpsCpu, EmbeddingCopiesTheTokensRows) {
  using W = TypeParam;
  const std::int64_t vocab = 97;
  for (std::uint64_t seed : kSeeds)
    for (int hidden : {1, 3, 576})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " hidden " << hidden << " batch " << batch);
        const auto table = random_tensor<W>(vocab * hidden, seed);
        auto tokens = random_ints(batch, 0, std::int32_t(vocab - 1), seed + 1);
        tokens[0] = std::int32_t(seed % 2 ? vocab - 1 : 0);
        std::vector<float> out(std::size_t(batch) * hidden, NAN);
        cpu::embed(table.data(), vocab, hidden, tokens.data(), batch, out.data());
        for (int b = 0; b < batch; ++b)
          for (int i = 0; i < hidden; ++i)
            ASSERT_EQ(out[b * hidden + i], to_float(table[tokens[b] * hidden + i])) << "row " << b << " col " << i;
      }
}

TYPED_TEST(ModelOpsCpu, EmbeddingRejectsTokensOutsideTheVocabularyBeforeWriting) {
  using W = TypeParam;
  const auto table = random_tensor<W>(10 * 4, 7);
  for (std::int32_t bad : {-1, 10, 1 << 30}) {
    const std::int32_t tokens[] = {3, bad};
    std::vector<float> out(8, NAN);
    EXPECT_THROW(cpu::embed(table.data(), 10, 4, tokens, 2, out.data()), Error);
    for (float v : out) EXPECT_TRUE(std::isnan(v)) << "written before the error";
  }
}

TYPED_TEST(ModelOpsCpu, RmsNormMatchesFloat64) {
  using W = TypeParam;
  const float eps = 1e-5f;
  for (std::uint64_t seed : kSeeds)
    for (int n : {1, 3, 97, 576, 1536})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " n " << n << " batch " << batch);
        const auto x = random_tensor<float>(std::size_t(batch) * n, seed, 3.0f);
        const auto w = random_tensor<W>(n, seed + 1);
        std::vector<float> out(x.size(), NAN);
        cpu::rms_norm(x.data(), w.data(), batch, n, eps, out.data());
        for (int b = 0; b < batch; ++b) {
          double sum_sq = 0;
          for (int i = 0; i < n; ++i) sum_sq += double(x[b * n + i]) * x[b * n + i];
          const double inv = 1.0 / std::sqrt(sum_sq / n + eps);
          for (int i = 0; i < n; ++i) {
            const double want = double(x[b * n + i]) * inv * double(to_float(w[i]));
            ASSERT_NEAR(out[b * n + i], want, 2e-6 * std::abs(want) + 1e-30) << "row " << b << " col " << i;
          }
        }
        // A 16-bit output is the fp32 result rounded once; fp32 may run in place.
        std::vector<Half> half_out(x.size());
        cpu::rms_norm(x.data(), w.data(), batch, n, eps, half_out.data());
        for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(half_out[i].bits, from_float<Half>(out[i]).bits);
        auto in_place = x;
        cpu::rms_norm(in_place.data(), w.data(), batch, n, eps, in_place.data());
        ASSERT_EQ(in_place, out);
      }
}

struct MatmulShape {
  std::int64_t out, in;
};
constexpr MatmulShape kMatmulShapes[] = {{1, 1}, {3, 97}, {97, 576}, {576, 1536}, {1536, 3}, {49, 1537}};

TYPED_TEST(ModelOpsCpu, MatmulMatchesFloat64) {
  using W = TypeParam;
  for (std::uint64_t seed : kSeeds)
    for (const auto [out_f, in_f] : kMatmulShapes)
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " " << out_f << "x" << in_f << " batch " << batch);
        const auto w = random_tensor<W>(out_f * in_f, seed);
        const auto x = random_tensor<float>(batch * in_f, seed + 1);
        const auto want = reference_matmul(w, out_f, in_f, x, batch);
        std::vector<float> y(std::size_t(batch) * out_f, NAN);
        cpu::matmul(w.data(), out_f, in_f, x.data(), batch, y.data());
        for (std::size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], want.value[i], sum_tolerance(in_f, want.magnitude[i])) << "element " << i;
        // Accumulating into a residual: y0 + W x.
        const auto y0 = random_tensor<float>(y.size(), seed + 2);
        auto acc = y0;
        cpu::matmul(w.data(), out_f, in_f, x.data(), batch, acc.data(), true);
        for (std::size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(acc[i], y0[i] + want.value[i],
                      sum_tolerance(in_f, want.magnitude[i]) + 1e-7 * std::abs(y0[i] + want.value[i]))
              << "element " << i;
      }
}

TYPED_TEST(ModelOpsCpu, MatmulDoesNotDependOnTheThreadCount) {
  using W = TypeParam;
  const std::int64_t out_f = 1536, in_f = 1536;
  const int batch = 3;
  const auto w = random_tensor<W>(out_f * in_f, 5);
  const auto x = random_tensor<float>(batch * in_f, 6);
  std::vector<float> one(batch * out_f), many(batch * out_f);
  cpu::matmul(w.data(), out_f, in_f, x.data(), batch, one.data(), false, 1);
  cpu::matmul(w.data(), out_f, in_f, x.data(), batch, many.data(), false, 7);
  EXPECT_EQ(one, many);
}

struct RopeCase {
  int batch, heads, d;
  float theta;
};
constexpr RopeCase kRopeCases[] = {
    {1, 1, 2, 10000.0f}, {3, 3, 8, 10000.0f}, {1, 9, 64, 100000.0f}, {3, 3, 64, 100000.0f}, {3, 32, 128, 500000.0f}};

std::string rope_name(const RopeCase& c) {
  return testing::PrintToString(c.batch) + "x" + testing::PrintToString(c.heads) + "x" + testing::PrintToString(c.d) +
         " theta " + testing::PrintToString(c.theta);
}

TEST(RopeCpu, MatchesFloat64AndKeepsEachPairsNorm) {
  for (std::uint64_t seed : kSeeds)
    for (const RopeCase& c : kRopeCases) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " " << rope_name(c));
      const int half = c.d / 2;
      const auto x = random_tensor<float>(std::size_t(c.batch) * c.heads * c.d, seed);
      const auto positions = random_ints(c.batch, 1, 300000, seed + 1);
      const RopeSpec spec{c.batch, c.heads, c.d, positions.data(), c.theta};
      std::vector<float> out(x.size(), NAN);
      cpu::rope(x.data(), spec, out.data());
      for (int b = 0; b < c.batch; ++b)
        for (int h = 0; h < c.heads; ++h)
          for (int i = 0; i < half; ++i) {
            const std::size_t lo = (std::size_t(b) * c.heads + h) * c.d + i, hi = lo + half;
            double want_lo = x[lo], want_hi = x[hi];
            reference_rotate(want_lo, want_hi, positions[b], i, c.d, c.theta);
            const double scale = std::abs(double(x[lo])) + std::abs(double(x[hi]));
            ASSERT_NEAR(out[lo], want_lo, 4e-7 * scale) << "b " << b << " h " << h << " pair " << i;
            ASSERT_NEAR(out[hi], want_hi, 4e-7 * scale) << "b " << b << " h " << h << " pair " << i;
            const double norm_in = double(x[lo]) * x[lo] + double(x[hi]) * x[hi];
            const double norm_out = double(out[lo]) * out[lo] + double(out[hi]) * out[hi];
            ASSERT_NEAR(norm_out, norm_in, 1e-6 * norm_in) << "pair norm, b " << b << " h " << h << " pair " << i;
          }
      std::vector<BFloat16> narrow(x.size());
      cpu::rope(x.data(), spec, narrow.data());
      for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(narrow[i].bits, from_float<BFloat16>(out[i]).bits);
      auto in_place = x;
      cpu::rope(in_place.data(), spec, in_place.data());
      ASSERT_EQ(in_place, out);
    }
}

TEST(RopeCpu, PositionZeroIsTheIdentityAndSequencesUseTheirOwnPositions) {
  const int heads = 3, d = 64;
  const auto x = random_tensor<float>(std::size_t(2) * heads * d, 9);
  const std::int32_t positions[] = {0, 4097};
  std::vector<float> out(x.size());
  cpu::rope(x.data(), RopeSpec{2, heads, d, positions, 10000.0f}, out.data());
  for (int i = 0; i < heads * d; ++i) ASSERT_EQ(out[i], x[i]);
  // The second sequence alone, at its position, gives the same rows.
  std::vector<float> alone(std::size_t(heads) * d);
  cpu::rope(x.data() + heads * d, RopeSpec{1, heads, d, positions + 1, 10000.0f}, alone.data());
  for (int i = 0; i < heads * d; ++i) ASSERT_EQ(out[heads * d + i], alone[i]);
}

TEST(RopeCpu, RejectsBadShapesAndNegativePositions) {
  std::vector<float> x(16);
  const std::int32_t ok[] = {0, 1}, negative[] = {1, -3};
  EXPECT_THROW(cpu::rope(x.data(), RopeSpec{1, 1, 3, ok, 10000.0f}, x.data()), Error);
  EXPECT_THROW(cpu::rope(x.data(), RopeSpec{0, 1, 8, ok, 10000.0f}, x.data()), Error);
  EXPECT_THROW(cpu::rope(x.data(), RopeSpec{2, 1, 8, negative, 10000.0f}, x.data()), Error);
  EXPECT_THROW(cpu::rope(x.data(), RopeSpec{2, 1, 8, nullptr, 10000.0f}, x.data()), Error);
}

TEST(GgufLayout, ChannelMapsAreInversePermutations) {
  for (int d : {2, 8, 64, 128}) {
    std::set<int> seen;
    for (int c = 0; c < d; ++c) {
      const int g = gguf_channel_of_hf(c, d);
      ASSERT_GE(g, 0);
      ASSERT_LT(g, d);
      ASSERT_EQ(hf_channel_of_gguf(g, d), c) << "d " << d;
      seen.insert(g);
      // Each HF pair (i, i + d/2) lands on one interleaved pair (2i, 2i + 1).
      if (c < d / 2) ASSERT_EQ(gguf_channel_of_hf(c + d / 2, d), g + 1);
    }
    ASSERT_EQ(int(seen.size()), d);
  }
}

TEST(GgufLayout, RowPermutationIsTheConvertersReshapeAndRoundTrips) {
  for (std::uint64_t seed : kSeeds)
    for (const auto [heads, d, row_bytes] : {std::tuple{1, 2, 1}, {3, 8, 3}, {9, 64, 34}, {3, 64, 1152}}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " heads " << heads << " d " << d);
      const std::size_t rows = std::size_t(heads) * d;
      std::vector<unsigned char> hf(rows * row_bytes);
      std::mt19937_64 rng(seed);
      for (auto& v : hf) v = static_cast<unsigned char>(rng());
      std::vector<unsigned char> gguf(hf.size()), back(hf.size());
      cpu::hf_to_gguf_rows(hf.data(), heads, d, row_bytes, gguf.data());
      // The converter views each head's rows as [2][d/2] and swaps the axes:
      // GGUF row [h][i][j] is HF row [h][j][i].
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < d / 2; ++i)
          for (int j = 0; j < 2; ++j) {
            const std::size_t gguf_row = std::size_t(h) * d + 2 * i + j, hf_row = std::size_t(h) * d + j * (d / 2) + i;
            ASSERT_EQ(0, std::memcmp(gguf.data() + gguf_row * row_bytes, hf.data() + hf_row * row_bytes, row_bytes))
                << "head " << h << " pair " << i << " half " << j;
          }
      cpu::gguf_to_hf_rows(gguf.data(), heads, d, row_bytes, back.data());
      ASSERT_EQ(back, hf);
    }
}

// Interleaved RoPE, as llama.cpp applies it to GGUF rows: pair (2i, 2i + 1)
// turns by pos * theta^(-2i/d).
std::vector<double> reference_interleaved_rope(std::vector<double> q, int heads, int d, std::int64_t pos,
                                               double theta) {
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < d / 2; ++i) {
      const std::size_t a = std::size_t(h) * d + 2 * i;
      const double angle = double(pos) * std::pow(theta, -2.0 * i / d);
      const double x0 = q[a], x1 = q[a + 1];
      q[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
      q[a + 1] = x1 * std::cos(angle) + x0 * std::sin(angle);
    }
  return q;
}

TEST(GgufLayout, HfRopeOnUnpermutedRowsEqualsInterleavedRopeOnGgufRows) {
  const int hidden = 97;
  for (std::uint64_t seed : kSeeds)
    for (const auto [heads, d, theta] : {std::tuple{9, 64, 100000.0f}, {3, 64, 100000.0f}, {4, 8, 10000.0f}}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " heads " << heads << " d " << d);
      const std::int64_t rows = std::int64_t(heads) * d;
      const auto w_gguf = random_tensor<float>(rows * hidden, seed);
      const auto x = random_tensor<float>(hidden, seed + 1);
      const std::int32_t pos = std::int32_t(1000 + 777 * seed);
      const auto q_gguf = reference_matmul(w_gguf, rows, hidden, x, 1);
      const auto want = reference_interleaved_rope(q_gguf.value, heads, d, pos, theta);

      std::vector<float> w_hf(w_gguf.size()), q(rows);
      cpu::gguf_to_hf_rows(w_gguf.data(), heads, d, hidden * sizeof(float), w_hf.data());
      cpu::matmul(w_hf.data(), rows, hidden, x.data(), 1, q.data());
      cpu::rope(q.data(), RopeSpec{1, heads, d, &pos, theta}, q.data());
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < d; ++c) {
          const std::size_t g = std::size_t(h) * d + gguf_channel_of_hf(c, d);
          const double mag =
              q_gguf.magnitude[g] + q_gguf.magnitude[std::size_t(h) * d + (gguf_channel_of_hf(c, d) ^ 1)];
          ASSERT_NEAR(q[h * d + c], want[g], sum_tolerance(hidden, mag) + 4e-7 * mag)
              << "head " << h << " channel " << c;
        }
    }
}

TEST(SwigluCpu, MatchesFloat64SeparateAndFused) {
  for (std::uint64_t seed : kSeeds)
    for (int n : {1, 3, 97, 1536})
      for (int batch : kBatches)
        for (std::int64_t extra : {std::int64_t(0), std::int64_t(n), std::int64_t(n) + 5}) {
          SCOPED_TRACE(testing::Message()
                       << "seed " << seed << " n " << n << " batch " << batch << " stride +" << extra);
          const std::int64_t stride = n + extra;
          // extra == n: a fused [gate | up] product; otherwise separate tensors.
          const auto gate = random_tensor<float>(batch * stride, seed, 6.0f);
          const auto up_separate = random_tensor<float>(batch * stride, seed + 1);
          const float* up = extra == n ? gate.data() + n : up_separate.data();
          std::vector<float> out(std::size_t(batch) * n, NAN);
          cpu::swiglu(gate.data(), up, batch, n, stride, out.data());
          for (int b = 0; b < batch; ++b)
            for (int i = 0; i < n; ++i) {
              const double g = gate[b * stride + i];
              const double want = g / (1.0 + std::exp(-g)) * up[b * stride + i];
              ASSERT_NEAR(out[b * n + i], want, 1e-6 * std::abs(want) + 1e-37) << "row " << b << " col " << i;
            }
          std::vector<Half> narrow(out.size());
          cpu::swiglu(gate.data(), up, batch, n, stride, narrow.data());
          for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(narrow[i].bits, from_float<Half>(out[i]).bits);
        }
}

TEST(ElementwiseCpu, AddAndCastAreExact) {
  for (std::uint64_t seed : kSeeds)
    for (std::int64_t n : {1, 3, 97, 1537}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " n " << n);
      auto x = random_tensor<float>(n, seed, 100.0f);
      const auto y = random_tensor<float>(n, seed + 1);
      const auto x0 = x;
      cpu::add(x.data(), y.data(), n);
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], float(double(x0[i]) + double(y[i])));

      std::vector<Half> h(n);
      std::vector<BFloat16> bf(n);
      std::vector<float> back_h(n), back_bf(n);
      cpu::cast(x.data(), n, h.data());
      cpu::cast(x.data(), n, bf.data());
      cpu::cast(h.data(), n, back_h.data());
      cpu::cast(bf.data(), n, back_bf.data());
      for (std::int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(h[i].bits, from_float<Half>(x[i]).bits);
        ASSERT_EQ(bf[i].bits, from_float<BFloat16>(x[i]).bits);
        ASSERT_EQ(back_h[i], to_float(h[i]));
        ASSERT_EQ(back_bf[i], to_float(bf[i]));
        ASSERT_NEAR(back_h[i], x[i], std::ldexp(std::abs(x[i]), -11) + std::ldexp(1.0f, -25));  // fp16 subnormals
        ASSERT_NEAR(back_bf[i], x[i], std::ldexp(std::abs(x[i]), -8));
      }
    }
}

struct SpecCase {
  int layers, q_heads, kv_heads, d, r;
  std::int64_t hidden;
};
constexpr SpecCase kSpecCases[] = {
    {2, 9, 3, 64, 4, 576}, {3, 4, 2, 8, 3, 97}, {1, 3, 1, 2, 1, 3}, {2, 8, 8, 16, 16, 37}};

LabelChannels random_label_channels(const SpecCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  LabelChannels lc{c.layers, c.kv_heads, c.r, {}};
  for (int i = 0; i < c.layers * c.kv_heads; ++i)
    for (int ch : random_channels(c.d, c.r, rng)) lc.index.push_back(ch);
  return lc;
}

// The query heads' needed pairs: every label channel of its KV head, folded onto [0, d/2).
std::set<int> expected_pairs(const LabelChannels& lc, int layer, int kv_head, int d) {
  std::set<int> pairs;
  for (int c : lc.of(layer, kv_head)) pairs.insert(c % (d / 2));
  return pairs;
}

TYPED_TEST(ModelOpsCpu, SpeculativeQueryPacksTheRowsOfLabelChannelsAndTheirPartners) {
  using W = TypeParam;
  for (std::uint64_t seed : kSeeds)
    for (const SpecCase& c : kSpecCases) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " q " << c.q_heads << " kv " << c.kv_heads << " d " << c.d);
      const AttentionShape shape{c.layers, c.q_heads, c.kv_heads, c.d};
      const auto lc = random_label_channels(c, seed);
      const auto w_q = random_tensor<W>(std::size_t(c.q_heads) * c.d * c.hidden, seed + 1);
      const int layer = c.layers - 1;
      const auto pack = pack_speculative_query(w_q.data(), c.hidden, shape, lc, layer);
      std::int64_t k = 0;
      for (int h = 0; h < c.q_heads; ++h)
        for (int i : expected_pairs(lc, layer, h / shape.group(), c.d)) {
          ASSERT_LT(k, pack.pairs());
          ASSERT_EQ(pack.pair_head[k], h);
          ASSERT_EQ(pack.pair_channel[k], i);
          for (int j = 0; j < 2; ++j) {
            const std::size_t src = (std::size_t(h) * c.d + i + j * (c.d / 2)) * c.hidden;
            ASSERT_EQ(0,
                      std::memcmp(pack.weight.data() + (2 * k + j) * c.hidden, w_q.data() + src, c.hidden * sizeof(W)))
                << "pair " << k << " row " << j;
          }
          ++k;
        }
      ASSERT_EQ(k, pack.pairs());
      ASSERT_EQ(pack.weight.size(), std::size_t(pack.rows()) * c.hidden);
    }
}

TEST(SpeculativeQueryPack, FoldsPartnerLabelChannelsIntoOnePair) {
  // Channels 1 and 5 of d = 8 are one RoPE pair; 2 is another.
  const AttentionShape shape{1, 2, 1, 8};
  const LabelChannels lc{1, 1, 3, {1, 5, 2}};
  const auto w_q = random_tensor<float>(2 * 8 * 5, 3);
  const auto pack = pack_speculative_query(w_q.data(), 5, shape, lc, 0);
  EXPECT_EQ(pack.pair_head, (std::vector<std::int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(pack.pair_channel, (std::vector<std::int32_t>{1, 2, 1, 2}));
  EXPECT_THROW(pack_speculative_query(w_q.data(), 5, shape, lc, 1), Error);
  const LabelChannels repeated{1, 1, 2, {3, 3}};
  EXPECT_THROW(pack_speculative_query(w_q.data(), 5, shape, repeated, 0), Error);
}

TYPED_TEST(ModelOpsCpu, SpeculativeQueryEqualsTheFullRotatedQueryAtItsChannels) {
  using W = TypeParam;
  for (std::uint64_t seed : kSeeds)
    for (const SpecCase& c : kSpecCases)
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " q " << c.q_heads << " d " << c.d << " batch " << batch);
        const AttentionShape shape{c.layers, c.q_heads, c.kv_heads, c.d};
        const auto lc = random_label_channels(c, seed);
        const std::int64_t q_rows = std::int64_t(c.q_heads) * c.d;
        const auto w_q = random_tensor<W>(q_rows * c.hidden, seed + 1);
        const auto x = random_tensor<float>(batch * c.hidden, seed + 2);
        const auto positions = random_ints(batch, 0, 200000, seed + 3);
        const RopeSpec spec{batch, c.q_heads, c.d, positions.data(), 100000.0f};
        const int layer = 0;
        const auto pack = pack_speculative_query(w_q.data(), c.hidden, shape, lc, layer);

        std::vector<float> full(batch * q_rows);
        cpu::matmul(w_q.data(), q_rows, c.hidden, x.data(), batch, full.data());
        cpu::rope(full.data(), spec, full.data());
        std::vector<float> spec_q(full.size(), NAN);
        cpu::speculative_query(pack, x.data(), spec, spec_q.data());
        std::vector<Half> spec_half(full.size());
        cpu::speculative_query(pack, x.data(), spec, spec_half.data());
        for (int b = 0; b < batch; ++b)
          for (int h = 0; h < c.q_heads; ++h) {
            const auto pairs = expected_pairs(lc, layer, h / shape.group(), c.d);
            for (int ch = 0; ch < c.d; ++ch) {
              const std::size_t at = (std::size_t(b) * c.q_heads + h) * c.d + ch;
              const float want = pairs.count(ch % (c.d / 2)) ? full[at] : 0.0f;
              ASSERT_EQ(spec_q[at], want) << "b " << b << " head " << h << " channel " << ch;
              ASSERT_EQ(spec_half[at].bits, from_float<Half>(want).bits) << "b " << b << " head " << h;
            }
          }
        const RopeSpec wrong_heads{batch, c.q_heads + 1, c.d, positions.data(), 100000.0f};
        EXPECT_THROW(cpu::speculative_query(pack, x.data(), wrong_heads, spec_q.data()), Error);
      }
}

std::int32_t brute_argmax(const float* row, std::int64_t vocab) {
  std::int64_t best = -1;
  for (std::int64_t i = 0; i < vocab; ++i)
    if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best])) best = i;
  return std::int32_t(std::max<std::int64_t>(best, 0));
}

TEST(LogitsCpu, ArgmaxFindsTheFirstLargestLogit) {
  for (std::uint64_t seed : kSeeds)
    for (std::int64_t vocab : {1, 3, 97, 49152})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " vocab " << vocab << " batch " << batch);
        auto logits = random_tensor<float>(batch * vocab, seed, 4.0f);
        // Ties: each row's maximum planted twice more at random places.
        std::mt19937_64 rng(seed);
        for (int b = 0; b < batch; ++b) {
          float* row = logits.data() + b * vocab;
          const float top = row[brute_argmax(row, vocab)];
          for (int copy = 0; copy < 2; ++copy) row[std::int64_t(rng() % std::uint64_t(vocab))] = top;
        }
        std::vector<std::int32_t> got(batch, -1);
        cpu::argmax(logits.data(), batch, vocab, got.data());
        for (int b = 0; b < batch; ++b)
          ASSERT_EQ(got[b], brute_argmax(logits.data() + b * vocab, vocab)) << "row " << b;
      }
}

TEST(LogitsCpu, ArgmaxSkipsNanAndHandlesRowsWithoutNumbers) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> logits = {nan,  -1.0f, 2.0f, nan,  2.0f,  // row 0: 2
                                     -inf, -inf,  -inf, -inf, -inf,  // row 1: all -inf, first
                                     nan,  nan,   nan,  nan,  nan,   // row 2: no number
                                     nan,  -inf,  nan,  -inf, inf};  // row 3: +inf
  std::vector<std::int32_t> got(4, -1);
  cpu::argmax(logits.data(), 4, 5, got.data());
  EXPECT_EQ(got, (std::vector<std::int32_t>{2, 0, 0, 4}));
}

TEST(LogitsCpu, TargetLogProbMatchesFloat64) {
  for (std::uint64_t seed : kSeeds)
    for (std::int64_t vocab : {1, 3, 97, 49152})
      for (int batch : kBatches)
        for (float scale : {1.0f, 30.0f}) {
          SCOPED_TRACE(testing::Message()
                       << "seed " << seed << " vocab " << vocab << " batch " << batch << " scale " << scale);
          const auto logits = random_tensor<float>(batch * vocab, seed, scale);
          const auto targets = random_ints(batch, 0, std::int32_t(vocab - 1), seed + 1);
          std::vector<float> got(batch, NAN);
          cpu::target_log_prob(logits.data(), batch, vocab, targets.data(), got.data());
          for (int b = 0; b < batch; ++b) {
            const float* row = logits.data() + b * vocab;
            double mx = -INFINITY, sum = 0;
            for (std::int64_t i = 0; i < vocab; ++i) mx = std::max(mx, double(row[i]));
            for (std::int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i]) - mx);
            const double want = double(row[targets[b]]) - mx - std::log(sum);
            ASSERT_NEAR(got[b], want, 1e-6 * (1 + std::abs(want))) << "row " << b;
          }
        }
  const std::vector<float> logits(6, 0.0f);
  const std::int32_t bad[] = {1, 3};
  float out[2];
  EXPECT_THROW(cpu::target_log_prob(logits.data(), 2, 3, bad, out), Error);
}

}  // namespace
}  // namespace dso
