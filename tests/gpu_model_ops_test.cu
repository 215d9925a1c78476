// The GPU decoder operations against their CPU reference (cpu/model_ops.h,
// itself checked against float64 in model_ops_test.cpp), on the same random
// inputs, including every product shape the benchmark times.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>
#include <string>

#include "core/device.h"
#include "core/rope.h"
#include "core/speculative_query.h"
#include "cpu/model_ops.h"
#include "gpu/device_array.h"
#include "gpu/model_check.h"
#include "gpu/model_ops.h"
#include "support/fill.h"

namespace dso {
namespace {

using gpu::DeviceArray;
using test::random_tensor;

constexpr std::uint64_t kSeeds[] = {201, 202, 203};
constexpr int kBatches[] = {1, 3};
constexpr double kFloatEps = std::numeric_limits<float>::epsilon();

struct TypeNames {
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, float>) return "f32";
    if constexpr (std::is_same_v<T, Half>) return "f16";
    return "bf16";
  }
};
using WeightTypes = ::testing::Types<float, Half, BFloat16>;

template <class T>
DeviceArray<T> upload(const std::vector<T>& host) {
  return DeviceArray<T>(std::span<const T>(host));
}

std::vector<std::int32_t> random_ints(std::size_t n, std::int32_t lo, std::int32_t hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> dist(lo, hi);
  std::vector<std::int32_t> out(n);
  for (auto& v : out) v = dist(rng);
  return out;
}

// x as the GPU product reads it: rounded once to the weight's type.
template <class W>
std::vector<float> rounded_to(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = to_float(from_float<W>(x[i]));
  return out;
}

template <class T>
std::vector<T> magnitudes(const std::vector<T>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = from_float<T>(std::abs(to_float(v[i])));
  return out;
}

// One unit in the last place of a 16-bit (or fp32) value of magnitude |v|.
template <class T>
double ulp_of(double v) {
  const int mantissa = std::is_same_v<T, Half> ? 10 : std::is_same_v<T, BFloat16> ? 7 : 23;
  const double floor = std::is_same_v<T, Half> ? std::ldexp(1.0, -24) : std::ldexp(1.0, -126);
  return std::max(std::ldexp(std::abs(v), -mantissa), floor);
}

class GpuOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_available()) GTEST_SKIP() << "no CUDA device: the GPU model operations are not tested here";
    DSO_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_) EXPECT_EQ(cudaStreamDestroy(stream_), cudaSuccess);
  }
  void sync() { DSO_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  cudaStream_t stream_ = nullptr;
};

template <class W>
class GpuModelOps : public GpuOps {};
TYPED_TEST_SUITE(GpuModelOps, WeightTypes, TypeNames);

TYPED_TEST(GpuModelOps, EmbeddingEqualsTheCpuAndMarksBadTokens) {
  using W = TypeParam;
  const std::int64_t vocab = 97;
  for (std::uint64_t seed : kSeeds)
    for (int hidden : {1, 3, 576, 1537})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " hidden " << hidden << " batch " << batch);
        const auto table = random_tensor<W>(vocab * hidden, seed);
        const auto tokens = random_ints(batch, 0, std::int32_t(vocab - 1), seed + 1);
        std::vector<float> want(std::size_t(batch) * hidden);
        cpu::embed(table.data(), vocab, hidden, tokens.data(), batch, want.data());
        auto d_table = upload(table);
        auto d_tokens = upload(tokens);
        DeviceArray<float> d_out(want.size());
        gpu::embed(d_table.data(), vocab, hidden, d_tokens.data(), batch, d_out.data(), this->stream_);
        this->sync();
        ASSERT_EQ(d_out.to_host(), want);
      }
  const auto table = random_tensor<W>(10 * 4, 1);
  auto d_table = upload(table);
  auto d_tokens = upload(std::vector<std::int32_t>{2, 10, -1});
  DeviceArray<float> d_out(12);
  gpu::embed(d_table.data(), 10, 4, d_tokens.data(), 3, d_out.data(), this->stream_);
  this->sync();
  const auto out = d_out.to_host();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], to_float(table[2 * 4 + i]));
  for (int i = 4; i < 12; ++i) EXPECT_TRUE(std::isnan(out[i])) << "element " << i << " of a bad token's row";
}

