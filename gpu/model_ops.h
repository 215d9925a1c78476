#pragma once
// The non-attention operations of a Llama-family decoder layer on the GPU:
// host launchers with the contracts of cpu/model_ops.h (their reference), on
// device pointers, ordered on the given stream (a BlasHandle's stream for the
// calls that take one). Kernels live in gpu/model_ops.cuh.
//
// Types: W (weights) and O (outputs) are float, Half or BFloat16; Half and
// BFloat16 buffers are read as __half / __nv_bfloat16. Shapes are validated
// here (dso::Error). Token ids, positions and targets live on the device and
// cannot be: an out-of-range token or target yields a NaN row or value instead
// of an out-of-bounds read, and positions must be non-negative.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/rope.h"
#include "core/speculative_query.h"
#include "gpu/blas_handle.h"
#include "gpu/device_array.h"

namespace dso::gpu {

// out[b] = table[tokens[b]]: table [vocab][hidden], out [batch][hidden].
template <class T>
void embed(const T* table, std::int64_t vocab, int hidden, const std::int32_t* tokens, int batch, float* out,
           cudaStream_t stream);

// Llama RMSNorm, one block per row: out[b] = x[b] * rsqrt(mean(x[b]^2) + eps) * weight.
template <class W, class O>
void rms_norm(const float* x, const W* weight, int batch, int n, float eps, O* out, cudaStream_t stream);

// y[b] = W x[b] through cuBLAS, fp32 accumulation. cuBLAS needs both operands
// in one type, so x comes in the weight's type: cast (or rms_norm / swiglu with
// O = W) once, and every projection of that input reads the same copy.
template <class W>
struct MatmulParams {
  const W* w = nullptr;  // [out_features][in_features], row-major
  std::int64_t out_features = 0;
  std::int64_t in_features = 0;
  const W* x = nullptr;  // [batch][in_features]
  int batch = 0;
  float* y = nullptr;       // [batch][out_features]
  bool accumulate = false;  // y += W x, for the residual stream
};

template <class W>
void matmul(const BlasHandle& blas, const MatmulParams<W>& p);

// RoPE in the HF layout (core/rope.h): x and out [batch][heads][head_dim];
// out may alias x when O is float.
template <class O>
void rope(const float* x, const RopeSpec& spec, O* out, cudaStream_t stream);

// out[b][i] = silu(gate[b][i]) * up[b][i]; gate/up rows in_stride floats apart.
template <class O>
void swiglu(const float* gate, const float* up, int batch, int n, std::int64_t in_stride, O* out, cudaStream_t stream);

// x += y, elementwise.
void add(float* x, const float* y, std::int64_t n, cudaStream_t stream);

// float to Half/BFloat16 (round to nearest even) and back.
template <class From, class To>
void cast(const From* in, std::int64_t n, To* out, cudaStream_t stream);

// A SpeculativeQueryPack uploaded once, with room for the packed products of
// up to max_batch sequences.
template <class W>
class DeviceSpeculativeQuery {
 public:
  DeviceSpeculativeQuery(const SpeculativeQueryPack<W>& pack, int max_batch);

  int q_heads() const { return q_heads_; }
  int head_dim() const { return head_dim_; }
  std::int64_t hidden() const { return hidden_; }
  std::int64_t pairs() const { return std::int64_t(pair_head_.size()); }
  int max_batch() const { return max_batch_; }

  const W* weight() const { return weight_.data(); }
  const std::int32_t* pair_head() const { return pair_head_.data(); }
  const std::int32_t* pair_channel() const { return pair_channel_.data(); }
  float* products() { return products_.data(); }

 private:
  int q_heads_;
  int head_dim_;
  std::int64_t hidden_;
  int max_batch_;
  DeviceArray<W> weight_;
  DeviceArray<std::int32_t> pair_head_;
  DeviceArray<std::int32_t> pair_channel_;
  DeviceArray<float> products_;  // [max_batch][2 * pairs]
};

// The speculative query (cpu::speculative_query): out [batch][q_heads][head_dim]
// holds RoPE(W_q x) at the pack's channels and zero elsewhere. x is
// [batch][hidden] in the weight's type.
template <class W, class O>
void speculative_query(const BlasHandle& blas, DeviceSpeculativeQuery<W>& pack, const W* x, const RopeSpec& spec,
                       O* out);

// out[b] = index of the largest logit of row b (ties: lower index; NaN never wins).
void argmax(const float* logits, int batch, std::int64_t vocab, std::int32_t* out, cudaStream_t stream);

// out[b] = log softmax(logits[b])[targets[b]].
void target_log_prob(const float* logits, int batch, std::int64_t vocab, const std::int32_t* targets, float* out,
                     cudaStream_t stream);

}  // namespace dso::gpu
