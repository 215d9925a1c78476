// The GPU path of the decoder: 16-bit weights in device memory, fp32
// activations, the gpu/ operations and cuBLAS on one stream, which the engine
// (Backend::cuda, device pointers) shares. The engine's dtype is the weights'
// type W, so q, k, v and the attention output feed cuBLAS without a cast.
#include <algorithm>
#include <memory>
#include <span>
#include <vector>

#include "core/interrupt.h"
#include "core/speculative_query.h"
#include "gpu/blas_handle.h"
#include "gpu/device_array.h"
#include "gpu/model_check.h"
#include "gpu/model_ops.h"
#include "gpu/nonfinite.h"
#include "gpu/prefill_attention.h"
#include "model/cuda_stream.h"
#include "model/decoder_backends.h"
#include "model/decoder_base.h"
#include "model/device_llama_weights.h"

namespace dso {

namespace {

using gpu::DeviceArray;

template <class W>
class GpuDecoder final : public DecoderBase {
 public:
  GpuDecoder(const WeightSource& source, const DecoderOptions& options)
      : DecoderBase(source.config(), source.is_dummy(), options),
        blas_(stream_.get()),
        w_(source, stream_.get()),
        x_(rows() * hidden()),
        xn_(rows() * hidden()),
        q_(rows() * q_dim()),
        k_(rows() * kv_dim()),
        v_(rows() * kv_dim()),
        gate_up_(rows() * 2 * ffn()),
        act_(rows() * ffn()),
        q_t_(rows() * q_dim()),
        k_t_(rows() * kv_dim()),
        v_t_(rows() * kv_dim()),
        attn_t_(rows() * q_dim()),
        q_next_t_(std::size_t(max_batch()) * q_dim()),
        logits_(std::size_t(max_batch()) * config().vocab_size),
        tokens_(std::size_t(max_batch())),
        positions_(std::size_t(max_batch())),
        targets_(std::size_t(max_batch())),
        greedy_(std::size_t(max_batch())),
        log_probs_(std::size_t(max_batch())),
        nonfinite_(1),
        packs_(std::size_t(config().layers)) {
    const LlamaConfig& c = config();
    DSO_CUDA_CHECK(cudaMemsetAsync(nonfinite_.data(), 0, sizeof(unsigned long long), stream()));
    // Packed from a host copy of W_q, so real and device-made dummy weights
    // pack alike.
    for (int l = 0; l + 1 < c.layers; ++l)
      if (wants_q_next(l)) {
        const std::vector<W> wq = w_.layer(l + 1).wq.to_host();
        packs_[std::size_t(l) + 1] = std::make_unique<gpu::DeviceSpeculativeQuery<W>>(
            pack_speculative_query(wq.data(), c.hidden, c.attention(), options.engine.channels, l + 1), max_batch());
      }
    create_engine();
  }

  ~GpuDecoder() override { destroy_engine(); }

  void prefill(int sequence, std::span<const std::int32_t> tokens) override {
    check_prefill(sequence, tokens);
    const LlamaConfig& c = config();
    const auto n = std::int64_t(tokens.size());
    if (n == 0) return;
    std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
    for (std::int64_t t = 0; t < n; ++t) pos[std::size_t(t)] = std::int32_t(t);
    const DeviceArray<std::int32_t> tokens_dev(tokens), pos_dev{std::span<const std::int32_t>(pos)};
    DeviceArray<float> hidden_states(std::size_t(n) * c.hidden);
    // This layer's K/V of the whole prompt, as the engine's prefill and the
    // prefill attention both read it: [n][kv_heads][head_dim].
    DeviceArray<W> prompt_k(std::size_t(n) * kv_dim()), prompt_v(std::size_t(n) * kv_dim());
    gpu::embed(w_.token_embedding(), c.vocab_size, c.hidden, tokens_dev.data(), int(n), hidden_states.data(), stream());
    for (int l = 0; l < c.layers; ++l)
      for (std::int64_t begin = 0; begin < n; begin += prefill_chunk()) {
        // Ctrl-C (core/interrupt.h) stops a long prompt here rather than after its last layer.
        stop_if_interrupted("the prefill of sequence ", sequence + 1, ": layer ", l + 1, " of ", c.layers, ", token ",
                            begin, " of ", n);
        const int rows = int(std::min(prefill_chunk(), n - begin));
        W* k = prompt_k.data() + begin * kv_dim();
        W* v = prompt_v.data() + begin * kv_dim();
        run_layer(l, rows, pos_dev.data() + begin, hidden_states.data() + begin * c.hidden, k, v, [&] {
          if (prefill_observer()) observe(sequence, l, begin, rows, k, v);
          engine().prefill(l, sequence, k, v, rows);
          gpu::prefill_attention(gpu::PrefillAttentionParams<W>{q_t_.data(), prompt_k.data(), prompt_v.data(),
                                                                attn_t_.data(), begin, rows, c.q_heads,
                                                                c.kv_heads, c.head_dim},
                                 stream());
        });
      }
    stream_.synchronize();  // the temporaries above are freed on return
    advance(sequence, n);
  }

