#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli/bench_steps.h"
#include "cli/device_synthetic_tensors.h"
#include "gpu/check.h"
#include "gpu/memory.h"
#include "offload/format_bytes.h"

namespace dso::cli {

// Chunks of up to 64 MiB of K: a 256K context of llama-3-8b at batch 2 is
// 64 GiB of host cache.
void fill_cuda_cache(Engine& engine, const DeviceSyntheticTensors& data, std::int64_t context, cudaStream_t stream,
                     const std::string& run) {
  engine.set_stream(stream);
  const EngineConfig& c = engine.config();
  const std::int64_t token_bytes = std::int64_t(c.shape.kv_heads) * c.shape.head_dim * dtype_size(c.dtype);
  const std::int64_t chunk = std::clamp<std::int64_t>((std::int64_t(64) << 20) / token_bytes, 1, context);
  gpu::DeviceBuffer k(std::size_t(chunk * token_bytes)), v(std::size_t(chunk * token_bytes));
  const std::int64_t total = 2 * token_bytes * context * c.batch * c.shape.layers;
  std::int64_t done = 0;
  auto last_report = std::chrono::steady_clock::now();
  for (int s = 0; s < c.batch; ++s)
    for (int l = 0; l < c.shape.layers; ++l) {
      stop_if_interrupted("the cache fill of ", run, ": sequence ", s + 1, " of ", c.batch, ", layer ", l + 1, " of ",
                          c.shape.layers);
      for (std::int64_t begin = 0; begin < context; begin += chunk) {
        const std::int64_t count = std::min(chunk, context - begin);
        data.cached(TensorKind::key, s, l, begin, count, k.data(), stream);
        data.cached(TensorKind::value, s, l, begin, count, v.data(), stream);
        engine.prefill(l, s, k.data(), v.data(), count);  // queued behind the fill, before the next one
      }
      // Progress as done, not as queued; one wait per (sequence, layer).
      DSO_CUDA_CHECK(cudaStreamSynchronize(stream));
      done += 2 * token_bytes * context;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(1) || done == total) {
        std::fprintf(stderr, "\rfilling the %s cache: %s of %s", std::string(policy_name(c.policy)).c_str(),
                     format_bytes(done).c_str(), format_bytes(total).c_str());
        std::fflush(stderr);
        last_report = now;
      }
    }
  std::fprintf(stderr, "\n");
}

std::vector<StepSample> run_cuda_steps(Engine& engine, const SyntheticTensors& data, const StepLoop& loop,
                                       cudaStream_t stream) {
  const DeviceSyntheticTensors device_data(data);
  fill_cuda_cache(engine, device_data, loop.context, stream, loop.run);

  // Every step's inputs are made before the timed loop, as a model runner
  // would have them on the GPU already.
  const EngineConfig& config = engine.config();
  const AttentionShape& s = config.shape;
  const int steps = loop.warmup + loop.steps;
  const std::int64_t elem = dtype_size(config.dtype);
  const std::int64_t q_bytes = std::int64_t(config.batch) * s.q_heads * s.head_dim * elem;
  const std::int64_t kv_bytes = std::int64_t(config.batch) * s.kv_heads * s.head_dim * elem;
  const std::int64_t calls = std::int64_t(steps) * s.layers;
  gpu::DeviceBuffer q(std::size_t(calls * q_bytes)), k(std::size_t(calls * kv_bytes)), v(k.bytes());
  const gpu::DeviceBuffer out{std::size_t(q_bytes)};
  const auto at = [](const gpu::DeviceBuffer& b, std::int64_t i, std::int64_t bytes) {
    return b.as<std::byte>() + i * bytes;
  };
  for (int step = 0; step < steps; ++step)
    for (int l = 0; l < s.layers; ++l) {
      const std::int64_t i = std::int64_t(step) * s.layers + l;
      device_data.step(TensorKind::query, step, l, config.batch, at(q, i, q_bytes), stream);
      device_data.step(TensorKind::new_key, step, l, config.batch, at(k, i, kv_bytes), stream);
      device_data.step(TensorKind::new_value, step, l, config.batch, at(v, i, kv_bytes), stream);
    }
  DSO_CUDA_CHECK(cudaStreamSynchronize(stream));

  std::vector<StepSample> samples;
  for (int step = 0; step < steps; ++step) {
    stop_at_step(loop, step);
    engine.reset_stats();
    const auto start = std::chrono::steady_clock::now();
    for (int l = 0; l < s.layers; ++l) {
      const std::int64_t i = std::int64_t(step) * s.layers + l;
      // A perfect speculation, as on the cpu backend: the next layer's own query.
      const bool q_next = config.policy == Policy::ds_offload && l + 1 < s.layers;
      engine.decode(l, at(q, i, q_bytes), at(k, i, kv_bytes), at(v, i, kv_bytes),
                    q_next ? at(q, i + 1, q_bytes) : nullptr, out.data());
    }
    DSO_CUDA_CHECK(cudaStreamSynchronize(stream));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (step >= loop.warmup) samples.push_back({ms, engine.stats()});
  }
  return samples;
}

}  // namespace dso::cli