TYPED_TEST(GpuModelOps, RmsNormMatchesTheCpu) {
  using W = TypeParam;
  const float eps = 1e-6f;
  for (std::uint64_t seed : kSeeds)
    for (int n : {1, 3, 97, 576, 1536, 4096})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " n " << n << " batch " << batch);
        const auto x = random_tensor<float>(std::size_t(batch) * n, seed, 3.0f);
        const auto w = random_tensor<W>(n, seed + 1);
        std::vector<float> want(x.size());
        std::vector<Half> want_half(x.size());
        cpu::rms_norm(x.data(), w.data(), batch, n, eps, want.data());
        cpu::rms_norm(x.data(), w.data(), batch, n, eps, want_half.data());
        auto d_x = upload(x);
        auto d_w = upload(w);
        DeviceArray<float> d_out(x.size());
        DeviceArray<Half> d_half(x.size());
        gpu::rms_norm(d_x.data(), d_w.data(), batch, n, eps, d_out.data(), this->stream_);
        gpu::rms_norm(d_x.data(), d_w.data(), batch, n, eps, d_half.data(), this->stream_);
        this->sync();
        const auto got = d_out.to_host();
        const auto got_half = d_half.to_host();
        for (std::size_t i = 0; i < x.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 4e-6 * std::abs(want[i]) + 1e-30) << "element " << i;
          ASSERT_NEAR(to_float(got_half[i]), to_float(want_half[i]), ulp_of<Half>(want[i])) << "element " << i;
        }
      }
}

struct MatmulShape {
  std::int64_t out, in;
  int batch;
};
// The benchmark's shapes (4096 and 14336 x 4096 at batch 1 and 2), then awkward ones.
constexpr MatmulShape kMatmulShapes[] = {{4096, 4096, 1}, {4096, 4096, 2}, {14336, 4096, 1}, {14336, 4096, 2},
                                         {1, 1, 1},       {3, 97, 3},      {97, 576, 1},     {576, 1536, 3},
                                         {1536, 3, 3},    {49152, 576, 1}, {1537, 4099, 3}};

TYPED_TEST(GpuModelOps, MatmulMatchesTheCpuOnTheRoundedInput) {
  using W = TypeParam;
  for (const auto [out_f, in_f, batch] : kMatmulShapes)
    for (std::uint64_t seed : {kSeeds[0], kSeeds[1]}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " " << out_f << "x" << in_f << " batch " << batch);
      const auto w = random_tensor<W>(out_f * in_f, seed);
      const auto x = random_tensor<float>(batch * in_f, seed + 1);
      const auto y0 = random_tensor<float>(batch * out_f, seed + 2);
      const auto x_rounded = rounded_to<W>(x);
      std::vector<float> want(y0.size()), magnitude(y0.size());
      cpu::matmul(w.data(), out_f, in_f, x_rounded.data(), batch, want.data());
      const auto abs_x = magnitudes(x_rounded);
      cpu::matmul(magnitudes(w).data(), out_f, in_f, abs_x.data(), batch, magnitude.data());

      gpu::BlasHandle blas(this->stream_);
      auto d_w = upload(w);
      auto d_x = upload(x);
      DeviceArray<W> d_x_w(x.size());
      const W* x_for_blas;
      if constexpr (std::is_same_v<W, float>) {
        x_for_blas = d_x.data();
      } else {
        gpu::cast(d_x.data(), std::int64_t(x.size()), d_x_w.data(), this->stream_);
        x_for_blas = d_x_w.data();
      }
      auto d_y = upload(y0);
      DeviceArray<float> d_fresh(y0.size());
      gpu::matmul(blas, gpu::MatmulParams<W>{d_w.data(), out_f, in_f, x_for_blas, batch, d_fresh.data()});
      gpu::matmul(blas, gpu::MatmulParams<W>{d_w.data(), out_f, in_f, x_for_blas, batch, d_y.data(), true});
      this->sync();
      const auto fresh = d_fresh.to_host();
      const auto accumulated = d_y.to_host();
      // Both sums are off by at most (in/8 + 4) ulp of the magnitude, in any order.
      for (std::size_t i = 0; i < want.size(); ++i) {
        const double tol = 2 * (double(in_f) / 8 + 4) * kFloatEps * magnitude[i] + 1e-30;
        ASSERT_NEAR(fresh[i], want[i], tol) << "element " << i;
        ASSERT_NEAR(accumulated[i], y0[i] + want[i], tol + kFloatEps * std::abs(y0[i] + want[i])) << "element " << i;
      }
    }
}