  void restore_prefix(int sequence, const CachedPrefix& prefix) override {
    check_restore(sequence, prefix);
    const auto per_layer = std::size_t(prefix.tokens) * kv_dim();
    std::vector<W> k(per_layer), v(per_layer);
    DeviceArray<W> k_dev(per_layer), v_dev(per_layer);
    for (int l = 0; l < config().layers; ++l) {
      for (std::size_t i = 0; i < per_layer; ++i) {
        k[i] = from_float<W>(prefix.k[l * per_layer + i]);
        v[i] = from_float<W>(prefix.v[l * per_layer + i]);
      }
      k_dev.copy_from(k);
      v_dev.copy_from(v);
      engine().prefill(l, sequence, k_dev.data(), v_dev.data(), prefix.tokens);
      stream_.synchronize();  // the engine reads k_dev and v_dev on its stream before the next layer overwrites them
    }
    advance(sequence, prefix.tokens);
  }

  void decode(std::span<const std::int32_t> tokens) override {
    check_decode(tokens);
    const LlamaConfig& c = config();
    const int b = batch();
    const std::vector<std::int32_t> pos = positions();
    to_device(tokens, tokens_);
    to_device(std::span<const std::int32_t>(pos), positions_);
    gpu::embed(w_.token_embedding(), c.vocab_size, c.hidden, tokens_.data(), b, x_.data(), stream());
    for (int l = 0; l < c.layers; ++l)
      run_layer(l, b, positions_.data(), x_.data(), k_t_.data(), v_t_.data(), [&] {
        const W* q_next = nullptr;
        if (wants_q_next(l)) {
          gpu::speculative_query(blas_, *packs_[std::size_t(l) + 1], xn_.data(),
                                 RopeSpec{b, c.q_heads, c.head_dim, positions_.data(), c.rope_theta}, q_next_t_.data());
          q_next = q_next_t_.data();
        }
        engine().decode(l, q_t_.data(), k_t_.data(), v_t_.data(), q_next, attn_t_.data());
      });
    gpu::rms_norm(x_.data(), w_.final_norm(), b, c.hidden, c.rms_eps, xn_.data(), stream());
    gpu::matmul(blas_, gpu::MatmulParams<W>{w_.output_head(), c.vocab_size, c.hidden, xn_.data(), b, logits_.data()});
    for (int s = 0; s < b; ++s) advance(s, 1);
    set_logits_ready(true);
  }

  std::vector<float> logits() override {
    check_logits("logits");
    return to_host(logits_, std::size_t(batch()) * config().vocab_size);
  }

  std::vector<std::int32_t> greedy_tokens() override {
    check_logits("greedy_tokens");
    gpu::argmax(logits_.data(), batch(), config().vocab_size, greedy_.data(), stream());
    return to_host(greedy_, std::size_t(batch()));
  }

  std::vector<double> log_probs(std::span<const std::int32_t> targets) override {
    check_targets(targets);
    to_device(targets, targets_);
    gpu::target_log_prob(logits_.data(), batch(), config().vocab_size, targets_.data(), log_probs_.data(), stream());
    const std::vector<float> out = to_host(log_probs_, std::size_t(batch()));
    return {out.begin(), out.end()};
  }

  void tally_nonfinite_logits() override {
    check_logits("tally_nonfinite_logits");
    gpu::count_nonfinite(logits_.data(), std::int64_t(batch()) * config().vocab_size, nonfinite_.data(), stream());
  }

  std::int64_t take_nonfinite_logits() override {
    const unsigned long long count = to_host(nonfinite_, 1).front();
    DSO_CUDA_CHECK(cudaMemsetAsync(nonfinite_.data(), 0, sizeof(unsigned long long), stream()));
    return std::int64_t(count);
  }

 protected:
  void bind_engine(Engine& engine) override { engine.set_stream(stream()); }

 private:
  cudaStream_t stream() const { return stream_.get(); }
  std::size_t rows() const { return std::size_t(buffer_rows()); }
  std::size_t hidden() const { return std::size_t(config().hidden); }
  std::size_t ffn() const { return std::size_t(config().ffn_hidden); }
  std::size_t q_dim() const { return std::size_t(config().q_heads) * config().head_dim; }
  std::size_t kv_dim() const { return std::size_t(config().kv_heads) * config().head_dim; }

  template <class T>
  void to_device(std::span<const T> host, DeviceArray<T>& dst) {
    DSO_CUDA_CHECK(cudaMemcpyAsync(dst.data(), host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream()));
  }

  template <class T>
  std::vector<T> to_host(const DeviceArray<T>& src, std::size_t n) {
    std::vector<T> out(n);
    DSO_CUDA_CHECK(cudaMemcpyAsync(out.data(), src.data(), sizeof(T) * n, cudaMemcpyDeviceToHost, stream()));
    stream_.synchronize();
    return out;
  }

