#include "model/tensor_type.h"

#include <array>

#include "core/error.h"

namespace dso {

TensorTypeInfo tensor_type_info(TensorType type) {
  switch (type) {
    case TensorType::f32: return {"F32", 1, 4};
    case TensorType::f16: return {"F16", 1, 2};
    case TensorType::bf16: return {"BF16", 1, 2};
    case TensorType::q8_0: return {"Q8_0", 32, 2 + 32};      // fp16 scale, 32 int8
    case TensorType::q4_0: return {"Q4_0", 32, 2 + 16};      // fp16 scale, 32 nibbles
    case TensorType::q4_1: return {"Q4_1", 32, 2 + 2 + 16};  // fp16 scale, fp16 minimum, 32 nibbles
  }
  fail("tensor type id ", std::uint32_t(type), " is not supported");
}

std::string_view tensor_type_name(TensorType type) { return tensor_type_info(type).name; }

std::optional<TensorType> tensor_type_from_id(std::uint32_t id) {
  for (TensorType t : {TensorType::f32, TensorType::f16, TensorType::q4_0, TensorType::q4_1, TensorType::q8_0,
                       TensorType::bf16})
    if (std::uint32_t(t) == id) return t;
  return std::nullopt;
}

std::string_view ggml_type_name(std::uint32_t id) {
  // Empty names are ids whose formats ggml has withdrawn from GGUF files.
  static constexpr std::array<std::string_view, 42> names = {
      "F32",   "F16",   "Q4_0",    "Q4_1",   "",        "",      "Q5_0",   "Q5_1",   "Q8_0",  "Q8_1",  "Q2_K",
      "Q3_K",  "Q4_K",  "Q5_K",    "Q6_K",   "Q8_K",    "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
      "IQ2_S", "IQ4_XS", "I8",     "I16",    "I32",     "I64",   "F64",    "IQ1_M",  "BF16",  "",      "",
      "",      "TQ1_0", "TQ2_0",   "",       "",        "",      "MXFP4",  "NVFP4",  "Q1_0"};
  if (id < names.size() && !names[id].empty()) return names[id];
  return "unknown";
}

std::string_view supported_tensor_types() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1"; }

}  // namespace dso