TEST_F(GpuOps, BlasHandleFollowsItsStream) {
  cudaStream_t other = nullptr;
  DSO_CUDA_CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  const std::int64_t out_f = 97, in_f = 576;
  const auto w = random_tensor<Half>(out_f * in_f, 5);
  const auto x = random_tensor<Half>(in_f, 6);
  auto d_w = upload(w);
  auto d_x = upload(x);
  DeviceArray<float> d_a(out_f), d_b(out_f);
  gpu::BlasHandle blas(stream_);
  gpu::matmul(blas, gpu::MatmulParams<Half>{d_w.data(), out_f, in_f, d_x.data(), 1, d_a.data()});
  blas.set_stream(other);
  EXPECT_EQ(blas.stream(), other);
  gpu::matmul(blas, gpu::MatmulParams<Half>{d_w.data(), out_f, in_f, d_x.data(), 1, d_b.data()});
  DSO_CUDA_CHECK(cudaStreamSynchronize(other));
  sync();
  EXPECT_EQ(d_a.to_host(), d_b.to_host());
  blas.set_stream(stream_);  // before its stream goes away
  DSO_CUDA_CHECK(cudaStreamDestroy(other));
}

struct RopeCase {
  int batch, heads, d;
  float theta;
};
constexpr RopeCase kRopeCases[] = {
    {1, 1, 2, 10000.0f}, {3, 3, 8, 10000.0f}, {1, 9, 64, 100000.0f}, {3, 3, 64, 100000.0f}, {3, 32, 128, 500000.0f}};

TEST_F(GpuOps, RopeMatchesTheCpu) {
  for (std::uint64_t seed : kSeeds)
    for (const RopeCase& c : kRopeCases) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " batch " << c.batch << " heads " << c.heads << " d "
                                      << c.d);
      const int half = c.d / 2;
      const auto x = random_tensor<float>(std::size_t(c.batch) * c.heads * c.d, seed);
      const auto positions = random_ints(c.batch, 0, 300000, seed + 1);
      std::vector<float> want(x.size());
      cpu::rope(x.data(), RopeSpec{c.batch, c.heads, c.d, positions.data(), c.theta}, want.data());
      auto d_x = upload(x);
      auto d_pos = upload(positions);
      DeviceArray<BFloat16> d_narrow(x.size());
      const RopeSpec spec{c.batch, c.heads, c.d, d_pos.data(), c.theta};
      gpu::rope(d_x.data(), spec, d_narrow.data(), stream_);
      gpu::rope(d_x.data(), spec, d_x.data(), stream_);  // in place
      sync();
      const auto got = d_x.to_host();
      const auto narrow = d_narrow.to_host();
      for (std::size_t row = 0; row < x.size() / c.d; ++row)
        for (int i = 0; i < half; ++i) {
          const std::size_t lo = row * c.d + i, hi = lo + half;
          const double scale = std::abs(double(x[lo])) + std::abs(double(x[hi]));
          for (std::size_t at : {lo, hi}) {
            ASSERT_NEAR(got[at], want[at], 1e-6 * scale) << "row " << row << " channel " << at % c.d;
            ASSERT_NEAR(to_float(narrow[at]), want[at], ulp_of<BFloat16>(want[at]) + 1e-6 * scale)
                << "row " << row << " channel " << at % c.d;
          }
        }
    }
}

