#pragma once
// The weights of a Llama-family GGUF file (llama.cpp's tensor names),
// dequantised to float, with each head's Q and K rows put back from
// llama.cpp's interleaved-RoPE order into the Hugging Face order
// (cpu::gguf_to_hf_rows), so that everything downstream speaks HF channels.
#include <memory>

#include "model/gguf.h"
#include "model/weight_source.h"

namespace dso {

// Checks, before anything is read, that every tensor the decoder needs is
// present with the shape the file's metadata implies; throws dso::Error naming
// the file and the tensor otherwise. The source reads from `file`, which must
// outlive it.
std::unique_ptr<WeightSource> gguf_weights(const GgufFile& file);

}  // namespace dso
