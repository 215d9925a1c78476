#pragma once
// Reader of GGUF model files (versions 2 and 3, little-endian): metadata
// key/values and the tensor directory, validated against the file's size on
// open, so that no accessor can read past the bytes it was given. Strings and
// tensor data are views into those bytes: they live as long as the GgufFile.
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count, the
// key/values, the tensor infos, padding to `general.alignment` (default 32),
// then the tensor data, each tensor at an aligned offset from that point.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/error.h"
#include "model/mapped_file.h"
#include "model/tensor_type.h"

namespace dso {

enum class GgufType : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};

std::string_view gguf_type_name(GgufType type);

// One metadata value. A number (or an array of numbers) stays as its bytes in
// the file, read on request; strings are views into the file.
struct GgufValue {
  GgufType type = GgufType::u8;
  GgufType element_type = GgufType::u8;  // arrays only
  std::uint64_t count = 1;               // array length; 1 for a scalar
  const std::byte* bytes = nullptr;      // numbers and bools, `count` packed little-endian elements
  std::vector<std::string_view> strings; // a string scalar (one) or an array of strings
};

struct GgufTensor {
  std::string_view name;
  std::vector<std::int64_t> dims;  // ggml order: dims[0] varies fastest (the row length)
  TensorType type = TensorType::f32;
  std::uint64_t offset = 0;        // from the start of the data section
  std::int64_t elements = 0;
  std::span<const std::byte> data;

  std::int64_t row_length() const { return dims[0]; }
  std::int64_t rows() const { return elements / dims[0]; }
};

class GgufFile {
 public:
  // Maps the file and reads its directory. Throws dso::Error naming the file
  // and the problem when it is not a well-formed GGUF file of a supported kind.
  static GgufFile open(const std::string& path);
  // The same over bytes already in memory (`name` appears in messages).
  static GgufFile parse(std::vector<std::byte> bytes, std::string name);
  GgufFile(GgufFile&&) = default;
  GgufFile& operator=(GgufFile&&) = default;
  GgufFile(const GgufFile&) = delete;  // the views would point into the original
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::span<const std::byte> bytes() const { return bytes_; }

  // Metadata keys in file order.
  const std::vector<std::string_view>& keys() const { return keys_; }
  const GgufValue* find(std::string_view key) const;
  const GgufValue& value(std::string_view key) const;  // throws when missing
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters. T is one of std::uint32_t, std::uint64_t, std::int32_t,
  // std::int64_t (from any integer type whose value fits), float, double
  // (from f32 or f64), bool, std::string_view, std::vector<std::string_view>,
  // std::vector<std::int32_t> (from an array of any integer type whose values
  // fit) or std::vector<float> (from an array of f32 or f64). Throws
  // dso::Error naming the key when it is missing, of another type, or does
  // not fit.
  template <class T>
  T get(std::string_view key) const;
  // The same, but `fallback` when the key is absent.
  template <class T>
  T get_or(std::string_view key, T fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }

  // Throws dso::Error naming this file when !ok: for checks of the file's
  // contents made by its readers (config, tokenizer).
  template <class... Args>
  void check(bool ok, const Args&... args) const {
    if (!ok) fail("GGUF file '", name_, "': ", args...);
  }

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;
  const GgufTensor& tensor(std::string_view name) const;  // throws when missing

  // The tensor's values in row-major order of its dims (dims[0] fastest).
  std::vector<float> dequantize(const GgufTensor& tensor) const;

 private:
  GgufFile() = default;
  void read_directory();

  std::string name_;
  std::variant<std::monostate, MappedFile, std::vector<std::byte>> storage_;
  std::span<const std::byte> bytes_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::vector<std::string_view> keys_;
  std::unordered_map<std::string_view, GgufValue> values_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

}  // namespace dso
