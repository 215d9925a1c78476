#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/bench_steps.h"

namespace dso::cli {

void fill_cpu_cache(Engine& engine, const SyntheticTensors& data, std::int64_t context, const std::string& run) {
  const EngineConfig& c = engine.config();
  constexpr std::int64_t chunk = 4096;
  std::vector<std::uint16_t> k(std::size_t(chunk) * c.shape.kv_heads * c.shape.head_dim), v(k.size());
  for (int s = 0; s < c.batch; ++s)
    for (int l = 0; l < c.shape.layers; ++l)
      for (std::int64_t begin = 0; begin < context; begin += chunk) {
        stop_if_interrupted("the cache fill of ", run, ": sequence ", s + 1, " of ", c.batch, ", layer ", l + 1, " of ",
                            c.shape.layers, ", token ", begin, " of ", context);
        const std::int64_t count = std::min(chunk, context - begin);
        data.cached(TensorKind::key, s, l, begin, count, k.data());
        data.cached(TensorKind::value, s, l, begin, count, v.data());
        engine.prefill(l, s, k.data(), v.data(), count);
      }
  std::fprintf(stderr, "filled the %s cache: %lld tokens of %d sequences, synthetic\n",
               std::string(policy_name(c.policy)).c_str(), static_cast<long long>(context), c.batch);
}

std::vector<StepSample> run_cpu_steps(Engine& engine, const SyntheticTensors& data, const StepLoop& loop) {
  fill_cpu_cache(engine, data, loop.context, loop.run);
  const EngineConfig& config = engine.config();
  const AttentionShape& s = config.shape;
  const std::size_t q_size = std::size_t(config.batch) * s.q_heads * s.head_dim;
  const std::size_t kv_size = std::size_t(config.batch) * s.kv_heads * s.head_dim;
  std::vector<std::vector<std::uint16_t>> q(std::size_t(s.layers), std::vector<std::uint16_t>(q_size));
  std::vector<std::vector<std::uint16_t>> k(std::size_t(s.layers), std::vector<std::uint16_t>(kv_size));
  std::vector<std::vector<std::uint16_t>> v = k;
  std::vector<std::uint16_t> out(q_size);

  std::vector<StepSample> samples;
  for (int step = 0; step < loop.warmup + loop.steps; ++step) {
    stop_at_step(loop, step);
    for (int l = 0; l < s.layers; ++l) {
      data.step(TensorKind::query, step, l, config.batch, q[std::size_t(l)].data());
      data.step(TensorKind::new_key, step, l, config.batch, k[std::size_t(l)].data());
      data.step(TensorKind::new_value, step, l, config.batch, v[std::size_t(l)].data());
    }
    engine.reset_stats();
    const auto start = std::chrono::steady_clock::now();
    for (int l = 0; l < s.layers; ++l) {
      // A perfect speculation: the next layer's own query stands in for the
      // prediction from this layer's hidden state, which needs a model.
      const bool q_next = config.policy == Policy::ds_offload && l + 1 < s.layers;
      engine.decode(l, q[std::size_t(l)].data(), k[std::size_t(l)].data(), v[std::size_t(l)].data(),
                    q_next ? q[std::size_t(l) + 1].data() : nullptr, out.data());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (step >= loop.warmup) samples.push_back({ms, engine.stats()});
  }
  return samples;
}

}  // namespace dso::cli
