#pragma once
// Builds GGUF files in memory for tests, and remembers where each field went
// so that a test can corrupt exactly one of them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "model/gguf.h"
#include "model/tensor_type.h"

namespace dso::test {

template <class T>
constexpr GgufType gguf_type_of() {
  if constexpr (std::is_same_v<T, bool>) return GgufType::boolean;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return GgufType::u8;
  else if constexpr (std::is_same_v<T, std::int8_t>) return GgufType::i8;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return GgufType::u16;
  else if constexpr (std::is_same_v<T, std::int16_t>) return GgufType::i16;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return GgufType::u32;
  else if constexpr (std::is_same_v<T, std::int32_t>) return GgufType::i32;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return GgufType::u64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return GgufType::i64;
  else if constexpr (std::is_same_v<T, float>) return GgufType::f32;
  else {
    static_assert(std::is_same_v<T, double>, "not a GGUF scalar type");
    return GgufType::f64;
  }
}

// Appends the little-endian bytes of `value`.
template <class T>
void put(std::vector<std::byte>& out, T value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

class GgufWriter {
 public:
  void set_version(std::uint32_t version) { version_ = version; }
  // Also writes the general.alignment key.
  void set_alignment(std::uint32_t alignment);

  // T: std::uint8_t ... std::int64_t, float, double or bool; the GGUF type follows T.
  template <class T>
  void scalar(const std::string& key, T value) {
    KeyValue kv{key, gguf_type_of<T>(), GgufType::u8, 1, {}, {}};
    put<T>(kv.payload, value);
    kvs_.push_back(std::move(kv));
  }
  void string(const std::string& key, const std::string& value);
  template <class T>
  void array(const std::string& key, const std::vector<T>& values) {
    KeyValue kv{key, GgufType::array, gguf_type_of<T>(), values.size(), {}, {}};
    for (T v : values) put<T>(kv.payload, v);
    kvs_.push_back(std::move(kv));
  }
  void strings(const std::string& key, const std::vector<std::string>& values);

  // `data` must hold the tensor's bytes in `type`'s layout.
  void tensor(const std::string& name, std::vector<std::int64_t> dims, TensorType type, std::vector<std::byte> data);

  // The whole file, tensor data last (no padding after the last tensor).
  std::vector<std::byte> build();

  // Where a field starts in the last build(): "magic", "version",
  // "tensor_count", "kv_count", "kv<i>.key" (its length), "kv<i>.type",
  // "kv<i>.value" (a scalar, or a string's length), "kv<i>.element_type",
  // "kv<i>.count", "kv<i>.first" (first element, or its length),
  // "tensor<i>.name", "tensor<i>.n_dims", "tensor<i>.dim<d>", "tensor<i>.type",
  // "tensor<i>.offset", "tensor<i>.data", "data".
  std::size_t at(const std::string& field) const;

 private:
  struct KeyValue {
    std::string key;
    GgufType type;
    GgufType element_type;
    std::uint64_t count;
    std::vector<std::byte> payload;  // the scalar or the packed elements
    std::vector<std::string> strings;
  };
  struct Tensor {
    std::string name;
    std::vector<std::int64_t> dims;
    TensorType type;
    std::vector<std::byte> data;
  };

  std::uint32_t version_ = 3;
  std::uint64_t alignment_ = 32;
  std::vector<KeyValue> kvs_;
  std::vector<Tensor> tensors_;
  std::map<std::string, std::size_t> at_;
};

}  // namespace dso::test
