// The decoder's GPU path against its CPU path (itself checked against float64
// in decoder_test.cpp): the prefill attention kernel, dummy weights made on
// the device, logits of the tiny model, and greedy tokens of SmolLM2. Skips
// without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/device.h"
#include "cpu/attention.h"
#include "gpu/device_array.h"
#include "gpu/prefill_attention.h"
#include "model/cuda_stream.h"
#include "model/decoder.h"
#include "model/device_llama_weights.h"
#include "model/dummy_weights.h"
#include "model/gguf_weights.h"
#include "model/tokenizer.h"
#include "support/fill.h"
#include "support/smollm2.h"
#include "support/tiny_llama.h"

namespace dso {
namespace {

using gpu::DeviceArray;

constexpr const char* kNoGpu = "no CUDA device: the GPU decoder is not tested here";

class RequiresGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_available()) GTEST_SKIP() << kNoGpu;
  }
};

template <class T>
DeviceArray<T> upload(const std::vector<T>& host) {
  return DeviceArray<T>(std::span<const T>(host));
}

struct PrefillCase {
  int tokens;
  std::int64_t first;
  int q_heads;
  int kv_heads;
  int head_dim;
};

// Awkward sizes: one token, a tile of 32 keys and one past it, head_dim not a
// multiple of 32, groups of 1, 2 and 3.
constexpr PrefillCase kPrefillCases[] = {
    {1, 0, 1, 1, 16}, {5, 0, 4, 2, 16}, {7, 26, 9, 3, 64}, {33, 0, 2, 2, 100}, {3, 70, 8, 8, 128}, {2, 40, 2, 1, 256},
};

class GpuPrefillAttention : public RequiresGpu {};

TEST_F(GpuPrefillAttention, MatchesCpuDenseAttentionOverTheCausalPrefix) {
  const CudaStream stream;
  for (const PrefillCase& c : kPrefillCases)
    for (std::uint64_t seed : {601, 602}) {
      SCOPED_TRACE("tokens " + std::to_string(c.tokens) + " from " + std::to_string(c.first) + ", heads " +
                   std::to_string(c.q_heads) + "/" + std::to_string(c.kv_heads) + " of " + std::to_string(c.head_dim) +
                   ", seed " + std::to_string(seed));
      const std::int64_t keys = c.first + c.tokens;
      const auto q = test::random_tensor<Half>(std::size_t(c.tokens) * c.q_heads * c.head_dim, seed);
      const auto k = test::random_tensor<Half>(std::size_t(keys) * c.kv_heads * c.head_dim, seed + 10);
      const auto v = test::random_tensor<Half>(std::size_t(keys) * c.kv_heads * c.head_dim, seed + 20);
      const DeviceArray<Half> dq = upload(q), dk = upload(k), dv = upload(v);
      DeviceArray<Half> out(q.size());
      gpu::prefill_attention(gpu::PrefillAttentionParams<Half>{dq.data(), dk.data(), dv.data(), out.data(), c.first,
                                                               c.tokens, c.q_heads, c.kv_heads, c.head_dim},
                             stream.get());
      stream.synchronize();
      const std::vector<Half> got = out.to_host();

      const int d = c.head_dim, group = c.q_heads / c.kv_heads;
      std::vector<Half> head_k, head_v;
      std::vector<float> want(std::size_t(group) * d);
      for (int t = 0; t < c.tokens; ++t)
        for (int h = 0; h < c.kv_heads; ++h) {
          const std::int64_t n = c.first + t + 1;
          head_k.clear();
          head_v.clear();
          for (std::int64_t j = 0; j < n; ++j)
            for (int ch = 0; ch < d; ++ch) {
              head_k.push_back(k[std::size_t((j * c.kv_heads + h) * d + ch)]);
              head_v.push_back(v[std::size_t((j * c.kv_heads + h) * d + ch)]);
            }
          const std::size_t at = (std::size_t(t) * c.q_heads + std::size_t(h) * group) * d;
          cpu::dense_attention(q.data() + at, group, d, head_k.data(), head_v.data(), n, want.data());
          for (std::size_t i = 0; i < want.size(); ++i)
            ASSERT_NEAR(to_float(got[at + i]), want[i], 2e-3 * (1.0 + std::abs(want[i])))
                << "token " << t << " KV head " << h << " element " << i;
        }
    }
}

class GpuDummyWeights : public RequiresGpu {};

TEST_F(GpuDummyWeights, AreTheHostValuesMadeOnTheDevice) {
  const LlamaConfig config = test::tiny_llama_config();
  const auto source = dummy_weights(config, 61);
  const CudaStream stream;
  const DeviceLlamaWeights<BFloat16> w(*source, stream.get());
  const auto host = [&](WeightKind kind, int layer) {
    std::vector<float> values(std::size_t(weight_shape(config, kind).size()));
    source->read(kind, layer, values);
    std::vector<std::uint16_t> bits;
    for (float x : values) bits.push_back(from_float<BFloat16>(x).bits);
    return bits;
  };
  const auto device = [](const DeviceArray<BFloat16>& a) {
    std::vector<std::uint16_t> bits;
    for (BFloat16 x : a.to_host()) bits.push_back(x.bits);
    return bits;
  };
  EXPECT_EQ(device(w.layer(1).wq), host(WeightKind::wq, 1));
  EXPECT_EQ(device(w.layer(0).ffn_norm), host(WeightKind::ffn_norm, 0));
  std::vector<std::uint16_t> gate_up = host(WeightKind::w_gate, 1);
  const std::vector<std::uint16_t> up = host(WeightKind::w_up, 1);
  gate_up.insert(gate_up.end(), up.begin(), up.end());
  EXPECT_EQ(device(w.layer(1).w_gate_up), gate_up);
}