TEST_F(GpuOps, SwigluMatchesTheCpu) {
  for (std::uint64_t seed : kSeeds)
    for (int n : {1, 3, 97, 1536, 14336})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " n " << n << " batch " << batch);
        // A fused [gate | up] product: up sits n floats after gate.
        const std::int64_t stride = 2 * std::int64_t(n);
        const auto gate_up = random_tensor<float>(batch * stride, seed, 6.0f);
        std::vector<float> want(std::size_t(batch) * n);
        cpu::swiglu(gate_up.data(), gate_up.data() + n, batch, n, stride, want.data());
        auto d_in = upload(gate_up);
        DeviceArray<float> d_out(want.size());
        DeviceArray<Half> d_half(want.size());
        gpu::swiglu(d_in.data(), d_in.data() + n, batch, n, stride, d_out.data(), stream_);
        gpu::swiglu(d_in.data(), d_in.data() + n, batch, n, stride, d_half.data(), stream_);
        sync();
        const auto got = d_out.to_host();
        const auto got_half = d_half.to_host();
        for (std::size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 2e-6 * std::abs(want[i]) + 1e-37) << "element " << i;
          ASSERT_NEAR(to_float(got_half[i]), want[i], ulp_of<Half>(want[i])) << "element " << i;
        }
      }
}

TEST_F(GpuOps, AddAndCastEqualTheCpuBitForBit) {
  for (std::uint64_t seed : kSeeds)
    for (std::int64_t n : {1, 3, 97, 1537, 257 * 1024 + 3}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " n " << n);
      const auto x = random_tensor<float>(n, seed, 100.0f);
      const auto y = random_tensor<float>(n, seed + 1);
      auto want = x;
      cpu::add(want.data(), y.data(), n);
      std::vector<Half> want_h(n);
      std::vector<BFloat16> want_bf(n);
      cpu::cast(want.data(), n, want_h.data());
      cpu::cast(want.data(), n, want_bf.data());

      auto d_x = upload(x);
      auto d_y = upload(y);
      DeviceArray<Half> d_h(n);
      DeviceArray<BFloat16> d_bf(n);
      DeviceArray<float> d_back_h(n), d_back_bf(n);
      gpu::add(d_x.data(), d_y.data(), n, stream_);
      gpu::cast(d_x.data(), n, d_h.data(), stream_);
      gpu::cast(d_x.data(), n, d_bf.data(), stream_);
      gpu::cast(d_h.data(), n, d_back_h.data(), stream_);
      gpu::cast(d_bf.data(), n, d_back_bf.data(), stream_);
      sync();
      ASSERT_EQ(d_x.to_host(), want);
      const auto h = d_h.to_host();
      const auto bf = d_bf.to_host();
      const auto back_h = d_back_h.to_host();
      const auto back_bf = d_back_bf.to_host();
      for (std::int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(h[i].bits, want_h[i].bits) << "element " << i;
        ASSERT_EQ(bf[i].bits, want_bf[i].bits) << "element " << i;
        ASSERT_EQ(back_h[i], to_float(want_h[i])) << "element " << i;
        ASSERT_EQ(back_bf[i], to_float(want_bf[i])) << "element " << i;
      }
    }
}

struct SpecCase {
  int q_heads, kv_heads, d, r;
  std::int64_t hidden;
  int batch;
};
// SmolLM2-135M and llama-3-8b attention shapes, then a small awkward one.
constexpr SpecCase kSpecCases[] = {
    {9, 3, 64, 4, 576, 1}, {9, 3, 64, 4, 576, 3}, {32, 8, 128, 8, 4096, 2}, {4, 2, 8, 3, 97, 3}};

