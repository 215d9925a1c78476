// The cuda backend of the engine against the cpu backend, policy by policy,
// over many decode steps on identical inputs: outputs within the dtype's
// rounding, identical byte and token counts; and the cuda policies against
// each other where the design says they must agree exactly.
//
// Inputs lie on a grid of multiples of 1/8 (|x| <= 12), so every label score
// is a sum of exact products far below 2^24 ulps: the cpu and GPU scores are
// bit-identical whatever the summation order or FMA contraction, ties
// included, and both backends must select exactly the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "offload/cuda_engine.h"
#include "offload/engine.h"
#include "support/engine_cases.h"
#include "support/engine_harness.h"
#include "support/gpu_test_util.h"

namespace dso::test {
namespace {

constexpr Policy all_policies[] = {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload,
                                   Policy::ds_offload_sync};

// A normal value rounded to the 1/8 grid, |x| <= 3, times 4 on planted channels.
float grid_value(std::mt19937_64& rng, bool outlier) {
  std::normal_distribution<float> normal(0.0f, 4.0f);
  const float steps = std::clamp(std::round(normal(rng)), -24.0f, 24.0f);
  return steps / 8.0f * (outlier ? 4.0f : 1.0f);
}

// make_inputs' structure (planted outlier channels per layer and KV head),
// with grid values.
template <class T>
DecodeInputs<T> grid_inputs(const EngineCase& c, std::uint64_t seed, bool q_next_is_true_query) {
  const AttentionShape& shape = c.shape;
  std::mt19937_64 rng(seed);
  const int d = shape.head_dim;
  DecodeInputs<T> in;
  in.shape = shape;
  in.batch = int(c.prefill.size());
  in.steps = c.steps;
  in.prefill = c.prefill;
  in.outliers.resize(std::size_t(shape.layers) * shape.kv_heads * 2);
  for (int& channel : in.outliers) channel = int(rng() % std::uint64_t(d));
  const auto fill = [&](int layer, std::int64_t tokens, int heads, int group) {
    std::vector<T> x(std::size_t(tokens) * heads * d);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (int h = 0; h < heads; ++h) {
        const int* o = &in.outliers[(std::size_t(layer) * shape.kv_heads + std::size_t(h / group)) * 2];
        for (int ch = 0; ch < d; ++ch)
          x[(std::size_t(t) * heads + h) * d + ch] = from_float<T>(grid_value(rng, ch == o[0] || ch == o[1]));
      }
    return x;
  };
  for (int s = 0; s < in.batch; ++s)
    for (int l = 0; l < shape.layers; ++l) {
      in.prefill_k.push_back(fill(l, c.prefill[std::size_t(s)], shape.kv_heads, 1));
      in.prefill_v.push_back(fill(l, c.prefill[std::size_t(s)], shape.kv_heads, 1));
    }
  for (int step = 0; step < c.steps; ++step)
    for (int l = 0; l < shape.layers; ++l) {
      in.q.push_back(fill(l, in.batch, shape.q_heads, shape.group()));
      in.k_new.push_back(fill(l, in.batch, shape.kv_heads, 1));
      in.v_new.push_back(fill(l, in.batch, shape.kv_heads, 1));
    }
  for (int step = 0; step < c.steps; ++step)
    for (int l = 0; l < shape.layers; ++l) {
      const int next = std::min(l + 1, shape.layers - 1);
      in.q_next.push_back(q_next_is_true_query ? in.q[std::size_t(step) * shape.layers + next]
                                               : fill(next, in.batch, shape.q_heads, shape.group()));
    }
  return in;
}

// GQA groups 1 to 8, head dims 64 and 128, contexts of 0, 1, primes and just
// past the kernels' block sizes, k = 1 and k past the context, sink and recent
// windows, an odd layer count, sync layers past 0, sequences of different
// lengths (so k_fraction gives each its own k).
std::vector<EngineCase> gpu_cases() {
  return {
      {"g1_d64", {3, 2, 2, 64}, {37, 1}, {0, 0, 0}, 0.2, 2, {0}, 6},
      {"g3_d128_three_sequences", {3, 6, 2, 128}, {301, 0, 29}, {0, 1, 3}, 1.0 / 16, 8, {0}, 6},
      {"g4_d64_sync_layers", {4, 8, 2, 64}, {1029}, {7, 2, 5}, 0, 4, {0, 2}, 6},
      {"g8_d128_k1", {2, 16, 2, 128}, {777, 5}, {1, 3, 2}, 0, 8, {0}, 6},
      {"g4_k_past_context", {3, 4, 1, 128}, {130, 64}, {100000, 1, 1}, 0, 8, {0}, 5},
      {"g2_odd_layers_wide_window", {5, 4, 2, 64}, {2500, 2049}, {33, 4, 70}, 0, 4, {0, 3}, 5},
  };
}

// Long enough for the top-k to split each head over several tiles.
EngineCase long_case() { return {"g4_d128_long", {2, 8, 2, 128}, {20011}, {0, 4, 64}, 1.0 / 16, 8, {0}, 3}; }

// Small, for the sanitizers.
std::vector<EngineCase> quick_cases() {
  return {{"quick_g3", {2, 6, 2, 64}, {67, 3}, {0, 1, 2}, 0.25, 4, {0}, 3},
          {"quick_g4", {3, 4, 1, 128}, {300}, {9, 0, 0}, 0, 8, {0}, 3}};
}

const std::vector<std::uint64_t> gpu_seeds{21, 22, 23};

template <class T>
EngineConfig gpu_config(const EngineCase& c, const DecodeInputs<T>& in, Policy p, Backend backend) {
  EngineConfig config = case_config(c, in, p);
  config.backend = backend;
  return config;
}

// The cuda engine over the same inputs as run_engine, from device buffers on
// a stream of the test's own; inputs are uploaded into the same buffers each
// layer (so a prefetch reading them late would see the next layer's), every
// output is poisoned before its decode and read back at the end.
template <class T>
EngineRun<T> run_cuda(const EngineConfig& config, const DecodeInputs<T>& in, const CudaEngineOptions& options = {}) {
  gpu::Stream stream;
  const auto engine = create_cuda_engine(config, options);
  engine->set_stream(stream.get());
  // Every upload is ordered on the stream: a plain cudaMemcpy runs on the
  // legacy default stream, which the engine's stream does not wait for.
  const auto upload = [&](DeviceArray<T>& to, const std::vector<T>& from) {
    DSO_CUDA_CHECK(cudaMemcpyAsync(to.data(), from.data(), from.size() * sizeof(T), cudaMemcpyHostToDevice,
                                   stream.get()));
  };
  const int layers = in.shape.layers;
  std::vector<DeviceArray<T>> prefill;  // alive until the queued appends have run
  for (int s = 0; s < in.batch; ++s)
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(s) * layers + l;
      if (in.prefill[std::size_t(s)] == 0) continue;
      prefill.emplace_back(in.prefill_k[i].size());
      upload(prefill.back(), in.prefill_k[i]);
      prefill.emplace_back(in.prefill_v[i].size());
      upload(prefill.back(), in.prefill_v[i]);
      engine->prefill(l, s, prefill[prefill.size() - 2].data(), prefill.back().data(), in.prefill[std::size_t(s)]);
    }

