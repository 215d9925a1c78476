#include "cpu/model_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/parallel.h"

namespace dso::cpu {

namespace {

// Eight independent partial sums let the compiler keep a vector register busy
// without reassociating; the fixed combining order keeps results reproducible.
template <class W>
float dot(const W* w, const float* x, std::int64_t n) {
  constexpr int lanes = 8;
  float acc[lanes] = {};
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (int j = 0; j < lanes; ++j) acc[j] += to_float(w[i + j]) * x[i + j];
  float tail = 0.0f;
  for (; i < n; ++i) tail += to_float(w[i]) * x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

// Below this many multiply-adds per thread, starting a thread costs more than it saves.
constexpr std::int64_t kMinWorkPerThread = std::int64_t(1) << 20;

template <class F>
void for_row_ranges(std::int64_t rows, std::int64_t work_per_row, int max_threads, F&& body) {
  const std::int64_t threads = std::clamp<std::int64_t>(rows * work_per_row / kMinWorkPerThread, 1,
                                                        std::min<std::int64_t>(resolve_threads(max_threads), rows));
  parallel_for(threads, int(threads), [&](std::int64_t t) { body(rows * t / threads, rows * (t + 1) / threads); });
}

// One out-of-line body for every RoPE store, so that the speculative query and
// the full rotation give the same bits even where the compiler would contract
// a multiply-add differently at two inlined sites.
template <class O>
[[gnu::noinline]] void rotate_store(float lo, float hi, RopeRotation r, O* out_lo, O* out_hi) {
  rope_rotate(lo, hi, r);
  *out_lo = from_float<O>(lo);
  *out_hi = from_float<O>(hi);
}

void require_batch(int batch, const char* op) { require(batch > 0, op, ": batch must be positive, got ", batch); }

// Validates a RoPE call whose positions live in host memory, before any output is written.
void require_rope(const RopeSpec& spec) {
  spec.validate();
  for (int b = 0; b < spec.batch; ++b)
    require(spec.positions[b] >= 0, "RoPE position ", spec.positions[b], " of sequence ", b, " is negative");
}

}  // namespace

template <class T>
void embed(const T* table, std::int64_t vocab, int hidden, const std::int32_t* tokens, int batch, float* out) {
  require_batch(batch, "embedding");
  require(vocab > 0 && hidden > 0, "embedding table must be non-empty: vocab=", vocab, " hidden=", hidden);
  for (int b = 0; b < batch; ++b)
    require(tokens[b] >= 0 && tokens[b] < vocab, "token id ", tokens[b], " of sequence ", b,
            " is outside the vocabulary [0, ", vocab, ")");
  for (int b = 0; b < batch; ++b) {
    const T* row = table + std::int64_t(tokens[b]) * hidden;
    for (int i = 0; i < hidden; ++i) out[std::int64_t(b) * hidden + i] = to_float(row[i]);
  }
}

template <class W, class O>
void rms_norm(const float* x, const W* weight, int batch, int n, float eps, O* out) {
  require_batch(batch, "RMSNorm");
  require(n > 0, "RMSNorm width must be positive, got ", n);
  for (int b = 0; b < batch; ++b) {
    const float* row = x + std::int64_t(b) * n;
    double sum_sq = 0.0;
    for (int i = 0; i < n; ++i) sum_sq += double(row[i]) * row[i];
    const auto inv_rms = float(1.0 / std::sqrt(sum_sq / n + double(eps)));
    O* o = out + std::int64_t(b) * n;
    for (int i = 0; i < n; ++i) o[i] = from_float<O>(row[i] * inv_rms * to_float(weight[i]));
  }
}

template <class W>
void matmul(const W* w, std::int64_t out_features, std::int64_t in_features, const float* x, int batch, float* y,
            bool accumulate, int max_threads) {
  require_batch(batch, "matmul");
  require(out_features > 0 && in_features > 0, "matmul shape must be positive: ", out_features, " x ", in_features);
  // Row-outer, batch-inner: each weight row is read from memory once and
  // reused from cache for every sequence.
  for_row_ranges(out_features, in_features * batch, max_threads, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t o = begin; o < end; ++o)
      for (int b = 0; b < batch; ++b) {
        const float s = dot(w + o * in_features, x + std::int64_t(b) * in_features, in_features);
        float& dst = y[std::int64_t(b) * out_features + o];
        dst = accumulate ? dst + s : s;
      }
  });
}

template <class O>
void rope(const float* x, const RopeSpec& spec, O* out) {
  require_rope(spec);
  const int d = spec.head_dim, half = d / 2;
  for (int b = 0; b < spec.batch; ++b) {
    for (int i = 0; i < half; ++i) {
      const RopeRotation r = rope_rotation(spec.positions[b], i, d, spec.theta);
      for (int h = 0; h < spec.heads; ++h) {
        const std::int64_t base = (std::int64_t(b) * spec.heads + h) * d;
        rotate_store(x[base + i], x[base + i + half], r, out + base + i, out + base + i + half);
      }
    }
  }
}

namespace {

void permute_head_rows(const void* src, int heads, int head_dim, std::size_t row_bytes, void* dst, bool to_hf) {
  require(heads > 0 && head_dim > 0 && head_dim % 2 == 0,
          "Q/K row permutation needs heads > 0 and an even head_dim, got ", heads, " heads of ", head_dim);
  const auto* s = static_cast<const std::byte*>(src);
  auto* t = static_cast<std::byte*>(dst);
  for (std::int64_t h = 0; h < heads; ++h)
    for (int g = 0; g < head_dim; ++g) {
      const std::int64_t gguf_row = h * head_dim + g, hf_row = h * head_dim + hf_channel_of_gguf(g, head_dim);
      const std::int64_t from = to_hf ? gguf_row : hf_row, to = to_hf ? hf_row : gguf_row;
      std::memcpy(t + to * row_bytes, s + from * row_bytes, row_bytes);
    }
}

}  // namespace

