#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dtype.h"

namespace dso::cpu {

namespace {

// Keys are scored four at a time and every head of the group reads the same
// widened rows: four independent sums per head keep the core busy, and each
// row is widened once rather than once per head. Every sum still runs over the
// channels in order and every output over the tokens in order, so the result
// is that of scoring one token and one head at a time.
constexpr int kKeysAtOnce = 4;

// Widening f16 takes most of the time otherwise: a table of all 65536 values
// gives the same floats for a load.
const float* half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (std::uint32_t bits = 0; bits < t.size(); ++bits) t[bits] = to_float(Half{std::uint16_t(bits)});
    return t;
  }();
  return table.data();
}

// x[0..n) widened to float.
template <class T>
void widen(const T* x, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = to_float(x[i]);
}

template <>
void widen(const Half* x, int n, float* out) {
  const float* table = half_table();
  for (int i = 0; i < n; ++i) out[i] = table[x[i].bits];
}

// token(i) maps the i-th attended position to its cache row.
template <class T, class TokenAt>
void attend(const T* q, int group, int d, const T* keys, const T* values, std::int64_t count,
            TokenAt token, float* out) {
  const float scale = 1.0f / std::sqrt(float(d));
  std::vector<float> logits(std::size_t(group) * count);  // [group][count]
  std::vector<float> qf(std::size_t(group) * d);
  std::vector<float> rows(std::size_t(kKeysAtOnce) * d);
  widen(q, group * d, qf.data());

  for (std::int64_t first = 0; first < count; first += kKeysAtOnce) {
    const int n = int(std::min<std::int64_t>(kKeysAtOnce, count - first));
    for (int j = 0; j < n; ++j) widen(keys + token(first + j) * d, d, rows.data() + std::size_t(j) * d);
    for (int h = 0; h < group; ++h) {
      const float* qh = qf.data() + std::int64_t(h) * d;
      float* lh = logits.data() + std::int64_t(h) * count + first;
      if (n == kKeysAtOnce) {
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (int c = 0; c < d; ++c) {
          s0 += qh[c] * rows[c];
          s1 += qh[c] * rows[std::size_t(d) + c];
          s2 += qh[c] * rows[2 * std::size_t(d) + c];
          s3 += qh[c] * rows[3 * std::size_t(d) + c];
        }
        lh[0] = s0 * scale, lh[1] = s1 * scale, lh[2] = s2 * scale, lh[3] = s3 * scale;
      } else {
        for (int j = 0; j < n; ++j) {
          float s = 0.0f;
          for (int c = 0; c < d; ++c) s += qh[c] * rows[std::size_t(j) * d + c];
          lh[j] = s * scale;
        }
      }
    }
  }

  std::vector<float> denom(std::size_t(group), 0.0f);
  for (int h = 0; h < group; ++h) {
    float* lh = logits.data() + std::int64_t(h) * count;
    float max_logit = -std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < count; ++i) max_logit = std::max(max_logit, lh[i]);
    for (std::int64_t i = 0; i < count; ++i) {
      lh[i] = std::exp(lh[i] - max_logit);
      denom[std::size_t(h)] += lh[i];
    }
  }
  std::fill(out, out + std::int64_t(group) * d, 0.0f);
  for (std::int64_t i = 0; i < count; ++i) {
    widen(values + token(i) * d, d, rows.data());
    for (int h = 0; h < group; ++h) {
      const float p = logits[std::size_t(h) * count + i] / denom[std::size_t(h)];
      float* o = out + std::int64_t(h) * d;
      for (int c = 0; c < d; ++c) o[c] += p * rows[std::size_t(c)];
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
