#pragma once
// Turns GGUF tensor storage (plain or block-quantised) into numbers.
#include <cstddef>
#include <span>

#include "model/tensor_type.h"

namespace dso {

// Converts dst.size() elements stored as `type` in `src` into `Out` (float,
// Half or BFloat16). dst.size() must be a whole number of blocks and src
// exactly their bytes; otherwise throws dso::Error.
template <class Out>
void dequantize(TensorType type, std::span<const std::byte> src, std::span<Out> dst);

}  // namespace dso
