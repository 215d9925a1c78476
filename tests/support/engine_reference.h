#pragma once
// The engine's decode, recomputed independently for tests: a mirror of the
// cache as plain vectors, the attended set of every policy built from the
// rules of docs/architecture.md (selection with cpu::score_labels/select_topk over
// labels gathered here), attention in float64, and the bytes each policy
// should move.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/labels.h"
#include "cpu/scores.h"
#include "cpu/topk.h"
#include "support/engine_harness.h"

namespace dso::test {

struct ReferenceRun {
  std::vector<std::vector<double>> out;  // [step * layers + layer]: [batch][q_heads][d]
  std::vector<std::int64_t> h2d_bytes;   // per step
  std::vector<std::int64_t> tokens;      // per step: attended, summed over layers, sequences, KV heads
};

namespace detail {

// q: [group][d]; keys, values: rows of [d]; out: [group][d]
template <class T>
void attention_f64(const T* q, int group, int d, const std::vector<T>& keys, const std::vector<T>& values,
                   const std::vector<std::int64_t>& positions, double* out) {
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<double> logits(positions.size());
  for (int g = 0; g < group; ++g) {
    double top = -INFINITY;
    for (std::size_t i = 0; i < positions.size(); ++i) {
      double dot = 0;
      for (int c = 0; c < d; ++c)
        dot += double(to_float(q[g * d + c])) * double(to_float(keys[std::size_t(positions[i]) * d + c]));
      logits[i] = dot * scale;
      top = std::max(top, logits[i]);
    }
    double sum = 0;
    for (double& x : logits) sum += (x = std::exp(x - top));
    for (int c = 0; c < d; ++c) {
      double acc = 0;
      for (std::size_t i = 0; i < positions.size(); ++i)
        acc += logits[i] * double(to_float(values[std::size_t(positions[i]) * d + c]));
      out[g * d + c] = acc / sum;
    }
  }
}

}  // namespace detail

template <class T>
ReferenceRun reference_run(const EngineConfig& config, const DecodeInputs<T>& in) {
  const AttentionShape& shape = in.shape;
  const int layers = shape.layers, hkv = shape.kv_heads, d = shape.head_dim, g = shape.group();
  const std::int64_t kv_token_bytes = 2 * std::int64_t(d) * std::int64_t(sizeof(T));
  // Mirror of the cache: [(sequence * layers + layer) * kv_heads + head] -> rows of [d].
  std::vector<std::vector<T>> keys(std::size_t(in.batch) * layers * hkv), values(keys.size());
  const auto mirror = [&](int s, int l, int h) { return (std::size_t(s) * layers + l) * hkv + std::size_t(h); };
  const auto push = [&](int s, int l, const T* k, const T* v, std::int64_t count) {
    for (std::int64_t t = 0; t < count; ++t)
      for (int h = 0; h < hkv; ++h) {
        const T* kr = k + (t * hkv + h) * d;
        const T* vr = v + (t * hkv + h) * d;
        keys[mirror(s, l, h)].insert(keys[mirror(s, l, h)].end(), kr, kr + d);
        values[mirror(s, l, h)].insert(values[mirror(s, l, h)].end(), vr, vr + d);
      }
  };
  for (int s = 0; s < in.batch; ++s)
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(s) * layers + l;
      push(s, l, in.prefill_k[i].data(), in.prefill_v[i].data(), in.prefill[std::size_t(s)]);
    }

  const Policy p = config.policy;
  const bool sparse = p == Policy::ds_gpu || p == Policy::ds_offload || p == Policy::ds_offload_sync;
  const bool host_kv = p == Policy::flexgen || p == Policy::ds_offload || p == Policy::ds_offload_sync;
  const auto speculative = [&](int l) {
    return p == Policy::ds_offload && l > 0 &&
           std::find(config.sync_layers.begin(), config.sync_layers.end(), l) == config.sync_layers.end();
  };

  ReferenceRun ref;
  for (int step = 0; step < in.steps; ++step) {
    std::int64_t bytes = 0, tokens = 0;
    for (int l = 0; l < layers; ++l) {
      const std::size_t i = std::size_t(step) * layers + l;
      // A speculative layer selects with the q_next handed to the layer before.
      const std::vector<T>& select_q = speculative(l) ? in.q_next[i - 1] : in.q[i];
      std::vector<double> out(in.q[i].size());
      for (int s = 0; s < in.batch; ++s)
        for (int h = 0; h < hkv; ++h) {
          const std::size_t m = mirror(s, l, h);
          const std::int64_t n = std::int64_t(keys[m].size()) / d;
          std::vector<std::int64_t> positions;
          if (sparse) {
            TokenBudget b = config.budget;
            if (config.k_fraction > 0) b.k = std::max<std::int64_t>(1, std::int64_t(config.k_fraction * double(n)));
            const auto channels = config.channels.of(l, h);
            std::vector<T> labels(std::size_t(n) * channels.size());
            cpu::gather_labels(keys[m].data(), n, d, channels, labels.data());
            std::vector<float> scores(static_cast<std::size_t>(n));
            const T* qg = select_q.data() + (std::size_t(s) * shape.q_heads + std::size_t(h) * g) * d;
            cpu::score_labels(qg, g, d, channels, labels.data(), n, scores.data());
            std::vector<std::int32_t> picked(static_cast<std::size_t>(n));
            picked.resize(std::size_t(cpu::select_topk(scores.data(), n, b, picked.data())));
            positions.assign(picked.begin(), picked.end());
            // The newest tokens live on the GPU: only those below them cross PCIe.
            const std::int64_t window = std::max(std::min(n, b.sink), n - b.recent);
            if (host_kv)
              bytes += kv_token_bytes * std::count_if(picked.begin(), picked.end(),
                                                      [&](std::int32_t t) { return t < window; });
          } else {
            for (std::int64_t t = 0; t < n; ++t) positions.push_back(t);
            if (host_kv) bytes += kv_token_bytes * n;
          }
          positions.push_back(n);  // the current token
          tokens += std::int64_t(positions.size());
          const std::size_t at = std::size_t(s) * in.shape.q_heads * d;
          // Attention reads the current token too: append it first.
          keys[m].insert(keys[m].end(), in.k_new[i].begin() + std::ptrdiff_t((std::size_t(s) * hkv + h) * d),
                         in.k_new[i].begin() + std::ptrdiff_t((std::size_t(s) * hkv + h + 1) * d));
          values[m].insert(values[m].end(), in.v_new[i].begin() + std::ptrdiff_t((std::size_t(s) * hkv + h) * d),
                           in.v_new[i].begin() + std::ptrdiff_t((std::size_t(s) * hkv + h + 1) * d));
          detail::attention_f64(in.q[i].data() + at + std::size_t(h) * g * d, g, d, keys[m], values[m], positions,
                                out.data() + at + std::size_t(h) * g * d);
        }
      ref.out.push_back(std::move(out));
    }
    ref.h2d_bytes.push_back(bytes);
    ref.tokens.push_back(tokens);
  }
  return ref;
}

}  // namespace dso::test