LabelChannels random_label_channels(const SpecCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  LabelChannels lc{1, c.kv_heads, c.r, {}};
  std::vector<int> all(c.d);
  for (int h = 0; h < c.kv_heads; ++h) {
    for (int i = 0; i < c.d; ++i) all[i] = i;
    std::shuffle(all.begin(), all.end(), rng);
    lc.index.insert(lc.index.end(), all.begin(), all.begin() + c.r);
  }
  return lc;
}

TYPED_TEST(GpuModelOps, SpeculativeQueryMatchesTheCpuAndTheFullGpuQuery) {
  using W = TypeParam;
  for (std::uint64_t seed : kSeeds)
    for (const SpecCase& c : kSpecCases) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " q " << c.q_heads << " d " << c.d << " batch " << c.batch);
      const AttentionShape shape{1, c.q_heads, c.kv_heads, c.d};
      const auto lc = random_label_channels(c, seed);
      const std::int64_t q_rows = std::int64_t(c.q_heads) * c.d;
      const auto w_q = random_tensor<W>(q_rows * c.hidden, seed + 1);
      const auto x = random_tensor<float>(c.batch * c.hidden, seed + 2);
      const auto positions = random_ints(c.batch, 0, 200000, seed + 3);
      const auto pack = pack_speculative_query(w_q.data(), c.hidden, shape, lc, 0);

      const auto x_rounded = rounded_to<W>(x);
      std::vector<float> want(c.batch * q_rows);
      cpu::speculative_query(pack, x_rounded.data(), RopeSpec{c.batch, c.q_heads, c.d, positions.data(), 100000.0f},
                             want.data());
      std::vector<float> magnitude(want.size());
      const auto abs_x = magnitudes(x_rounded);
      cpu::matmul(magnitudes(w_q).data(), q_rows, c.hidden, abs_x.data(), c.batch, magnitude.data());

      gpu::BlasHandle blas(this->stream_);
      gpu::DeviceSpeculativeQuery<W> d_pack(pack, c.batch);
      std::vector<W> x_w(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) x_w[i] = from_float<W>(x[i]);
      auto d_x = upload(x_w);
      auto d_pos = upload(positions);
      auto d_w_q = upload(w_q);
      const RopeSpec spec{c.batch, c.q_heads, c.d, d_pos.data(), 100000.0f};
      DeviceArray<float> d_spec(want.size()), d_full(want.size());
      DeviceArray<Half> d_spec_half(want.size());
      gpu::speculative_query(blas, d_pack, d_x.data(), spec, d_spec.data());
      gpu::speculative_query(blas, d_pack, d_x.data(), spec, d_spec_half.data());
      gpu::matmul(blas, gpu::MatmulParams<W>{d_w_q.data(), q_rows, c.hidden, d_x.data(), c.batch, d_full.data()});
      gpu::rope(d_full.data(), spec, d_full.data(), this->stream_);
      this->sync();
      const auto got = d_spec.to_host();
      const auto got_half = d_spec_half.to_host();
      const auto full = d_full.to_host();
      const int half = c.d / 2;
      std::vector<bool> packed(std::size_t(q_rows), false);  // [head][channel]
      for (std::int64_t k = 0; k < pack.pairs(); ++k)
        for (int j = 0; j < 2; ++j)
          packed[std::size_t(pack.pair_head[k]) * c.d + pack.pair_channel[k] + j * half] = true;
      for (std::size_t at = 0; at < want.size(); ++at) {
        const std::size_t partner = at % c.d < std::size_t(half) ? at + half : at - half;
        const double tol = 2 * (double(c.hidden) / 8 + 4) * kFloatEps * (magnitude[at] + magnitude[partner]) + 1e-30;
        if (!packed[at % q_rows]) {
          ASSERT_EQ(got[at], 0.0f) << "unpacked channel " << at % c.d << " of row " << at / c.d;
          ASSERT_EQ(got_half[at].bits, 0) << "unpacked channel " << at % c.d << " of row " << at / c.d;
          continue;
        }
        ASSERT_NEAR(got[at], want[at], tol) << "channel " << at % c.d << " of row " << at / c.d;
        ASSERT_NEAR(got[at], full[at], tol) << "channel " << at % c.d << " of row " << at / c.d;
        ASSERT_NEAR(to_float(got_half[at]), want[at], tol + ulp_of<Half>(want[at]))
            << "channel " << at % c.d << " of row " << at / c.d;
      }
      const RopeSpec too_many{c.batch + 1, c.q_heads, c.d, d_pos.data(), 100000.0f};
      EXPECT_THROW(gpu::speculative_query(blas, d_pack, d_x.data(), too_many, d_spec.data()), Error);
    }
}

