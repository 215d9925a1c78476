// What an engine's configuration says beyond the attention itself: the K/V
// storage format apart from the activations, q and out as strided views, the
// device context; and engines that live side by side in one process.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/kv_format.h"
#include "core/error.h"
#include "support/engine_cases.h"
#include "support/error_of.h"

namespace dso::test {
namespace {

TEST(KVFormat, SizesAndTheFormatOfEachDtype) {
  EXPECT_EQ(kv_format_size(KVFormat::f16), 2);
  EXPECT_EQ(kv_format_size(KVFormat::bf16), 2);
  EXPECT_EQ(kv_format_of(DType::f16), KVFormat::f16);
  EXPECT_EQ(kv_format_of(DType::bf16), KVFormat::bf16);
  EXPECT_NE(error_of([] { kv_format_size(KVFormat(9)); }).find("K/V format 9 has no size"), std::string::npos);
  EXPECT_NE(error_of([] { kv_format_of(DType(7)); }).find("dtype 7 has no K/V format"), std::string::npos);
}

TEST(KVFormat, TheDtypesOwnFormatIsTheDefaultAndAnotherIsRefused) {
  const EngineCase c = engine_cases()[1];
  const DecodeInputs<Half> in = case_inputs<Half>(c, engine_seeds[0], false);
  EngineConfig config = case_config(c, in, Policy::ds_offload);
  EXPECT_EQ(kv_format_in(config), KVFormat::f16);
  const MemoryPlan implicit = Engine::plan(config);
  config.kv_format = KVFormat::f16;
  const MemoryPlan explicit_format = Engine::plan(config);
  EXPECT_EQ(explicit_format.host_bytes, implicit.host_bytes);
  EXPECT_EQ(explicit_format.gpu_bytes, implicit.gpu_bytes);
  config.kv_format = KVFormat::bf16;
  EXPECT_NE(error_of([&] { Engine::plan(config); }).find("kv_format bf16 with dtype f16"), std::string::npos);
}

TEST(DeviceContext, BadValuesAreRefusedBeforeAnything) {
  const EngineCase c = engine_cases()[0];
  const DecodeInputs<Half> in = case_inputs<Half>(c, engine_seeds[0], false);
  EngineConfig config = case_config(c, in, Policy::dense_gpu);
  config.device.index = -1;
  EXPECT_NE(error_of([&] { Engine::plan(config); }).find("device index must not be negative"), std::string::npos);
  config.device = {};
  config.q_strides = {0, config.shape.head_dim - 1};
  EXPECT_NE(error_of([&] { Engine::plan(config); }).find("make heads or sequences overlap"), std::string::npos);
}

// q and out as views into wider buffers: every head padded, every sequence
// padded further. The output must equal the packed run's, bit for bit, and
// the padding must stay as it was.
template <class T>
void check_views(Policy p) {
  for (const EngineCase& c : engine_cases()) {
    SCOPED_TRACE(c.name + " " + std::string(policy_name(p)));
    const DecodeInputs<T> in = case_inputs<T>(c, engine_seeds[2], false);
    const EngineConfig packed = case_config(c, in, p);
    const EngineRun<T> want = run_engine(packed, in);

    const AttentionShape& s = in.shape;
    const std::int64_t head = s.head_dim + 3, sequence = head * s.q_heads + 5;
    EngineConfig viewed = packed;
    viewed.q_strides = {sequence, head};
    viewed.out_strides = {sequence, head};
    const auto to_view = [&](const std::vector<T>& x) {
      std::vector<T> v(std::size_t(sequence) * in.batch, from_float<T>(-7.0f));
      for (int b = 0; b < in.batch; ++b)
        for (int h = 0; h < s.q_heads; ++h)
          for (int c2 = 0; c2 < s.head_dim; ++c2)
            v[std::size_t(b * sequence + h * head + c2)] = x[std::size_t((b * s.q_heads + h) * s.head_dim + c2)];
      return v;
    };
    const auto engine = Engine::create(viewed);
    for (int b = 0; b < in.batch; ++b)
      for (int l = 0; l < s.layers; ++l) {
        const std::size_t i = std::size_t(b) * s.layers + l;
        engine->prefill(l, b, in.prefill_k[i].data(), in.prefill_v[i].data(), in.prefill[std::size_t(b)]);
      }
    for (int step = 0; step < in.steps; ++step)
      for (int l = 0; l < s.layers; ++l) {
        const std::size_t i = std::size_t(step) * s.layers + l;
        const std::vector<T> q = to_view(in.q[i]), q_next = to_view(in.q_next[i]);
        std::vector<T> out = to_view(std::vector<T>(in.q[i].size(), from_float<T>(0.0f)));
        const std::vector<T> padding = out;
        engine->decode(l, q.data(), in.k_new[i].data(), in.v_new[i].data(),
                       engine->needs_q_next(l) ? q_next.data() : nullptr, out.data());
        for (int b = 0; b < in.batch; ++b)
          for (int h = 0; h < s.q_heads; ++h)
            for (int c2 = 0; c2 < s.head_dim; ++c2) {
              const std::size_t at = std::size_t(b * sequence + h * head + c2);
              ASSERT_EQ(out[at].bits, want.out[i][std::size_t((b * s.q_heads + h) * s.head_dim + c2)].bits)
                  << "step " << step << " layer " << l << " sequence " << b << " head " << h;
              out[at] = padding[at];
            }
        for (std::size_t k = 0; k < out.size(); ++k) ASSERT_EQ(out[k].bits, padding[k].bits) << "padding " << k;
      }
  }
}

TEST(EngineViews, StridedQAndOutGiveThePackedOutputs) {
  for (Policy p : {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload, Policy::ds_offload_sync}) {
    check_views<Half>(p);
    check_views<BFloat16>(p);
  }
}

// Two engines of different policies and dtypes, decoded in turns, layer by
// layer: nothing of one may leak into the other (no shared state).
TEST(EngineContext, TwoEnginesSideBySideEqualEachAlone) {
  const EngineCase c = engine_cases()[1];
  const DecodeInputs<Half> in_a = case_inputs<Half>(c, engine_seeds[0], false);
  const DecodeInputs<BFloat16> in_b = case_inputs<BFloat16>(c, engine_seeds[1], false);
  const EngineConfig a = case_config(c, in_a, Policy::ds_offload);
  const EngineConfig b = case_config(c, in_b, Policy::ds_gpu);
  const EngineRun<Half> alone_a = run_engine(a, in_a);
  const EngineRun<BFloat16> alone_b = run_engine(b, in_b);

  const auto ea = Engine::create(a), eb = Engine::create(b);
  const int layers = c.shape.layers;
  for (int s = 0; s < in_a.batch; ++s)
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(s) * layers + l;
      ea->prefill(l, s, in_a.prefill_k[i].data(), in_a.prefill_v[i].data(), in_a.prefill[std::size_t(s)]);
      eb->prefill(l, s, in_b.prefill_k[i].data(), in_b.prefill_v[i].data(), in_b.prefill[std::size_t(s)]);
    }
  for (int step = 0; step < c.steps; ++step) {
    ea->reset_stats();
    eb->reset_stats();
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(step) * layers + l;
      std::vector<Half> out_a(in_a.q[i].size());
      std::vector<BFloat16> out_b(in_b.q[i].size());
      ea->decode(l, in_a.q[i].data(), in_a.k_new[i].data(), in_a.v_new[i].data(),
                 ea->needs_q_next(l) ? in_a.q_next[i].data() : nullptr, out_a.data());
      eb->decode(l, in_b.q[i].data(), in_b.k_new[i].data(), in_b.v_new[i].data(), nullptr, out_b.data());
      for (std::size_t k = 0; k < out_a.size(); ++k) ASSERT_EQ(out_a[k].bits, alone_a.out[i][k].bits);
      for (std::size_t k = 0; k < out_b.size(); ++k) ASSERT_EQ(out_b[k].bits, alone_b.out[i][k].bits);
    }
    EXPECT_EQ(ea->stats().h2d_bytes, alone_a.step_stats[std::size_t(step)].h2d_bytes);
    EXPECT_EQ(eb->stats().tokens_selected, alone_b.step_stats[std::size_t(step)].tokens_selected);
  }
}

}  // namespace
}  // namespace dso::test
