#include "cpu/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"

namespace dso::cpu {

namespace {

// token(i) maps the i-th attended position to its cache row.
template <class T, class TokenAt>
void attend(const T* q, int group, int d, const T* keys, const T* values, std::int64_t count,
            TokenAt token, float* out) {
  const float scale = 1.0f / std::sqrt(float(d));
  std::vector<float> logits(count);
  std::vector<float> qf(d);
  for (int h = 0; h < group; ++h) {
    for (int c = 0; c < d; ++c) qf[c] = to_float(q[std::int64_t(h) * d + c]);
    float max_logit = -std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < count; ++i) {
      const T* k = keys + token(i) * d;
      float s = 0.0f;
      for (int c = 0; c < d; ++c) s += qf[c] * to_float(k[c]);
      logits[i] = s * scale;
      max_logit = std::max(max_logit, logits[i]);
    }
    float denom = 0.0f;
    for (std::int64_t i = 0; i < count; ++i) {
      logits[i] = std::exp(logits[i] - max_logit);
      denom += logits[i];
    }
    float* o = out + std::int64_t(h) * d;
    for (int c = 0; c < d; ++c) o[c] = 0.0f;
    for (std::int64_t i = 0; i < count; ++i) {
      const T* v = values + token(i) * d;
      const float p = logits[i] / denom;
      for (int c = 0; c < d; ++c) o[c] += p * to_float(v[c]);
    }
  }
}

}  // namespace

template <class T>
void sparse_attention(const T* q, int group, int d, const T* keys, const T* values,
                      const std::int32_t* indices, std::int64_t count, float* out) {
  attend(q, group, d, keys, values, count, [indices](std::int64_t i) { return std::int64_t(indices[i]); },
         out);
}

template <class T>
void dense_attention(const T* q, int group, int d, const T* keys, const T* values, std::int64_t n,
                     float* out) {
  attend(q, group, d, keys, values, n, [](std::int64_t i) { return i; }, out);
}

#define DSO_INSTANTIATE(T)                                                                          \
  template void sparse_attention(const T*, int, int, const T*, const T*, const std::int32_t*,       \
                                 std::int64_t, float*);                                             \
  template void dense_attention(const T*, int, int, const T*, const T*, std::int64_t, float*);
DSO_INSTANTIATE(Half)
DSO_INSTANTIATE(BFloat16)
DSO_INSTANTIATE(float)
#undef DSO_INSTANTIATE

}  // namespace dso::cpu