  DeviceArray<T> q(in.q[0].size()), q_next(in.q[0].size()), k(in.k_new[0].size()), v(in.v_new[0].size());
  std::vector<DeviceArray<T>> out;
  for (std::size_t i = 0; i < in.q.size(); ++i) out.emplace_back(in.q[0].size());
  EngineRun<T> run;
  for (int step = 0; step < in.steps; ++step) {
    engine->reset_stats();
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(step) * layers + l;
      std::vector<std::int64_t> lengths;
      for (int s = 0; s < in.batch; ++s) lengths.push_back(engine->length(s, l));
      run.lengths_before.push_back(lengths);
      upload(q, in.q[i]);
      upload(k, in.k_new[i]);
      upload(v, in.v_new[i]);
      upload(q_next, in.q_next[i]);
      DSO_CUDA_CHECK(cudaMemsetAsync(out[i].data(), kPoisonByte, out[i].size() * sizeof(T), stream.get()));
      const bool pass_q_next = config.policy == Policy::ds_offload && l + 1 < layers;
      engine->decode(l, q.data(), k.data(), v.data(), pass_q_next ? q_next.data() : nullptr, out[i].data());
    }
    run.step_stats.push_back(engine->stats());
  }
  stream.synchronize();
  for (const DeviceArray<T>& o : out) run.out.push_back(o.download());
  return run;
}

