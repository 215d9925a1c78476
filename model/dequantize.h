#pragma once
// Turns GGUF tensor storage (plain or block-quantised) into numbers.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "model/tensor_type.h"

namespace dso {

// Converts dst.size() elements stored as `type` in `src` into `Out` (float,
// Half or BFloat16). dst.size() must be a whole number of blocks and src
// exactly their bytes; otherwise throws dso::Error.
template <class Out>
void dequantize(TensorType type, std::span<const std::byte> src, std::span<Out> dst);

// The first element of `src` (whole blocks of `type`) stored as NaN or
// infinity, or, for a quantised type, the first element of the first block
// whose scale or minimum is: a finite scale makes every value of its block
// finite, so the quantised codes need no look. Nothing where all are finite.
// Reads only the stored bits, so a model is checked as fast as it is read.
std::optional<std::int64_t> first_nonfinite(TensorType type, std::span<const std::byte> src);

}  // namespace dso
