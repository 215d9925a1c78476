// The CPU path of the decoder: host memory, the cpu/ operations, and the
// engine's cpu backend. It is the reference of the GPU path: with
// round_like_gpu it rounds where that path stores 16-bit values (weights,
// every projection's input), so the two differ by summation order alone.
#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/speculative_query.h"
#include "cpu/gemm.h"
#include "cpu/model_ops.h"
#include "cpu/parallel.h"
#include "cpu/prefill_attention.h"
#include "model/decoder_backends.h"
#include "model/decoder_base.h"
#include "model/llama_weights.h"

namespace dso {

namespace {

// T: the engine's dtype, in which q, k, v and the attention output travel.
template <class T>
class CpuDecoder final : public DecoderBase {
 public:
  CpuDecoder(const WeightSource& source, const DecoderOptions& options)
      : DecoderBase(source.config(), source.is_dummy(), options),
        round_(options.round_like_gpu ? std::optional<DType>(options.engine.dtype) : std::nullopt),
        w_(load_llama_weights(source, round_)),
        threads_(cpu::resolve_threads(options.threads)),
        packs_(std::size_t(config().layers)) {
    const LlamaConfig& c = config();
    const auto rows = std::size_t(buffer_rows());
    x_.resize(rows * c.hidden);
    xn_.resize(rows * c.hidden);
    q_.resize(rows * q_dim());
    k_.resize(rows * kv_dim());
    v_.resize(rows * kv_dim());
    gate_.resize(rows * c.ffn_hidden);
    up_.resize(rows * c.ffn_hidden);
    act_.resize(rows * c.ffn_hidden);
    attn_.resize(rows * q_dim());
    q_wide_.resize(rows * q_dim());
    q_t_.resize(rows * q_dim());
    k_t_.resize(rows * kv_dim());
    v_t_.resize(rows * kv_dim());
    attn_t_.resize(rows * q_dim());
    q_next_t_.resize(std::size_t(max_batch()) * q_dim());
    logits_.resize(std::size_t(max_batch()) * c.vocab_size);
    if (prefill_observer() || decode_observer()) {
      observed_q_.resize(rows * q_dim());
      observed_k_.resize(rows * kv_dim());
      observed_v_.resize(rows * kv_dim());
      observed_q_next_.resize(std::size_t(max_batch()) * q_dim());
    }
    // The speculative query of layer l is computed during layer l - 1.
    for (int l = 0; l + 1 < c.layers; ++l)
      if (wants_q_next(l))
        packs_[std::size_t(l) + 1] = pack_speculative_query(w_.layers[std::size_t(l) + 1].wq.data(), c.hidden,
                                                            c.attention(), options.engine.channels, l + 1);
    create_engine();
  }

  void prefill(int sequence, std::span<const std::int32_t> tokens) override {
    check_prefill(sequence, tokens);
    const LlamaConfig& c = config();
    const auto n = std::int64_t(tokens.size());
    if (n == 0) return;
    std::vector<float> hidden(std::size_t(n) * c.hidden);
    cpu::embed(w_.token_embedding.data(), c.vocab_size, c.hidden, tokens.data(), int(n), hidden.data());
    std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
    for (std::int64_t t = 0; t < n; ++t) pos[std::size_t(t)] = std::int32_t(t);
    // This layer's K/V of the whole prompt, head-major as the attention reads it.
    prompt_k_.resize(std::size_t(n) * kv_dim());
    prompt_v_.resize(prompt_k_.size());
    for (int l = 0; l < c.layers; ++l)
      for (std::int64_t begin = 0; begin < n; begin += prefill_chunk()) {
        // Ctrl-C (core/interrupt.h) stops a long prompt here rather than after its last layer.
        stop_if_interrupted("the prefill of sequence ", sequence + 1, ": layer ", l + 1, " of ", c.layers, ", token ",
                            begin, " of ", n);
        const int rows = int(std::min(prefill_chunk(), n - begin));
        run_layer(l, rows, pos.data() + begin, hidden.data() + begin * c.hidden, true, [&](const float*) {
          if (prefill_observer()) observe_prefill(sequence, l, begin, rows);
          attend_causally(l, sequence, begin, rows, n);
        });
      }
    advance(sequence, n);
  }

  void restore_prefix(int sequence, const CachedPrefix& prefix) override {
    check_restore(sequence, prefix);
    const std::int64_t per_layer = prefix.tokens * kv_dim();
    std::vector<T> k(static_cast<std::size_t>(per_layer)), v(k.size());
    for (int l = 0; l < config().layers; ++l) {
      cpu::cast(prefix.k.data() + l * per_layer, per_layer, k.data());
      cpu::cast(prefix.v.data() + l * per_layer, per_layer, v.data());
      engine().prefill(l, sequence, k.data(), v.data(), prefix.tokens);
    }
    advance(sequence, prefix.tokens);
  }

