#pragma once
// The non-attention operations of a Llama-family decoder layer, CPU backend and
// reference of the GPU kernels. Activations are fp32, row-major, one row per
// sequence of the batch. Weight types W are float, Half or BFloat16; output
// types O are float, Half or BFloat16 (an fp32 result rounded once, so a 16-bit
// output can feed a projection or the engine without a separate conversion).
#include <cstddef>
#include <cstdint>

#include "core/rope.h"
#include "core/speculative_query.h"

namespace dso::cpu {

// out[b] = table[tokens[b]]: table [vocab][hidden], out [batch][hidden].
// Throws dso::Error for a token outside [0, vocab) before writing anything.
template <class T>
void embed(const T* table, std::int64_t vocab, int hidden, const std::int32_t* tokens, int batch, float* out);

// Llama RMSNorm: out[b] = x[b] * rsqrt(mean(x[b]^2) + eps) * weight.
// x [batch][n], weight [n], out [batch][n] (may alias x when O is float).
template <class W, class O>
void rms_norm(const float* x, const W* weight, int batch, int n, float eps, O* out);

// y[b] = W x[b] (or y[b] += W x[b] with accumulate, for the residual stream):
// w [out_features][in_features] row-major, x [batch][in_features], y [batch][out_features].
// Rows are split over up to max_threads threads (0: the cores available)
// when the product is large; each row's sum is formed the same way whatever
// the split, so results do not depend on the thread count.
template <class W>
void matmul(const W* w, std::int64_t out_features, std::int64_t in_features, const float* x, int batch, float* y,
            bool accumulate = false, int max_threads = 0);

// RoPE in the HF layout (core/rope.h): x and out [batch][heads][head_dim];
// out may alias x when O is float.
template <class O>
void rope(const float* x, const RopeSpec& spec, O* out);

// Reorders the rows of a Q or K projection, [heads * head_dim] rows of
// row_bytes bytes each (any element type, quantised blocks included), between
// the GGUF and HF layouts (core/rope.h). A loader un-permutes at load with
// gguf_to_hf_rows; src and dst must not overlap.
void gguf_to_hf_rows(const void* gguf, int heads, int head_dim, std::size_t row_bytes, void* hf);
void hf_to_gguf_rows(const void* hf, int heads, int head_dim, std::size_t row_bytes, void* gguf);

// out[b][i] = silu(gate[b][i]) * up[b][i], i < n. gate and up rows lie
// in_stride floats apart (n when separate, 2n for a fused [gate | up] product
// with up = gate + n); out is [batch][n].
template <class O>
void swiglu(const float* gate, const float* up, int batch, int n, std::int64_t in_stride, O* out);

// x += y, elementwise: the residual connection.
void add(float* x, const float* y, std::int64_t n);

// Elementwise conversion: float to Half/BFloat16 (round to nearest even) and back.
template <class From, class To>
void cast(const From* in, std::int64_t n, To* out);

// The speculative query of ds_offload (docs/architecture.md) for the layer whose W_q was packed:
// out [batch][q_heads][head_dim] holds RoPE(W_q x) at every channel of the
// pack's pairs and zero elsewhere. x is [batch][hidden] (layer i's normalised
// input); spec.heads must be the pack's q_heads. Each packed channel equals the
// full rope(matmul(W_q, x)) bit for bit: the same sums and rotations are used
// (matmul's, on up to max_threads threads).
template <class W, class O>
void speculative_query(const SpeculativeQueryPack<W>& pack, const float* x, const RopeSpec& spec, O* out,
                       int max_threads = 0);

// out[b] = the index of the largest logit of row b; ties go to the lower index
// and NaN never wins (a row without a number gives 0). logits [batch][vocab].
void argmax(const float* logits, int batch, std::int64_t vocab, std::int32_t* out);

// out[b] = log softmax(logits[b])[targets[b]], for perplexity. Throws
// dso::Error for a target outside [0, vocab).
void target_log_prob(const float* logits, int batch, std::int64_t vocab, const std::int32_t* targets, float* out);

}  // namespace dso::cpu
