#include <climits>
#include <span>

#include "core/dtype.h"
#include "gpu/dispatch.h"
#include "gpu/model_check.h"
#include "gpu/model_ops.cuh"
#include "gpu/model_ops.h"

namespace dso::gpu {

namespace {

template <class T>
const device_t<T>* dev(const T* p) {
  return reinterpret_cast<const device_t<T>*>(p);
}
template <class T>
device_t<T>* dev(T* p) {
  return reinterpret_cast<device_t<T>*>(p);
}

template <class T>
constexpr cudaDataType_t cuda_type();
template <>
constexpr cudaDataType_t cuda_type<float>() {
  return CUDA_R_32F;
}
template <>
constexpr cudaDataType_t cuda_type<Half>() {
  return CUDA_R_16F;
}
template <>
constexpr cudaDataType_t cuda_type<BFloat16>() {
  return CUDA_R_16BF;
}

void require_batch(int batch, const char* op) { require(batch > 0, op, ": batch must be positive, got ", batch); }

// cuBLAS takes int sizes.
int blas_dim(std::int64_t v, const char* what) {
  require(v > 0 && v <= INT_MAX, "matmul: ", what, " ", v, " must be in [1, ", INT_MAX, "]");
  return int(v);
}

}  // namespace

template <class T>
void embed(const T* table, std::int64_t vocab, int hidden, const std::int32_t* tokens, int batch, float* out,
           cudaStream_t stream) {
  require_batch(batch, "embedding");
  require(vocab > 0 && hidden > 0, "embedding table must be non-empty: vocab=", vocab, " hidden=", hidden);
  require((hidden + kernels::kBlock - 1) / kernels::kBlock <= 65535, "embedding: hidden size ", hidden,
          " is beyond one launch");
  DSO_LAUNCH_CHECK(kernels::launch_embed(dev(table), vocab, hidden, tokens, batch, out, stream), stream);
}

template <class W, class O>
void rms_norm(const float* x, const W* weight, int batch, int n, float eps, O* out, cudaStream_t stream) {
  require_batch(batch, "RMSNorm");
  require(n > 0, "RMSNorm width must be positive, got ", n);
  DSO_LAUNCH_CHECK(kernels::launch_rms_norm(x, dev(weight), batch, n, eps, dev(out), stream), stream);
}

template <class W>
void matmul(const BlasHandle& blas, const MatmulParams<W>& p) {
  require_batch(p.batch, "matmul");
  const int m = blas_dim(p.out_features, "out_features"), k = blas_dim(p.in_features, "in_features");
  require(p.w && p.x && p.y, "matmul: weight, input and output must all be given");
  // Row-major W [m][k] is column-major W^T with leading dimension k, so
  // y^T [m][batch] (column-major, = row-major y [batch][m]) = op_T(W^T) x^T.
  const float alpha = 1.0f, beta = p.accumulate ? 1.0f : 0.0f;
  DSO_CUBLAS_CHECK(cublasGemmEx(blas.get(), CUBLAS_OP_T, CUBLAS_OP_N, m, p.batch, k, &alpha, p.w, cuda_type<W>(), k,
                                p.x, cuda_type<W>(), k, &beta, p.y, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
  DSO_LAUNCH_CHECK(cudaGetLastError(), blas.stream());
}

template <class O>
void rope(const float* x, const RopeSpec& spec, O* out, cudaStream_t stream) {
  spec.validate();
  DSO_LAUNCH_CHECK(kernels::launch_rope(x, spec, dev(out), stream), stream);
}

template <class O>
void swiglu(const float* gate, const float* up, int batch, int n, std::int64_t in_stride, O* out, cudaStream_t stream) {
  require_batch(batch, "SwiGLU");
  require(n > 0 && in_stride >= n, "SwiGLU needs width > 0 and input stride >= width, got ", n, " and ", in_stride);
  DSO_LAUNCH_CHECK(kernels::launch_swiglu(gate, up, batch, n, in_stride, dev(out), stream), stream);
}

void add(float* x, const float* y, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  DSO_LAUNCH_CHECK(kernels::launch_add(x, y, n, stream), stream);
}

template <class From, class To>
void cast(const From* in, std::int64_t n, To* out, cudaStream_t stream) {
  if (n == 0) return;
  DSO_LAUNCH_CHECK(kernels::launch_cast(dev(in), n, dev(out), stream), stream);
}

namespace {

// Checked before anything is allocated: a pack is plain data and may have
// been built by hand.
template <class W>
int checked_max_batch(const SpeculativeQueryPack<W>& pack, int max_batch) {
  require(max_batch > 0, "speculative query: max_batch must be positive, got ", max_batch);
  require(pack.q_heads > 0 && pack.head_dim > 0 && pack.head_dim % 2 == 0 && pack.hidden > 0,
          "speculative query pack has an invalid shape: ", pack.q_heads, " heads of ", pack.head_dim, ", hidden ",
          pack.hidden);
  require(pack.pair_channel.size() == pack.pair_head.size() &&
              pack.weight.size() == std::size_t(pack.rows()) * std::size_t(pack.hidden),
          "speculative query pack is inconsistent: ", pack.pair_head.size(), " heads, ", pack.pair_channel.size(),
          " channels and ", pack.weight.size(), " weights for hidden ", pack.hidden);
  for (std::int64_t k = 0; k < pack.pairs(); ++k)
    require(pack.pair_head[k] >= 0 && pack.pair_head[k] < pack.q_heads && pack.pair_channel[k] >= 0 &&
                pack.pair_channel[k] < pack.head_dim / 2,
            "speculative query pair ", k, " (head ", pack.pair_head[k], ", channel ", pack.pair_channel[k],
            ") is outside ", pack.q_heads, " heads x ", pack.head_dim / 2, " pairs");
  return max_batch;
}

}  // namespace

template <class W>
DeviceSpeculativeQuery<W>::DeviceSpeculativeQuery(const SpeculativeQueryPack<W>& pack, int max_batch)
    : q_heads_(pack.q_heads),
      head_dim_(pack.head_dim),
      hidden_(pack.hidden),
      max_batch_(checked_max_batch(pack, max_batch)),
      weight_(std::span<const W>(pack.weight)),
      pair_head_(std::span<const std::int32_t>(pack.pair_head)),
      pair_channel_(std::span<const std::int32_t>(pack.pair_channel)),
      products_(std::size_t(max_batch) * std::size_t(pack.rows())) {}

template <class W, class O>
void speculative_query(const BlasHandle& blas, DeviceSpeculativeQuery<W>& pack, const W* x, const RopeSpec& spec,
                       O* out) {
  spec.validate();
  require(spec.heads == pack.q_heads() && spec.head_dim == pack.head_dim(), "speculative query: the pack is for ",
          pack.q_heads(), " heads of ", pack.head_dim(), ", the call asks for ", spec.heads, " of ", spec.head_dim);
  require(spec.batch <= pack.max_batch(), "speculative query: batch ", spec.batch, " exceeds the planned ",
          pack.max_batch());
  const cudaStream_t stream = blas.stream();
  // Only the pack's channels are written below; the scorer reads no others,
  // but the whole tensor is defined.
  DSO_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(O) * std::size_t(spec.batch) * spec.heads * spec.head_dim, stream));
  if (pack.pairs() == 0) return;
  matmul(blas, MatmulParams<W>{pack.weight(), 2 * pack.pairs(), pack.hidden(), x, spec.batch, pack.products()});
  DSO_LAUNCH_CHECK(kernels::launch_speculative_scatter(pack.products(), pack.pair_head(), pack.pair_channel(),
                                                       pack.pairs(), spec, dev(out), stream),
                   stream);
}

void argmax(const float* logits, int batch, std::int64_t vocab, std::int32_t* out, cudaStream_t stream) {
  require_batch(batch, "argmax");
  require(vocab > 0 && vocab <= INT_MAX, "argmax: vocabulary size ", vocab, " must be in [1, 2^31)");
  DSO_LAUNCH_CHECK(kernels::launch_argmax(logits, batch, vocab, out, stream), stream);
}

void target_log_prob(const float* logits, int batch, std::int64_t vocab, const std::int32_t* targets, float* out,
                     cudaStream_t stream) {
  require_batch(batch, "log-softmax");
  require(vocab > 0, "log-softmax: vocabulary size ", vocab, " must be positive");
  DSO_LAUNCH_CHECK(kernels::launch_target_log_prob(logits, batch, vocab, targets, out, stream), stream);
}

#define DSO_INSTANTIATE_WO(W, O)                                                           \
  template void rms_norm<W, O>(const float*, const W*, int, int, float, O*, cudaStream_t); \
  template void speculative_query<W, O>(const BlasHandle&, DeviceSpeculativeQuery<W>&, const W*, const RopeSpec&, O*);
#define DSO_INSTANTIATE_W(W)                                                                           \
  template void embed<W>(const W*, std::int64_t, int, const std::int32_t*, int, float*, cudaStream_t); \
  template void matmul<W>(const BlasHandle&, const MatmulParams<W>&);                                  \
  template void rope<W>(const float*, const RopeSpec&, W*, cudaStream_t);                              \
  template void swiglu<W>(const float*, const float*, int, int, std::int64_t, W*, cudaStream_t);       \
  template class DeviceSpeculativeQuery<W>;                                                            \
  DSO_INSTANTIATE_WO(W, float)                                                                         \
  DSO_INSTANTIATE_WO(W, Half)                                                                          \
  DSO_INSTANTIATE_WO(W, BFloat16)
DSO_INSTANTIATE_W(float)
DSO_INSTANTIATE_W(Half)
DSO_INSTANTIATE_W(BFloat16)
#undef DSO_INSTANTIATE_W
#undef DSO_INSTANTIATE_WO

template void cast<float, Half>(const float*, std::int64_t, Half*, cudaStream_t);
template void cast<float, BFloat16>(const float*, std::int64_t, BFloat16*, cudaStream_t);
template void cast<Half, float>(const Half*, std::int64_t, float*, cudaStream_t);
template void cast<BFloat16, float>(const BFloat16*, std::int64_t, float*, cudaStream_t);

}  // namespace dso::gpu