  // Hands the observer one layer's prefill chunk, copied to the host: the
  // fp32 projections, and q, k, v as the engine receives them, widened.
  void observe(int sequence, int l, std::int64_t begin, int rows, const W* k, const W* v) {
    const std::size_t nq = std::size_t(rows) * q_dim(), nkv = std::size_t(rows) * kv_dim();
    const auto widen = [&](const W* src, std::size_t n) {
      std::vector<W> host(n);
      DSO_CUDA_CHECK(cudaMemcpyAsync(host.data(), src, sizeof(W) * n, cudaMemcpyDeviceToHost, stream()));
      stream_.synchronize();
      std::vector<float> out(n);
      for (std::size_t i = 0; i < n; ++i) out[i] = to_float(host[i]);
      return out;
    };
    const std::vector<float> q_proj = to_host(q_, nq), k_proj = to_host(k_, nkv);
    const std::vector<float> q = widen(q_t_.data(), nq), k_out = widen(k, nkv), v_out = widen(v, nkv);
    prefill_observer()(PrefillActivations{sequence, l, begin, rows, q_proj, k_proj, q, k_out, v_out});
  }

  // One layer over `rows` rows of x at device positions pos; the layer's new
  // K and V go to k_out and v_out ([rows][kv_heads][head_dim]). attend()
  // leaves the attention output in attn_t_, given q_t_ and the normalised
  // input in xn_.
  template <class Attend>
  void run_layer(int l, int rows, const std::int32_t* pos, float* x, W* k_out, W* v_out, Attend&& attend) {
    const LlamaConfig& c = config();
    const DeviceLayerWeights<W>& lw = w_.layer(l);
    const auto n_q = std::int64_t(q_dim()), n_kv = std::int64_t(kv_dim()), n_ffn = std::int64_t(ffn());
    gpu::rms_norm(x, lw.attn_norm.data(), rows, c.hidden, c.rms_eps, xn_.data(), stream());
    gpu::matmul(blas_, gpu::MatmulParams<W>{lw.wq.data(), n_q, c.hidden, xn_.data(), rows, q_.data()});
    gpu::matmul(blas_, gpu::MatmulParams<W>{lw.wk.data(), n_kv, c.hidden, xn_.data(), rows, k_.data()});
    gpu::matmul(blas_, gpu::MatmulParams<W>{lw.wv.data(), n_kv, c.hidden, xn_.data(), rows, v_.data()});
    gpu::rope(q_.data(), RopeSpec{rows, c.q_heads, c.head_dim, pos, c.rope_theta}, q_t_.data(), stream());
    gpu::rope(k_.data(), RopeSpec{rows, c.kv_heads, c.head_dim, pos, c.rope_theta}, k_out, stream());
    gpu::cast(v_.data(), rows * n_kv, v_out, stream());
    attend();
    gpu::matmul(blas_, gpu::MatmulParams<W>{lw.wo.data(), c.hidden, n_q, attn_t_.data(), rows, x, true});

    gpu::rms_norm(x, lw.ffn_norm.data(), rows, c.hidden, c.rms_eps, xn_.data(), stream());
    gpu::matmul(blas_, gpu::MatmulParams<W>{lw.w_gate_up.data(), 2 * n_ffn, c.hidden, xn_.data(), rows, gate_up_.data()});
    gpu::swiglu(gate_up_.data(), gate_up_.data() + n_ffn, rows, c.ffn_hidden, 2 * n_ffn, act_.data(), stream());
    gpu::matmul(blas_, gpu::MatmulParams<W>{lw.w_down.data(), c.hidden, n_ffn, act_.data(), rows, x, true});
  }

  CudaStream stream_;
  gpu::BlasHandle blas_;
  DeviceLlamaWeights<W> w_;
  // Working buffers of buffer_rows() rows (the logits and per-sequence
  // vectors: of max_batch() rows).
  DeviceArray<float> x_;
  DeviceArray<W> xn_;  // normalised input, in the weights' type for cuBLAS
  DeviceArray<float> q_, k_, v_, gate_up_;
  DeviceArray<W> act_, q_t_, k_t_, v_t_, attn_t_, q_next_t_;
  DeviceArray<float> logits_;
  DeviceArray<std::int32_t> tokens_, positions_, targets_, greedy_;
  DeviceArray<float> log_probs_;
  DeviceArray<unsigned long long> nonfinite_;  // tallied since the last take
  std::vector<std::unique_ptr<gpu::DeviceSpeculativeQuery<W>>> packs_;  // [layer]: for layers that select speculatively
};

}  // namespace

std::unique_ptr<Decoder> make_gpu_decoder(const WeightSource& weights, const DecoderOptions& options) {
  return dispatch_dtype(options.engine.dtype, [&](auto tag) -> std::unique_ptr<Decoder> {
    return std::make_unique<GpuDecoder<decltype(tag)>>(weights, options);
  });
}

}  // namespace dso