  void decode(std::span<const std::int32_t> tokens) override {
    check_decode(tokens);
    const LlamaConfig& c = config();
    const int b = batch();
    const std::vector<std::int32_t> pos = positions();
    cpu::embed(w_.token_embedding.data(), c.vocab_size, c.hidden, tokens.data(), b, x_.data());
    for (int l = 0; l < c.layers; ++l)
      run_layer(l, b, pos.data(), x_.data(), false, [&](const float* xn) {
        const T* q_next = nullptr;
        if (wants_q_next(l)) {
          cpu::speculative_query(packs_[std::size_t(l) + 1], xn, rope_spec(b, c.q_heads, pos.data()), q_next_t_.data(),
                                 threads_);
          q_next = q_next_t_.data();
        }
        if (decode_observer()) observe_decode(l, b, q_next != nullptr);
        engine().decode(l, q_t_.data(), k_t_.data(), v_t_.data(), q_next, attn_t_.data());
      });
    normalise(x_.data(), w_.final_norm, b, xn_.data());
    cpu::matmul(w_.output_head().data(), c.vocab_size, c.hidden, xn_.data(), b, logits_.data(), false, threads_);
    for (int s = 0; s < b; ++s) advance(s, 1);
    set_logits_ready(true);
  }

  std::vector<float> logits() override {
    check_logits("logits");
    return {logits_.begin(), logits_.begin() + std::int64_t(batch()) * config().vocab_size};
  }

  std::vector<std::int32_t> greedy_tokens() override {
    check_logits("greedy_tokens");
    std::vector<std::int32_t> out(static_cast<std::size_t>(batch()));
    cpu::argmax(logits_.data(), batch(), config().vocab_size, out.data());
    return out;
  }

  std::vector<double> log_probs(std::span<const std::int32_t> targets) override {
    check_targets(targets);
    std::vector<float> out(static_cast<std::size_t>(batch()));
    cpu::target_log_prob(logits_.data(), batch(), config().vocab_size, targets.data(), out.data());
    return {out.begin(), out.end()};
  }

  void tally_nonfinite_logits() override {
    check_logits("tally_nonfinite_logits");
    const auto n = std::int64_t(batch()) * config().vocab_size;
    nonfinite_ += std::count_if(logits_.begin(), logits_.begin() + n, [](float x) { return !std::isfinite(x); });
  }

  std::int64_t take_nonfinite_logits() override { return std::exchange(nonfinite_, 0); }

 private:
  std::int64_t q_dim() const { return std::int64_t(config().q_heads) * config().head_dim; }
  std::int64_t kv_dim() const { return std::int64_t(config().kv_heads) * config().head_dim; }

  RopeSpec rope_spec(int rows, int heads, const std::int32_t* pos) const {
    return {rows, heads, config().head_dim, pos, config().rope_theta};
  }

  // A projection's input, rounded where the GPU path stores it in 16 bits.
  void round_input(float* x, std::int64_t n) const {
    if (round_) round_to_dtype({x, std::size_t(n)}, *round_);
  }

  void normalise(const float* x, const std::vector<float>& weight, int rows, float* out) const {
    cpu::rms_norm(x, weight.data(), rows, config().hidden, config().rms_eps, out);
    round_input(out, std::int64_t(rows) * config().hidden);
  }

  // y = W x (or y += W x) over `rows` rows: a prefill chunk as one matrix
  // product through the BLAS, a decode batch row by row, whose sums do not
  // depend on the batch.
  void project(const std::vector<float>& w, std::int64_t out_features, std::int64_t in_features, const float* x,
               int rows, float* y, bool accumulate, bool chunk) const {
    if (chunk)
      cpu::gemm(w.data(), out_features, in_features, x, rows, y, accumulate, threads_);
    else
      cpu::matmul(w.data(), out_features, in_features, x, rows, y, accumulate, threads_);
  }

  // One layer over `rows` rows of x (a decode batch, or a prefill chunk with
  // `chunk`) at positions pos. attend(xn) leaves the attention output in
  // attn_t_, given q_t_, k_t_, v_t_ and the normalised input xn.
  template <class Attend>
  void run_layer(int l, int rows, const std::int32_t* pos, float* x, bool chunk, Attend&& attend) {
    const LlamaConfig& c = config();
    const LayerWeights& lw = w_.layers[std::size_t(l)];
    normalise(x, lw.attn_norm, rows, xn_.data());
    project(lw.wq, q_dim(), c.hidden, xn_.data(), rows, q_.data(), false, chunk);
    project(lw.wk, kv_dim(), c.hidden, xn_.data(), rows, k_.data(), false, chunk);
    project(lw.wv, kv_dim(), c.hidden, xn_.data(), rows, v_.data(), false, chunk);
    cpu::rope(q_.data(), rope_spec(rows, c.q_heads, pos), q_t_.data());
    cpu::rope(k_.data(), rope_spec(rows, c.kv_heads, pos), k_t_.data());
    cpu::cast(v_.data(), rows * kv_dim(), v_t_.data());
    attend(static_cast<const float*>(xn_.data()));
    cpu::cast(attn_t_.data(), rows * q_dim(), attn_.data());
    project(lw.wo, c.hidden, q_dim(), attn_.data(), rows, x, true, chunk);

    normalise(x, lw.ffn_norm, rows, xn_.data());
    project(lw.w_gate, c.ffn_hidden, c.hidden, xn_.data(), rows, gate_.data(), false, chunk);
    project(lw.w_up, c.ffn_hidden, c.hidden, xn_.data(), rows, up_.data(), false, chunk);
    cpu::swiglu(gate_.data(), up_.data(), rows, c.ffn_hidden, c.ffn_hidden, act_.data());
    round_input(act_.data(), std::int64_t(rows) * c.ffn_hidden);
    project(lw.w_down, c.hidden, c.ffn_hidden, act_.data(), rows, x, true, chunk);
  }

