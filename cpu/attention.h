#pragma once
// Decode attention for one (sequence, KV head), CPU reference: the `group`
// query heads that share the KV head attend over a set of cached tokens, with
// softmax scale 1/sqrt(d) over that set only. fp32 accumulation.
#include <cstdint>

namespace dso::cpu {

// q: [group][d]; keys, values: [n][d] (any n covering the indices);
// indices: [count] token positions; out: [group][d].
template <class T>
void sparse_attention(const T* q, int group, int d, const T* keys, const T* values,
                      const std::int32_t* indices, std::int64_t count, float* out);

// Every one of the n tokens.
template <class T>
void dense_attention(const T* q, int group, int d, const T* keys, const T* values, std::int64_t n,
                     float* out);

}  // namespace dso::cpu