void gguf_to_hf_rows(const void* gguf, int heads, int head_dim, std::size_t row_bytes, void* hf) {
  permute_head_rows(gguf, heads, head_dim, row_bytes, hf, true);
}

void hf_to_gguf_rows(const void* hf, int heads, int head_dim, std::size_t row_bytes, void* gguf) {
  permute_head_rows(hf, heads, head_dim, row_bytes, gguf, false);
}

template <class O>
void swiglu(const float* gate, const float* up, int batch, int n, std::int64_t in_stride, O* out) {
  require_batch(batch, "SwiGLU");
  require(n > 0 && in_stride >= n, "SwiGLU needs width > 0 and input stride >= width, got ", n, " and ", in_stride);
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < n; ++i) {
      const float g = gate[b * in_stride + i];
      out[std::int64_t(b) * n + i] = from_float<O>(g / (1.0f + std::exp(-g)) * up[b * in_stride + i]);
    }
}

void add(float* x, const float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
}

template <class From, class To>
void cast(const From* in, std::int64_t n, To* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = from_float<To>(to_float(in[i]));
}

template <class W, class O>
void speculative_query(const SpeculativeQueryPack<W>& pack, const float* x, const RopeSpec& spec, O* out,
                       int max_threads) {
  require_rope(spec);
  require(spec.heads == pack.q_heads && spec.head_dim == pack.head_dim, "speculative query: the pack is for ",
          pack.q_heads, " heads of ", pack.head_dim, ", the call asks for ", spec.heads, " of ", spec.head_dim);
  const int d = pack.head_dim, half = d / 2;
  const std::int64_t rows = pack.rows();
  std::fill_n(out, std::int64_t(spec.batch) * spec.heads * d, from_float<O>(0.0f));
  if (rows == 0) return;
  std::vector<float> product(std::size_t(spec.batch) * rows);
  matmul(pack.weight.data(), rows, pack.hidden, x, spec.batch, product.data(), false, max_threads);
  for (int b = 0; b < spec.batch; ++b) {
    for (std::int64_t k = 0; k < pack.pairs(); ++k) {
      const int i = pack.pair_channel[k];
      const RopeRotation r = rope_rotation(spec.positions[b], i, d, spec.theta);
      const std::int64_t base = (std::int64_t(b) * spec.heads + pack.pair_head[k]) * d;
      const float* p = product.data() + std::int64_t(b) * rows + 2 * k;
      rotate_store(p[0], p[1], r, out + base + i, out + base + i + half);
    }
  }
}

void argmax(const float* logits, int batch, std::int64_t vocab, std::int32_t* out) {
  require_batch(batch, "argmax");
  require(vocab > 0 && vocab <= std::numeric_limits<std::int32_t>::max(), "argmax: vocabulary size ", vocab,
          " must be in [1, 2^31)");
  for (int b = 0; b < batch; ++b) {
    const float* row = logits + std::int64_t(b) * vocab;
    float best = -std::numeric_limits<float>::infinity();
    std::int64_t best_index = vocab;  // no number seen yet
    for (std::int64_t i = 0; i < vocab; ++i)
      if (row[i] > best || (row[i] == best && best_index == vocab)) {
        best = row[i];
        best_index = i;
      }
    out[b] = std::int32_t(best_index == vocab ? 0 : best_index);
  }
}

void target_log_prob(const float* logits, int batch, std::int64_t vocab, const std::int32_t* targets, float* out) {
  require_batch(batch, "log-softmax");
  require(vocab > 0, "log-softmax: vocabulary size ", vocab, " must be positive");
  for (int b = 0; b < batch; ++b)
    require(targets[b] >= 0 && targets[b] < vocab, "target token ", targets[b], " of row ", b,
            " is outside the vocabulary [0, ", vocab, ")");
  for (int b = 0; b < batch; ++b) {
    const float* row = logits + std::int64_t(b) * vocab;
    const float mx = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (std::int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i]) - mx);
    out[b] = float(double(row[targets[b]]) - mx - std::log(sum));
  }
}

#define DSO_INSTANTIATE_WO(W, O)                                             \
  template void rms_norm<W, O>(const float*, const W*, int, int, float, O*); \
  template void speculative_query<W, O>(const SpeculativeQueryPack<W>&, const float*, const RopeSpec&, O*, int);
#define DSO_INSTANTIATE_W(W)                                                                           \
  template void embed<W>(const W*, std::int64_t, int, const std::int32_t*, int, float*);               \
  template void matmul<W>(const W*, std::int64_t, std::int64_t, const float*, int, float*, bool, int); \
  template void rope<W>(const float*, const RopeSpec&, W*);                                            \
  template void swiglu<W>(const float*, const float*, int, int, std::int64_t, W*);                     \
  DSO_INSTANTIATE_WO(W, float)                                                                         \
  DSO_INSTANTIATE_WO(W, Half)                                                                          \
  DSO_INSTANTIATE_WO(W, BFloat16)
DSO_INSTANTIATE_W(float)
DSO_INSTANTIATE_W(Half)
DSO_INSTANTIATE_W(BFloat16)
#undef DSO_INSTANTIATE_W
#undef DSO_INSTANTIATE_WO

template void cast<float, Half>(const float*, std::int64_t, Half*);
template void cast<float, BFloat16>(const float*, std::int64_t, BFloat16*);
template void cast<Half, float>(const Half*, std::int64_t, float*);
template void cast<BFloat16, float>(const BFloat16*, std::int64_t, float*);

}  // namespace dso::cpu