  // Hands the prefill observer this layer's chunk: the projections as they
  // are, and q, k, v as the engine receives them, widened to fp32.
  void observe_prefill(int sequence, int l, std::int64_t begin, int rows) {
    const std::int64_t nq = rows * q_dim(), nkv = rows * kv_dim();
    cpu::cast(q_t_.data(), nq, observed_q_.data());
    cpu::cast(k_t_.data(), nkv, observed_k_.data());
    cpu::cast(v_t_.data(), nkv, observed_v_.data());
    prefill_observer()(PrefillActivations{sequence,
                                          l,
                                          begin,
                                          rows,
                                          {q_.data(), std::size_t(nq)},
                                          {k_.data(), std::size_t(nkv)},
                                          {observed_q_.data(), std::size_t(nq)},
                                          {observed_k_.data(), std::size_t(nkv)},
                                          {observed_v_.data(), std::size_t(nkv)}});
  }

  // Hands the decode observer what the engine receives at layer l, widened.
  void observe_decode(int l, int b, bool has_q_next) {
    const std::int64_t nq = b * q_dim(), nkv = b * kv_dim();
    cpu::cast(q_t_.data(), nq, observed_q_.data());
    cpu::cast(k_t_.data(), nkv, observed_k_.data());
    std::span<const float> q_next;
    if (has_q_next) {
      cpu::cast(q_next_t_.data(), nq, observed_q_next_.data());
      q_next = {observed_q_next_.data(), std::size_t(nq)};
    }
    decode_observer()(DecodeActivations{l,
                                        b,
                                        {observed_q_.data(), std::size_t(nq)},
                                        {observed_k_.data(), std::size_t(nkv)},
                                        q_next});
  }

  // Prefill attention of prompt tokens [begin, begin + rows) of an n-token
  // prompt: each attends to every prompt token up to itself. q, k and v are
  // widened from T, so the attention reads the values the engine holds.
  void attend_causally(int l, int sequence, std::int64_t begin, int rows, std::int64_t n) {
    const LlamaConfig& c = config();
    const int d = c.head_dim;
    engine().prefill(l, sequence, k_t_.data(), v_t_.data(), rows);
    for (int t = 0; t < rows; ++t)
      for (int h = 0; h < c.kv_heads; ++h) {
        const std::int64_t from = (std::int64_t(t) * c.kv_heads + h) * d, to = (h * n + begin + t) * d;
        cpu::cast(k_t_.data() + from, d, prompt_k_.data() + to);
        cpu::cast(v_t_.data() + from, d, prompt_v_.data() + to);
      }
    const std::int64_t nq = rows * q_dim();
    cpu::cast(q_t_.data(), nq, q_wide_.data());
    cpu::prefill_attention(q_wide_.data(), rows, {c.q_heads, c.kv_heads, d}, prompt_k_.data(), prompt_v_.data(), n,
                           begin, attn_.data(), threads_);
    cpu::cast(attn_.data(), nq, attn_t_.data());
  }

  std::optional<DType> round_;
  LlamaWeights w_;
  int threads_;
  std::vector<SpeculativeQueryPack<float>> packs_;  // [layer]: filled for layers that select speculatively
  // Working buffers of buffer_rows() rows, fp32 unless in T.
  std::vector<float> x_, xn_, q_, k_, v_, gate_, up_, act_, attn_, q_wide_;
  std::vector<T> q_t_, k_t_, v_t_, attn_t_, q_next_t_;
  // [kv_heads][prompt][head_dim], one layer at a time: values of T, widened
  // once for every query tile that reads them.
  std::vector<float> prompt_k_, prompt_v_;
  // fp32 copies for the observers, if any.
  std::vector<float> observed_q_, observed_k_, observed_v_, observed_q_next_;
  std::vector<float> logits_;           // [batch][vocab]
  std::int64_t nonfinite_ = 0;         // tallied since the last take
};

}  // namespace

std::unique_ptr<Decoder> make_cpu_decoder(const WeightSource& weights, const DecoderOptions& options) {
  return dispatch_dtype(options.engine.dtype, [&](auto tag) -> std::unique_ptr<Decoder> {
    return std::make_unique<CpuDecoder<decltype(tag)>>(weights, options);
  });
}

}  // namespace dso
