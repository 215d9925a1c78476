#pragma once
// Drives an Engine through a prefill and a few decode steps with seeded random
// tensors, so that tests can compare policies with each other and with the
// float64 reference (engine_reference.h) on identical inputs.
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "offload/engine.h"

namespace dso::test {

template <class T>
struct DecodeInputs {
  AttentionShape shape;
  int batch = 0;
  int steps = 0;
  std::vector<std::int64_t> prefill;             // tokens per sequence, the same at every layer
  std::vector<std::vector<T>> prefill_k, prefill_v;  // [sequence * layers + layer]: [n][kv_heads][d]
  // [step * layers + layer]: q [batch][q_heads][d], k_new and v_new [batch][kv_heads][d]
  std::vector<std::vector<T>> q, k_new, v_new;
  // [step * layers + layer]: what decode(layer) passes as q_next, the query
  // of layer + 1 or an independent one (a poor speculation).
  std::vector<std::vector<T>> q_next;
  std::vector<int> outliers;  // [layer][kv_head][2] planted channels (the two may coincide)
};

// Random K/V and queries with two planted outlier channels per (layer, KV
// head), in K and in the queries of its group, as calibrated models show, so
// that labels over those channels find the tokens that matter.
template <class T>
DecodeInputs<T> make_inputs(const AttentionShape& shape, int batch, const std::vector<std::int64_t>& prefill,
                            int steps, std::uint64_t seed, bool q_next_is_true_query) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int d = shape.head_dim;
  std::vector<int> outlier(std::size_t(shape.layers) * shape.kv_heads * 2);
  for (int& c : outlier) c = int(rng() % std::uint64_t(d));
  const auto is_outlier = [&](int layer, int kv_head, int c) {
    const int* o = &outlier[(std::size_t(layer) * shape.kv_heads + kv_head) * 2];
    return c == o[0] || c == o[1];
  };
  // heads_per_token: kv_heads for K/V, q_heads for queries (mapped to their KV head).
  const auto fill = [&](int layer, std::int64_t tokens, int heads, int group) {
    std::vector<T> x(std::size_t(tokens) * heads * d);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < d; ++c) {
          const float scale = is_outlier(layer, h / group, c) ? 4.0f : 1.0f;
          x[(std::size_t(t) * heads + h) * d + c] = from_float<T>(scale * normal(rng));
        }
    return x;
  };

  DecodeInputs<T> in;
  in.shape = shape;
  in.batch = batch;
  in.steps = steps;
  in.prefill = prefill;
  in.outliers = outlier;
  for (int s = 0; s < batch; ++s)
    for (int l = 0; l < shape.layers; ++l) {
      in.prefill_k.push_back(fill(l, prefill[std::size_t(s)], shape.kv_heads, 1));
      in.prefill_v.push_back(fill(l, prefill[std::size_t(s)], shape.kv_heads, 1));
    }
  for (int step = 0; step < steps; ++step)
    for (int l = 0; l < shape.layers; ++l) {
      in.q.push_back(fill(l, batch, shape.q_heads, shape.group()));
      in.k_new.push_back(fill(l, batch, shape.kv_heads, 1));
      in.v_new.push_back(fill(l, batch, shape.kv_heads, 1));
    }
  for (int step = 0; step < steps; ++step)
    for (int l = 0; l < shape.layers; ++l) {
      const int next = std::min(l + 1, shape.layers - 1);
      in.q_next.push_back(q_next_is_true_query ? in.q[std::size_t(step) * shape.layers + next]
                                               : fill(next, batch, shape.q_heads, shape.group()));
    }
  return in;
}

template <class T>
struct EngineRun {
  std::vector<std::vector<T>> out;  // [step * layers + layer]: [batch][q_heads][d]
  std::vector<StepStats> step_stats;
  std::vector<std::vector<std::int64_t>> lengths_before;  // [step * layers + layer]: per sequence
};

// Prefills every (sequence, layer), then decodes `steps` steps layer by layer,
// recording outputs and the counters of each step.
template <class T>
EngineRun<T> run_engine(const EngineConfig& config, const DecodeInputs<T>& in) {
  const auto engine = Engine::create(config);
  const int layers = in.shape.layers;
  for (int s = 0; s < in.batch; ++s)
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(s) * layers + l;
      engine->prefill(l, s, in.prefill_k[i].data(), in.prefill_v[i].data(), in.prefill[std::size_t(s)]);
    }
  EngineRun<T> run;
  for (int step = 0; step < in.steps; ++step) {
    engine->reset_stats();
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(step) * layers + l;
      std::vector<std::int64_t> lengths;
      for (int s = 0; s < in.batch; ++s) lengths.push_back(engine->length(s, l));
      run.lengths_before.push_back(lengths);
      std::vector<T> out(in.q[i].size());
      const bool pass_q_next = config.policy == Policy::ds_offload && l + 1 < layers;
      engine->decode(l, in.q[i].data(), in.k_new[i].data(), in.v_new[i].data(),
                     pass_q_next ? in.q_next[i].data() : nullptr, out.data());
      run.out.push_back(std::move(out));
    }
    run.step_stats.push_back(engine->stats());
  }
  return run;
}

// What a calibration would find: each head's planted channels first, then
// the lowest others, r in all.
template <class T>
LabelChannels planted_channels(const DecodeInputs<T>& in, int r) {
  LabelChannels lc{in.shape.layers, in.shape.kv_heads, r, {}};
  for (int head = 0; head < in.shape.layers * in.shape.kv_heads; ++head) {
    std::vector<int> order{in.outliers[std::size_t(head) * 2], in.outliers[std::size_t(head) * 2 + 1]};
    for (int c = 0; c < in.shape.head_dim; ++c) order.push_back(c);
    std::vector<bool> taken(std::size_t(in.shape.head_dim), false);
    int kept = 0;
    for (int c : order)
      if (kept < r && !taken[std::size_t(c)]) {
        taken[std::size_t(c)] = true;
        lc.index.push_back(c);
        ++kept;
      }
  }
  return lc;
}

template <class T>
EngineConfig make_config(const DecodeInputs<T>& in, Policy policy, std::int64_t capacity, int r) {
  EngineConfig c;
  c.shape = in.shape;
  c.dtype = dtype_of<T>();
  c.policy = policy;
  c.batch = in.batch;
  c.capacity = capacity;
  c.channels = planted_channels(in, r);
  return c;
}

}  // namespace dso::test