template <class T>
std::vector<double> widened(const std::vector<T>& x) {
  std::vector<double> w(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) w[i] = to_float(x[i]);
  return w;
}

// The same configuration on both backends.
template <class T>
void expect_backends_agree(const EngineCase& c, const DecodeInputs<T>& in, EngineConfig config) {
  config.backend = Backend::cpu;
  const auto cpu = run_engine(config, in);
  config.backend = Backend::cuda;
  const auto gpu = run_cuda(config, in);
  ASSERT_EQ(gpu.out.size(), cpu.out.size());
  for (std::size_t i = 0; i < cpu.out.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i / std::size_t(c.shape.layers)) + " layer " +
                 std::to_string(i % std::size_t(c.shape.layers)));
    expect_close(gpu.out[i], widened(cpu.out[i]));
  }
  for (int step = 0; step < c.steps; ++step) {
    const StepStats& want = cpu.step_stats[std::size_t(step)];
    const StepStats& got = gpu.step_stats[std::size_t(step)];
    EXPECT_EQ(got.steps, 1) << "step " << step;
    EXPECT_EQ(got.h2d_bytes, want.h2d_bytes) << "step " << step;
    EXPECT_EQ(got.tokens_selected, want.tokens_selected) << "step " << step;
  }
  EXPECT_EQ(gpu.lengths_before, cpu.lengths_before);
}

template <class T>
void expect_matches_cpu(const EngineCase& c, std::uint64_t seed, const DecodeInputs<T>& in, Policy p) {
  SCOPED_TRACE(trace(c, seed, p) + " dtype " + std::string(dtype_name(dtype_of<T>())));
  expect_backends_agree(c, in, gpu_config(c, in, p, Backend::cpu));
}

// Every policy on one case, over the given seeds.
template <class T>
void expect_case_matches_cpu(const EngineCase& c, const std::vector<std::uint64_t>& seeds) {
  for (std::uint64_t seed : seeds) {
    const auto in = grid_inputs<T>(c, seed, false);
    for (Policy p : all_policies) expect_matches_cpu<T>(c, seed, in, p);
  }
}

template <class T>
class GpuEngineTest : public ::testing::Test {};
using DTypes = ::testing::Types<Half, BFloat16>;
TYPED_TEST_SUITE(GpuEngineTest, DTypes);

TYPED_TEST(GpuEngineTest, EveryPolicyMatchesCpuEngine) {
  DSO_SKIP_WITHOUT_GPU();
  for (const EngineCase& c : gpu_cases()) expect_case_matches_cpu<TypeParam>(c, gpu_seeds);
}

TYPED_TEST(GpuEngineTest, LongContextMatchesCpuEngine) {
  DSO_SKIP_WITHOUT_GPU();
  expect_case_matches_cpu<TypeParam>(long_case(), {gpu_seeds[0]});
}

// The sanitizers' subset.
TYPED_TEST(GpuEngineTest, QuickCasesMatchCpuEngine) {
  DSO_SKIP_WITHOUT_GPU();
  for (const EngineCase& c : quick_cases()) expect_case_matches_cpu<TypeParam>(c, {gpu_seeds[0]});
}

