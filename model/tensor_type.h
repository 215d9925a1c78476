#pragma once
// The ggml tensor storage types a GGUF file may hold, by their on-disk ids,
// and the block geometry of the ones this project reads.
#include <cstdint>
#include <optional>
#include <string_view>

namespace dso {

enum class TensorType : std::uint32_t { f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, bf16 = 30 };

// Quantised types store whole blocks: `block_elements` values in `block_bytes`
// bytes. Plain types are blocks of one element.
struct TensorTypeInfo {
  std::string_view name;
  std::int64_t block_elements;
  std::int64_t block_bytes;
};

TensorTypeInfo tensor_type_info(TensorType type);
std::string_view tensor_type_name(TensorType type);

// The supported type with this id, or nothing.
std::optional<TensorType> tensor_type_from_id(std::uint32_t id);

// ggml's name for any id it defines ("Q4_K"), for messages about types this
// project does not read; "unknown" for ids ggml does not define either.
std::string_view ggml_type_name(std::uint32_t id);

// The names of the supported types, comma-separated, for messages.
std::string_view supported_tensor_types();

}  // namespace dso
