// Two cuda engines in one process, each on its own stream named in its
// DeviceContext (device 0 here: a machine with one GPU), decoded in turns:
// each must give the outputs and counters of an engine run alone.
#include <gtest/gtest.h>

#include <vector>

#include "gpu/memory.h"
#include "offload/engine.h"
#include "support/engine_cases.h"
#include "support/gpu_test_util.h"

namespace dso::test {
namespace {

// One engine's device copies of a run's inputs and its outputs, all queued on `stream`.
struct DeviceRun {
  DeviceRun(const EngineConfig& config, const DecodeInputs<Half>& in, cudaStream_t stream) : in(in) {
    EngineConfig c = config;
    c.backend = Backend::cuda;
    c.device.stream = stream;
    engine = Engine::create(c);
    for (int s = 0; s < in.batch; ++s)
      for (int l = 0; l < in.shape.layers; ++l) {
        const std::size_t i = std::size_t(s) * in.shape.layers + l;
        if (in.prefill[std::size_t(s)] == 0) continue;
        buffers.emplace_back(in.prefill_k[i]);
        buffers.emplace_back(in.prefill_v[i]);
        engine->prefill(l, s, buffers[buffers.size() - 2].data(), buffers.back().data(), in.prefill[std::size_t(s)]);
      }
    DSO_CUDA_CHECK(cudaDeviceSynchronize());  // the uploads ran on the legacy stream
  }

  void decode(int step, int l) {
    const std::size_t i = std::size_t(step) * in.shape.layers + l;
    for (const std::vector<Half>* x : {&in.q[i], &in.k_new[i], &in.v_new[i], &in.q_next[i]}) buffers.emplace_back(*x);
    DSO_CUDA_CHECK(cudaDeviceSynchronize());
    const std::size_t n = buffers.size();
    outputs.emplace_back(in.q[i].size());
    engine->decode(l, buffers[n - 4].data(), buffers[n - 3].data(), buffers[n - 2].data(),
                   engine->needs_q_next(l) ? buffers[n - 1].data() : nullptr, outputs.back().data());
  }

  const DecodeInputs<Half>& in;
  std::unique_ptr<Engine> engine;
  std::vector<DeviceArray<Half>> buffers;
  std::vector<DeviceArray<Half>> outputs;
};

TEST(GpuEngineContext, TwoEnginesOnTwoStreamsEqualOneAlone) {
  DSO_SKIP_WITHOUT_GPU();
  const EngineCase c = engine_cases()[0];  // head_dim 16 is not for the GPU kernels: widen it
  EngineCase wide = c;
  wide.shape.head_dim = 64;
  const DecodeInputs<Half> in = case_inputs<Half>(wide, engine_seeds[0], true);
  for (Policy p : {Policy::ds_offload, Policy::flexgen}) {
    const EngineConfig config = case_config(wide, in, p);
    gpu::Stream solo_stream, first_stream, second_stream;
    DeviceRun solo(config, in, solo_stream.get());
    for (int step = 0; step < in.steps; ++step)
      for (int l = 0; l < in.shape.layers; ++l) solo.decode(step, l);

    DeviceRun first(config, in, first_stream.get()), second(config, in, second_stream.get());
    EXPECT_GT(first.engine->config().device.multiprocessors, 0);
    for (int step = 0; step < in.steps; ++step)
      for (int l = 0; l < in.shape.layers; ++l) {
        first.decode(step, l);
        second.decode(step, l);
      }
    ASSERT_EQ(first.outputs.size(), solo.outputs.size());
    for (std::size_t i = 0; i < solo.outputs.size(); ++i) {
      const std::vector<Half> want = solo.outputs[i].download();
      const std::vector<Half> a = first.outputs[i].download(), b = second.outputs[i].download();
      for (std::size_t k = 0; k < want.size(); ++k) {
        ASSERT_EQ(a[k].bits, want[k].bits) << policy_name(p) << " output " << i;
        ASSERT_EQ(b[k].bits, want[k].bits) << policy_name(p) << " output " << i;
      }
    }
    EXPECT_EQ(first.engine->stats().h2d_bytes, solo.engine->stats().h2d_bytes);
    EXPECT_EQ(second.engine->stats().h2d_bytes, solo.engine->stats().h2d_bytes);
  }
}

}  // namespace
}  // namespace dso::test
