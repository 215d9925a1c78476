#include <climits>

#include "core/dtype.h"
#include "core/error.h"
#include "gpu/dispatch.h"
#include "gpu/model_check.h"
#include "gpu/prefill_attention.cuh"

namespace dso::gpu {

namespace {


template <class T>
PrefillAttentionParams<device_t<T>> on_device(const PrefillAttentionParams<T>& p) {
  using D = device_t<T>;
  return {reinterpret_cast<const D*>(p.q), reinterpret_cast<const D*>(p.k), reinterpret_cast<const D*>(p.v),
          reinterpret_cast<D*>(p.out),     p.first,                         p.tokens,
          p.q_heads,                       p.kv_heads,                      p.head_dim};
}

}  // namespace

template <class T>
void prefill_attention(const PrefillAttentionParams<T>& p, cudaStream_t stream) {
  require(p.tokens > 0 && p.first >= 0, "prefill attention: ", p.tokens, " tokens from position ", p.first,
          " (need at least one, from position 0 on)");
  require(p.q_heads > 0 && p.kv_heads > 0 && p.q_heads % p.kv_heads == 0, "prefill attention: ", p.q_heads,
          " query heads do not group over ", p.kv_heads, " KV heads");
  require(p.head_dim > 0 && p.head_dim <= kMaxPrefillHeadDim, "prefill attention: head_dim ", p.head_dim,
          " must be in [1, ", kMaxPrefillHeadDim, "]");
  require(p.q && p.k && p.v && p.out, "prefill attention: q, k, v and out must all be given");
  require((long long)p.tokens * p.q_heads / kernels::kPrefillWarps < INT_MAX, "prefill attention: ", p.tokens,
          " tokens of ", p.q_heads, " heads are beyond one launch");
  DSO_LAUNCH_CHECK(kernels::launch_prefill_attention(on_device(p), stream), stream);
}

template void prefill_attention<float>(const PrefillAttentionParams<float>&, cudaStream_t);
template void prefill_attention<Half>(const PrefillAttentionParams<Half>&, cudaStream_t);
template void prefill_attention<BFloat16>(const PrefillAttentionParams<BFloat16>&, cudaStream_t);

}  // namespace dso::gpu