// SparQ-style selection under ds_gpu: channels picked from each step's query
// (the grid makes equal sums over the group common, so the order among ties
// is exercised) and scores over the full keys; on the grid the scores are
// exact on both backends, so they select the same tokens.
template <class T>
void expect_sparq_matches_cpu(const EngineCase& c, std::uint64_t seed) {
  const auto in = grid_inputs<T>(c, seed, false);
  const int d = c.shape.head_dim;
  for (int r : {1, 3, d / 16, d / 4, d}) {
    SCOPED_TRACE(trace(c, seed, Policy::ds_gpu) + " sparq r " + std::to_string(r) + " dtype " +
                 std::string(dtype_name(dtype_of<T>())));
    EngineConfig config = gpu_config(c, in, Policy::ds_gpu, Backend::cpu);
    config.selector = Selector::sparq;
    config.sparq_r = r;
    config.channels = {};  // no calibration: the cuda engine keeps no labels
    expect_backends_agree(c, in, config);
  }
}

TYPED_TEST(GpuEngineTest, SparqMatchesCpuEngine) {
  DSO_SKIP_WITHOUT_GPU();
  for (const EngineCase& c : gpu_cases())
    for (std::uint64_t seed : gpu_seeds) expect_sparq_matches_cpu<TypeParam>(c, seed);
}

TYPED_TEST(GpuEngineTest, SparqLongContextMatchesCpuEngine) {
  DSO_SKIP_WITHOUT_GPU();
  expect_sparq_matches_cpu<TypeParam>(long_case(), gpu_seeds[0]);
}

// Policies that attend the same rows in the same order through the same plan
// give the same bits: the host cache, the prefetcher and the window change
// where rows come from, never what attention computes.
template <class T>
void expect_policies_equal(Policy p, Policy reference, bool q_next_is_true_query) {
  std::vector<EngineCase> cases = gpu_cases();
  cases.push_back(long_case());
  for (const EngineCase& c : cases)
    for (std::uint64_t seed : gpu_seeds) {
      SCOPED_TRACE(trace(c, seed, p) + " against " + std::string(policy_name(reference)));
      const auto in = grid_inputs<T>(c, seed, q_next_is_true_query);
      const auto want = run_cuda(gpu_config(c, in, reference, Backend::cuda), in);
      const auto got = run_cuda(gpu_config(c, in, p, Backend::cuda), in);
      for (std::size_t i = 0; i < want.out.size(); ++i) expect_bitwise_equal(got.out[i], want.out[i]);
    }
}

TYPED_TEST(GpuEngineTest, OffloadWithTrueNextQueryEqualsDsGpu) {
  DSO_SKIP_WITHOUT_GPU();
  expect_policies_equal<TypeParam>(Policy::ds_offload, Policy::ds_gpu, true);
}

TYPED_TEST(GpuEngineTest, OffloadSyncEqualsDsGpu) {
  DSO_SKIP_WITHOUT_GPU();
  expect_policies_equal<TypeParam>(Policy::ds_offload_sync, Policy::ds_gpu, false);
}

TYPED_TEST(GpuEngineTest, FlexgenEqualsDenseGpu) {
  DSO_SKIP_WITHOUT_GPU();
  expect_policies_equal<TypeParam>(Policy::flexgen, Policy::dense_gpu, false);
}

// A budget past the context selects everything: sparse attention is dense.
TYPED_TEST(GpuEngineTest, FullBudgetEqualsDense) {
  DSO_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (EngineCase c : gpu_cases()) {
    c.budget.k = c.capacity();
    c.k_fraction = 0;
    SCOPED_TRACE(c.name);
    const auto in = grid_inputs<T>(c, gpu_seeds[0], false);
    const auto dense = run_cuda(gpu_config(c, in, Policy::dense_gpu, Backend::cuda), in);
    for (Policy p : {Policy::ds_gpu, Policy::ds_offload, Policy::ds_offload_sync}) {
      SCOPED_TRACE(policy_name(p));
      const auto run = run_cuda(gpu_config(c, in, p, Backend::cuda), in);
      for (std::size_t i = 0; i < dense.out.size(); ++i) expect_close(run.out[i], widened(dense.out[i]));
    }
  }
}