template <class T>
class GpuDecoderTest : public RequiresGpu {};
using KvTypes = ::testing::Types<Half, BFloat16>;
TYPED_TEST_SUITE(GpuDecoderTest, KvTypes);

// The CPU path rounds where the GPU path stores 16-bit values, so the two
// differ by summation order and the rare value that rounds the other way.
TYPED_TEST(GpuDecoderTest, TinyModelLogitsMatchTheCpuPath) {
  const LlamaConfig config = test::tiny_llama_config(64);
  const DType dtype = dtype_of<TypeParam>();
  const double tol = std::is_same_v<TypeParam, Half> ? 5e-3 : 4e-2;
  constexpr int batch = 2;
  constexpr std::size_t length = 12;
  const std::size_t prompts[batch] = {0, 5};
  for (std::uint64_t seed : {71, 72}) {
    const auto source = dummy_weights(config, seed);
    const LabelChannels channels = test::random_channels(config.attention(), 4, seed);
    for (Policy policy : {Policy::dense_gpu, Policy::ds_offload}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::string(policy_name(policy)));
      std::vector<std::vector<float>> logits[2];
      for (Backend backend : {Backend::cpu, Backend::cuda}) {
        DecoderOptions options = test::decoder_options(policy, dtype, batch, 16, backend);
        options.round_like_gpu = true;
        options.prefill_chunk = 3;
        if (is_sparse(policy)) {
          options.engine.budget.k = 16;  // everything: selection cannot differ
          options.engine.channels = channels;
        }
        const auto decoder = make_decoder(*source, options);
        std::vector<std::vector<std::int32_t>> tokens;
        for (int s = 0; s < batch; ++s) {
          tokens.push_back(test::random_tokens(length, config.vocab_size, seed * 10 + std::uint64_t(s)));
          decoder->prefill(s, std::span(tokens.back()).first(prompts[s]));
        }
        for (std::size_t step = 0; step + prompts[batch - 1] < length; ++step) {
          std::vector<std::int32_t> next;
          for (int s = 0; s < batch; ++s) next.push_back(tokens[std::size_t(s)][prompts[s] + step]);
          decoder->decode(next);
          logits[backend == Backend::cuda].push_back(decoder->logits());
        }
      }
      for (std::size_t step = 0; step < logits[0].size(); ++step)
        for (std::size_t i = 0; i < logits[0][step].size(); ++i)
          ASSERT_NEAR(logits[1][step][i], logits[0][step][i], tol * (1.0 + std::abs(logits[0][step][i])))
              << "step " << step << " logit " << i;
    }
  }
}

class GpuSmolLM2 : public test::SmolLM2File {
 protected:
  void SetUp() override {
    test::SmolLM2File::SetUp();
    if (!IsSkipped() && !gpu_available()) GTEST_SKIP() << kNoGpu;
  }
};

// Free-running greedy decoding on both paths. Where they part, the CPU's two
// candidates must have been a near tie; otherwise the paths disagree.
TEST_F(GpuSmolLM2, GreedyTokensEqualTheCpuPathForThirtyTwoSteps) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(file());
  const std::vector<std::int32_t> prompt = tokenizer.encode(
      "<|im_start|>user\nTell me about the ocean.<|im_end|>\n<|im_start|>assistant\n", {false, true});
  const auto source = gguf_weights(file());
  constexpr int steps = 32;
  std::vector<std::int32_t> greedy[2];
  std::vector<std::vector<float>> cpu_logits;
  for (Backend backend : {Backend::cpu, Backend::cuda}) {
    DecoderOptions options = test::decoder_options(Policy::dense_gpu, DType::f16, 1, 128, backend);
    options.round_like_gpu = true;
    const auto decoder = make_decoder(*source, options);
    decoder->prefill(0, std::span(prompt).first(prompt.size() - 1));
    std::vector<std::int32_t> next{prompt.back()};
    for (int i = 0; i < steps; ++i) {
      decoder->decode(next);
      if (backend == Backend::cpu) cpu_logits.push_back(decoder->logits());
      next = decoder->greedy_tokens();
      greedy[backend == Backend::cuda].push_back(next[0]);
    }
  }
  std::cout << "[ cpu     ] " << tokenizer.decode(greedy[0]) << "\n[ gpu     ] " << tokenizer.decode(greedy[1]) << "\n";
  for (int i = 0; i < steps; ++i) {
    const std::int32_t a = greedy[0][std::size_t(i)], b = greedy[1][std::size_t(i)];
    if (a == b) continue;
    const std::vector<float>& l = cpu_logits[std::size_t(i)];
    EXPECT_LT(l[std::size_t(a)] - l[std::size_t(b)], 0.05f)
        << "step " << i << ": cpu picks " << a << ", gpu " << b << ", not a near tie";
    break;  // later steps continue different texts
  }
}

}  // namespace
}  // namespace dso