TEST_F(GpuOps, ArgmaxEqualsTheCpuWithTiesAndNan) {
  for (std::uint64_t seed : kSeeds)
    for (std::int64_t vocab : {1, 3, 97, 49152, 128256})
      for (int batch : kBatches) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " vocab " << vocab << " batch " << batch);
        auto logits = random_tensor<float>(batch * vocab, seed, 4.0f);
        std::mt19937_64 rng(seed);
        std::vector<std::int32_t> first(batch);
        cpu::argmax(logits.data(), batch, vocab, first.data());
        for (int b = 0; b < batch; ++b) {  // ties and NaN at random places
          float* row = logits.data() + b * vocab;
          const float top = row[first[b]];
          for (int copy = 0; copy < 3; ++copy) row[std::int64_t(rng() % std::uint64_t(vocab))] = top;
          row[std::int64_t(rng() % std::uint64_t(vocab))] = std::numeric_limits<float>::quiet_NaN();
        }
        std::vector<std::int32_t> want(batch);
        cpu::argmax(logits.data(), batch, vocab, want.data());
        auto d_logits = upload(logits);
        DeviceArray<std::int32_t> d_out(batch);
        gpu::argmax(d_logits.data(), batch, vocab, d_out.data(), stream_);
        sync();
        ASSERT_EQ(d_out.to_host(), want);
      }
}

TEST_F(GpuOps, TargetLogProbMatchesTheCpu) {
  for (std::uint64_t seed : kSeeds)
    for (std::int64_t vocab : {1, 3, 97, 49152, 128256})
      for (int batch : kBatches)
        for (float scale : {1.0f, 30.0f}) {
          SCOPED_TRACE(testing::Message() << "seed " << seed << " vocab " << vocab << " batch " << batch);
          const auto logits = random_tensor<float>(batch * vocab, seed, scale);
          const auto targets = random_ints(batch, 0, std::int32_t(vocab - 1), seed + 1);
          std::vector<float> want(batch);
          cpu::target_log_prob(logits.data(), batch, vocab, targets.data(), want.data());
          auto d_logits = upload(logits);
          auto d_targets = upload(targets);
          DeviceArray<float> d_out(batch);
          gpu::target_log_prob(d_logits.data(), batch, vocab, d_targets.data(), d_out.data(), stream_);
          sync();
          const auto got = d_out.to_host();
          for (int b = 0; b < batch; ++b) ASSERT_NEAR(got[b], want[b], 4e-6 * (1 + std::abs(want[b]))) << "row " << b;
        }
  auto d_logits = upload(std::vector<float>(6, 0.0f));
  auto d_targets = upload(std::vector<std::int32_t>{1, 3});
  DeviceArray<float> d_out(2);
  gpu::target_log_prob(d_logits.data(), 2, 3, d_targets.data(), d_out.data(), stream_);
  sync();
  const auto out = d_out.to_host();
  EXPECT_NEAR(out[0], -std::log(3.0), 1e-6);
  EXPECT_TRUE(std::isnan(out[1])) << "a target outside the vocabulary";
}

}  // namespace
}  // namespace dso
