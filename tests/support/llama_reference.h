#pragma once
// A naive float64 forward pass of a Llama-family decoder, one position at a
// time, the reference of model/decoder.h: full causal attention, HF RoPE
// (channel i turns with i + d/2), and the engine's token selection rules
// (offload/policy_rules.h) written out again. Values are rounded to the K/V
// dtype T exactly where the engine's contract stores them: q, q_next, k, v and
// the attention output; everything else stays in double.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "core/label_channels.h"
#include "model/weight_source.h"

namespace dso::test {

struct ReferenceModel {
  LlamaConfig config;
  std::vector<double> embedding, final_norm, lm_head;
  struct Layer {
    std::vector<double> attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
  };
  std::vector<Layer> layers;
};

inline std::vector<double> read_weight(const WeightSource& source, WeightKind kind, int layer) {
  std::vector<float> w(std::size_t(weight_shape(source.config(), kind).size()));
  source.read(kind, layer, w);
  return {w.begin(), w.end()};
}

inline ReferenceModel reference_model(const WeightSource& source) {
  ReferenceModel m;
  m.config = source.config();
  m.embedding = read_weight(source, WeightKind::token_embedding, 0);
  m.final_norm = read_weight(source, WeightKind::final_norm, 0);
  m.lm_head = source.tied_lm_head() ? m.embedding : read_weight(source, WeightKind::lm_head, 0);
  for (int l = 0; l < m.config.layers; ++l) {
    ReferenceModel::Layer layer;
    layer.attn_norm = read_weight(source, WeightKind::attn_norm, l);
    layer.wq = read_weight(source, WeightKind::wq, l);
    layer.wk = read_weight(source, WeightKind::wk, l);
    layer.wv = read_weight(source, WeightKind::wv, l);
    layer.wo = read_weight(source, WeightKind::wo, l);
    layer.ffn_norm = read_weight(source, WeightKind::ffn_norm, l);
    layer.w_gate = read_weight(source, WeightKind::w_gate, l);
    layer.w_up = read_weight(source, WeightKind::w_up, l);
    layer.w_down = read_weight(source, WeightKind::w_down, l);
    m.layers.push_back(std::move(layer));
  }
  return m;
}

// How decode steps choose the tokens they attend (prefilled positions always
// attend every earlier token): all of them, or the top k by label score with
// the true query, or (ds_offload) with the speculative query from the previous
// layer except at sync layers. No sink or recent tokens.
struct ReferencePolicy {
  enum class Selection { dense, true_query, speculative } selection = Selection::dense;
  std::int64_t k = 0;
  LabelChannels channels;
  std::vector<int> sync_layers{0};
};

namespace detail {

inline std::vector<double> matvec(const std::vector<double>& w, std::int64_t rows, std::int64_t cols,
                                  const std::vector<double>& x) {
  std::vector<double> y(std::size_t(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) y[std::size_t(r)] += w[std::size_t(r * cols + c)] * x[std::size_t(c)];
  return y;
}

inline std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

// HF layout: channel i pairs with i + d/2 and turns by pos * theta^(-2i/d).
inline void rope(std::vector<double>& x, int heads, int d, std::int64_t pos, double theta) {
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < d / 2; ++i) {
      const double angle = double(pos) * std::pow(theta, -2.0 * i / d);
      double& a = x[std::size_t(h * d + i)];
      double& b = x[std::size_t(h * d + i + d / 2)];
      const double lo = a, hi = b;
      a = lo * std::cos(angle) - hi * std::sin(angle);
      b = hi * std::cos(angle) + lo * std::sin(angle);
    }
}

template <class T>
void round_to(std::vector<double>& x) {
  for (double& v : x) v = double(to_float(from_float<T>(float(v))));
}

}  // namespace detail

// Sees one layer's queries and keys of one position: [heads][head_dim] each,
// before RoPE and after it (rounded to T, as the engine receives them).
struct ReferenceQK {
  int layer;
  std::int64_t position;
  const std::vector<double>& q_proj;
  const std::vector<double>& k_proj;
  const std::vector<double>& q;
  const std::vector<double>& k;
};
using ReferenceObserver = std::function<void(const ReferenceQK&)>;

// Logits [position][vocab] of one sequence. Positions below `prefill` attend
// densely, as prefill does; later positions follow the policy.
template <class T>
std::vector<std::vector<double>> reference_logits(const ReferenceModel& m, std::span<const std::int32_t> tokens,
                                                  std::int64_t prefill, const ReferencePolicy& policy,
                                                  const ReferenceObserver& observe = {}) {
  using namespace detail;
  const LlamaConfig& c = m.config;
  const int d = c.head_dim, group = c.q_heads / c.kv_heads;
  const std::int64_t q_dim = std::int64_t(c.q_heads) * d, kv_dim = std::int64_t(c.kv_heads) * d;
  std::vector<std::vector<std::vector<double>>> keys(std::size_t(c.layers)), values(std::size_t(c.layers));
  std::vector<std::vector<double>> logits;
  for (std::size_t p = 0; p < tokens.size(); ++p) {
    const auto pos = std::int64_t(p);
    std::vector<double> x(m.embedding.begin() + std::int64_t(tokens[p]) * c.hidden,
                          m.embedding.begin() + (std::int64_t(tokens[p]) + 1) * c.hidden);
    std::vector<double> previous_xn;  // the previous layer's normalised input
    for (int l = 0; l < c.layers; ++l) {
      const ReferenceModel::Layer& w = m.layers[std::size_t(l)];
      const std::vector<double> xn = rms_norm(x, w.attn_norm, c.rms_eps);
      std::vector<double> q = matvec(w.wq, q_dim, c.hidden, xn);
      std::vector<double> k = matvec(w.wk, kv_dim, c.hidden, xn);
      std::vector<double> v = matvec(w.wv, kv_dim, c.hidden, xn);
      const std::vector<double> q_proj = q, k_proj = k;
      rope(q, c.q_heads, d, pos, c.rope_theta);
      rope(k, c.kv_heads, d, pos, c.rope_theta);
      round_to<T>(q);
      round_to<T>(k);
      round_to<T>(v);
      if (observe) observe(ReferenceQK{l, pos, q_proj, k_proj, q, k});

      const bool sync = std::find(policy.sync_layers.begin(), policy.sync_layers.end(), l) != policy.sync_layers.end();
      std::vector<double> selector = q;
      if (policy.selection == ReferencePolicy::Selection::speculative && l > 0 && !sync) {
        selector = matvec(w.wq, q_dim, c.hidden, previous_xn);
        rope(selector, c.q_heads, d, pos, c.rope_theta);
        round_to<T>(selector);
      }
      std::vector<double> attn(std::size_t(q_dim), 0.0);
      for (int j = 0; j < c.kv_heads; ++j) {
        // Tokens attended: every earlier one, or the top k by label score; then this one.
        std::vector<std::int64_t> attended(static_cast<std::size_t>(pos));
        std::iota(attended.begin(), attended.end(), std::int64_t(0));
        if (pos >= prefill && policy.selection != ReferencePolicy::Selection::dense && pos > policy.k) {
          std::vector<double> score(static_cast<std::size_t>(pos), 0.0);
          for (std::int64_t t = 0; t < pos; ++t)
            for (int h = j * group; h < (j + 1) * group; ++h)
              for (int ch : policy.channels.of(l, j))
                score[std::size_t(t)] += selector[std::size_t(h * d + ch)] * keys[std::size_t(l)][std::size_t(t)][std::size_t(j * d + ch)];
          std::stable_sort(attended.begin(), attended.end(),
                           [&](std::int64_t a, std::int64_t b) { return score[std::size_t(a)] > score[std::size_t(b)]; });
          attended.resize(std::size_t(policy.k));
        }
        keys[std::size_t(l)].resize(std::size_t(pos) + 1);
        values[std::size_t(l)].resize(std::size_t(pos) + 1);
        keys[std::size_t(l)][std::size_t(pos)] = k;
        values[std::size_t(l)][std::size_t(pos)] = v;
        attended.push_back(pos);
        for (int h = j * group; h < (j + 1) * group; ++h) {
          std::vector<double> s(attended.size());
          double mx = -INFINITY;
          for (std::size_t i = 0; i < attended.size(); ++i) {
            double dot = 0;
            for (int ch = 0; ch < d; ++ch)
              dot += q[std::size_t(h * d + ch)] * keys[std::size_t(l)][std::size_t(attended[i])][std::size_t(j * d + ch)];
            s[i] = dot / std::sqrt(double(d));
            mx = std::max(mx, s[i]);
          }
          double sum = 0;
          for (double& e : s) sum += (e = std::exp(e - mx));
          for (std::size_t i = 0; i < attended.size(); ++i)
            for (int ch = 0; ch < d; ++ch)
              attn[std::size_t(h * d + ch)] +=
                  s[i] / sum * values[std::size_t(l)][std::size_t(attended[i])][std::size_t(j * d + ch)];
        }
      }
      round_to<T>(attn);
      const std::vector<double> o = matvec(w.wo, c.hidden, q_dim, attn);
      for (int i = 0; i < c.hidden; ++i) x[std::size_t(i)] += o[std::size_t(i)];

      const std::vector<double> xf = rms_norm(x, w.ffn_norm, c.rms_eps);
      const std::vector<double> g = matvec(w.w_gate, c.ffn_hidden, c.hidden, xf);
      const std::vector<double> u = matvec(w.w_up, c.ffn_hidden, c.hidden, xf);
      std::vector<double> a(g.size());
      for (std::size_t i = 0; i < a.size(); ++i) a[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const std::vector<double> down = matvec(w.w_down, c.hidden, c.ffn_hidden, a);
      for (int i = 0; i < c.hidden; ++i) x[std::size_t(i)] += down[std::size_t(i)];
      previous_xn = xn;
    }
    logits.push_back(matvec(m.lm_head, c.vocab_size, c.hidden, rms_norm(x, m.final_norm, c.rms_eps)));
  }
  return logits;
}

}  // namespace dso::test