EngineCase small_case() { return quick_cases().front(); }

TEST(GpuEngine, SpeculativeLayerWithoutPrefetchIsRefused) {
  DSO_SKIP_WITHOUT_GPU();
  const EngineCase c = small_case();
  const auto in = grid_inputs<Half>(c, 1, true);
  const auto engine = Engine::create(gpu_config(c, in, Policy::ds_offload, Backend::cuda));
  DeviceArray<Half> q(in.q[0]), k(in.k_new[0]), v(in.v_new[0]), out(in.q[0].size());
  try {
    engine->decode(1, q.data(), k.data(), v.data(), nullptr, out.data());
    ADD_FAILURE() << "decode of a speculative layer with nothing prefetched did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("decode layer 0 with q_next first"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine->length(0, 1), 0);
}

TEST(GpuEngine, HostPointersAreRefused) {
  DSO_SKIP_WITHOUT_GPU();
  const EngineCase c = small_case();
  const auto in = grid_inputs<Half>(c, 2, true);
  const auto engine = Engine::create(gpu_config(c, in, Policy::ds_gpu, Backend::cuda));
  try {
    engine->prefill(0, 0, in.prefill_k[0].data(), in.prefill_v[0].data(), c.prefill[0]);
    ADD_FAILURE() << "prefill from host memory did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be a device pointer"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine->length(0, 0), 0);
}

TEST(GpuEngine, UnsupportedShapeIsRefused) {
  DSO_SKIP_WITHOUT_GPU();
  EngineConfig config;
  config.shape = {2, 4, 2, 96};
  config.backend = Backend::cuda;
  config.policy = Policy::dense_gpu;
  config.capacity = 64;
  try {
    Engine::create(config);
    ADD_FAILURE() << "head_dim 96 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 96"), std::string::npos) << e.what();
  }
}

// Phase times are measured only when asked for, and then every phase the
// policy runs takes time.
TEST(GpuEngine, PhaseTimesOnlyWhenAsked) {
  DSO_SKIP_WITHOUT_GPU();
  const EngineCase c = small_case();
  const auto in = grid_inputs<Half>(c, 3, true);
  for (Policy p : all_policies) {
    SCOPED_TRACE(policy_name(p));
    const EngineConfig config = gpu_config(c, in, p, Backend::cuda);
    const StepStats timed = run_cuda(config, in, {true}).step_stats.back();
    EXPECT_GT(timed.ms_attend, 0.0);
    EXPECT_EQ(timed.ms_select > 0.0, is_sparse(p));
    EXPECT_EQ(timed.ms_fetch > 0.0, keeps_kv_on_host(p));
    const StepStats untimed = run_cuda(config, in).step_stats.back();
    EXPECT_EQ(untimed.ms_select + untimed.ms_fetch + untimed.ms_attend, 0.0);
  }
}

// SparQ keeps no label cache: its GPU footprint is the K/V and the selection,
// and a policy that selects from labels refuses it.
TEST(GpuEngine, SparqKeepsNoLabelsAndIsDsGpuOnly) {
  DSO_SKIP_WITHOUT_GPU();
  const EngineCase c = small_case();
  const auto in = grid_inputs<Half>(c, 4, true);
  EngineConfig config = gpu_config(c, in, Policy::ds_gpu, Backend::cuda);
  config.selector = Selector::sparq;
  config.sparq_r = 4;
  config.channels = {};
  EXPECT_EQ(Engine::plan(config).label_bytes, 0);
  EXPECT_NO_THROW(Engine::create(config));
  for (Policy p : {Policy::ds_offload, Policy::ds_offload_sync}) {
    EngineConfig offload = gpu_config(c, in, p, Backend::cuda);
    offload.selector = Selector::sparq;
    offload.sparq_r = 4;
    EXPECT_THROW(Engine::create(offload), Error) << policy_name(p);
  }
}

}  // namespace
}  // namespace dso::test
