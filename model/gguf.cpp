#include "model/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "core/printable.h"
#include "model/dequantize.h"

namespace dso {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace {

constexpr std::uint32_t kMaxDims = 4;  // ggml's GGML_MAX_DIMS

// Smallest encodings, used to refuse a count that cannot fit in the bytes
// left before anything is allocated for it.
constexpr std::uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;           // key length, 1-byte key, type, u8
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, one dim, type, offset

std::uint64_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::u8:
    case GgufType::i8:
    case GgufType::boolean: return 1;
    case GgufType::u16:
    case GgufType::i16: return 2;
    case GgufType::u32:
    case GgufType::i32:
    case GgufType::f32: return 4;
    case GgufType::u64:
    case GgufType::i64:
    case GgufType::f64: return 8;
    case GgufType::string:
    case GgufType::array: return 0;
  }
  return 0;
}

bool is_known_type(std::uint32_t t) { return t <= std::uint32_t(GgufType::f64); }

// Bounds-checked reads over the file's bytes. `context` names what is being
// read (a key, a tensor) for the message when the file ends too soon.
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  std::uint64_t position() const { return pos_; }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }
  void set_context(std::string_view context) { context_ = context; }

  void need(std::uint64_t n, const char* what) const {
    if (n > remaining())
      fail("truncated: ", what, in_context(), " at byte ", pos_, " needs ", n, " bytes, only ", remaining(),
           " remain");
  }

  const std::byte* take(std::uint64_t n, const char* what) {
    need(n, what);
    const std::byte* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

  template <class T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }

  std::string_view read_string(const char* what) {
    const auto length = read<std::uint64_t>(what);
    if (length > remaining())
      fail("string length ", length, " of ", what, in_context(), " at byte ", pos_ - 8,
           " points past the end of the file (", remaining(), " bytes remain)");
    return {reinterpret_cast<const char*>(take(length, what)), std::size_t(length)};
  }

 private:
  std::string in_context() const { return context_.empty() ? std::string() : concat(" of ", in_quotes(context_)); }

  std::span<const std::byte> bytes_;
  std::uint64_t pos_ = 0;
  std::string_view context_;
};

GgufValue read_value(Cursor& in, std::string_view key) {
  GgufValue v;
  const auto type = in.read<std::uint32_t>("value type");
  require(is_known_type(type), "key ", in_quotes(key), " has unknown value type ", type);
  v.type = GgufType(type);
  if (v.type == GgufType::string) {
    v.strings.push_back(in.read_string("string value"));
    return v;
  }
  if (v.type != GgufType::array) {
    v.bytes = in.take(scalar_size(v.type), "value");
    if (v.type == GgufType::boolean)
      require(std::uint8_t(v.bytes[0]) <= 1, "key ", in_quotes(key), " holds the bool byte ", int(v.bytes[0]), ", not 0 or 1");
    return v;
  }
  const auto element = in.read<std::uint32_t>("array element type");
  require(is_known_type(element), "array ", in_quotes(key), " has unknown element type ", element);
  v.element_type = GgufType(element);
  require(v.element_type != GgufType::array, "array ", in_quotes(key), " holds arrays, which are not supported");
  v.count = in.read<std::uint64_t>("array length");
  if (v.element_type == GgufType::string) {
    require(v.count <= in.remaining() / 8, "array ", in_quotes(key), " claims ", v.count, " strings, more than the ",
            in.remaining(), " bytes left can hold");
    v.strings.reserve(std::size_t(v.count));
    for (std::uint64_t i = 0; i < v.count; ++i) v.strings.push_back(in.read_string("array string"));
    return v;
  }
  const std::uint64_t size = scalar_size(v.element_type);
  require(v.count <= in.remaining() / size, "array ", in_quotes(key), " claims ", v.count, " elements of ", size,
          " bytes, more than the ", in.remaining(), " bytes left");
  v.bytes = in.take(v.count * size, "array data");
  if (v.element_type == GgufType::boolean)
    for (std::uint64_t i = 0; i < v.count; ++i)
      require(std::uint8_t(v.bytes[i]) <= 1, "array ", in_quotes(key), " element ", i, " is the bool byte ",
              int(v.bytes[i]), ", not 0 or 1");
  return v;
}

std::vector<GgufTensor> read_tensor_infos(Cursor& in, std::uint64_t count, std::uint64_t alignment) {
  std::vector<GgufTensor> tensors;
  tensors.reserve(std::size_t(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    GgufTensor t;
    t.name = in.read_string("tensor name");
    in.set_context(t.name);
    const auto n_dims = in.read<std::uint32_t>("dimension count");
    require(n_dims >= 1 && n_dims <= kMaxDims, "tensor ", in_quotes(t.name), " has ", n_dims, " dimensions, expected 1 to ",
            kMaxDims);
    t.elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = in.read<std::uint64_t>("dimension");
      require(dim >= 1, "tensor ", in_quotes(t.name), " dimension ", d, " is 0");
      require(dim <= std::uint64_t(std::numeric_limits<std::int64_t>::max() / t.elements), "tensor ", in_quotes(t.name),
              " dimension ", d, " of ", dim, " makes the element count overflow");
      t.dims.push_back(std::int64_t(dim));
      t.elements *= std::int64_t(dim);
    }
    const auto type_id = in.read<std::uint32_t>("tensor type");
    const auto type = tensor_type_from_id(type_id);
    require(type.has_value(), "tensor ", in_quotes(t.name), " has type ", ggml_type_name(type_id), " (id ", type_id,
            "), which is not supported (", supported_tensor_types(), " are)");
    t.type = *type;
    t.offset = in.read<std::uint64_t>("tensor offset");
    const TensorTypeInfo info = tensor_type_info(t.type);
    require(t.dims[0] % info.block_elements == 0, "tensor ", in_quotes(t.name), " rows hold ", t.dims[0],
            " elements, not a multiple of the ", info.name, " block of ", info.block_elements);
    require(t.offset % alignment == 0, "tensor ", in_quotes(t.name), " offset ", t.offset,
            " is not a multiple of the alignment ", alignment);
    tensors.push_back(std::move(t));
    in.set_context({});
  }
  return tensors;
}

// Points each tensor at its bytes, after checking that they lie inside the
// file and apart from every other tensor's.
void locate_tensor_data(std::vector<GgufTensor>& tensors, std::span<const std::byte> bytes, std::uint64_t data_start) {
  const std::uint64_t size = bytes.size();
  for (GgufTensor& t : tensors) {
    const TensorTypeInfo info = tensor_type_info(t.type);
    // Absurd dims could make the byte count wrap: check before multiplying.
    const std::uint64_t blocks = std::uint64_t(t.elements / info.block_elements);
    require(blocks <= std::numeric_limits<std::uint64_t>::max() / std::uint64_t(info.block_bytes), "tensor '",
            t.name, "' is too large");
    const std::uint64_t nbytes = blocks * std::uint64_t(info.block_bytes);
    const bool inside = data_start <= size && t.offset <= size - data_start && nbytes <= size - data_start - t.offset;
    require(inside, "tensor ", in_quotes(t.name), " (", nbytes, " bytes at data offset ", t.offset,
            ") lies outside the file: the data section starts at byte ", data_start, " and the file has ", size,
            " bytes");
    t.data = bytes.subspan(std::size_t(data_start + t.offset), std::size_t(nbytes));
  }
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors.size());
  for (const GgufTensor& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i)
    require(by_offset[i - 1]->offset + by_offset[i - 1]->data.size() <= by_offset[i]->offset, "tensors ",
            in_quotes(by_offset[i - 1]->name), " and ", in_quotes(by_offset[i]->name), " overlap");
}

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// An integer element of any width, widened without loss.
std::variant<std::uint64_t, std::int64_t> load_integer(GgufType t, const std::byte* p) {
  switch (t) {
    case GgufType::u8: return std::uint64_t(load<std::uint8_t>(p));
    case GgufType::u16: return std::uint64_t(load<std::uint16_t>(p));
    case GgufType::u32: return std::uint64_t(load<std::uint32_t>(p));
    case GgufType::u64: return load<std::uint64_t>(p);
    case GgufType::i8: return std::int64_t(load<std::int8_t>(p));
    case GgufType::i16: return std::int64_t(load<std::int16_t>(p));
    case GgufType::i32: return std::int64_t(load<std::int32_t>(p));
    case GgufType::i64: return load<std::int64_t>(p);
    default: break;
  }
  fail("not an integer type: ", gguf_type_name(t));
}

bool is_integer(GgufType t) {
  switch (t) {
    case GgufType::u8:
    case GgufType::u16:
    case GgufType::u32:
    case GgufType::u64:
    case GgufType::i8:
    case GgufType::i16:
    case GgufType::i32:
    case GgufType::i64: return true;
    default: return false;
  }
}

bool is_float(GgufType t) { return t == GgufType::f32 || t == GgufType::f64; }

double load_float(GgufType t, const std::byte* p) {
  return t == GgufType::f32 ? double(load<float>(p)) : load<double>(p);
}

template <class T>
T narrow_integer(std::variant<std::uint64_t, std::int64_t> v, std::string_view key) {
  return std::visit(
      [&](auto x) -> T {
        require(std::in_range<T>(x), "key ", in_quotes(key), " holds ", x, ", which does not fit in a ",
                std::numeric_limits<T>::is_signed ? "signed" : "unsigned", " ", 8 * sizeof(T), "-bit integer");
        return T(x);
      },
      v);
}

std::string type_description(const GgufValue& v) {
  if (v.type != GgufType::array) return std::string(gguf_type_name(v.type));
  return concat("array of ", gguf_type_name(v.element_type));
}

[[noreturn]] void wrong_type(std::string_view key, const GgufValue& v, std::string_view expected) {
  fail("key ", in_quotes(key), " is a ", type_description(v), ", expected ", expected);
}

bool is_power_of_two(std::uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

template <class T>
T convert(const GgufValue& v, std::string_view key) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.type != GgufType::boolean) wrong_type(key, v, "bool");
    return std::uint8_t(v.bytes[0]) != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (!is_integer(v.type)) wrong_type(key, v, "an integer");
    return narrow_integer<T>(load_integer(v.type, v.bytes), key);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!is_float(v.type)) wrong_type(key, v, "a float");
    return T(load_float(v.type, v.bytes));
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    if (v.type != GgufType::string) wrong_type(key, v, "a string");
    return v.strings[0];
  } else if constexpr (std::is_same_v<T, std::vector<std::string_view>>) {
    if (v.type != GgufType::array || v.element_type != GgufType::string) wrong_type(key, v, "an array of strings");
    return v.strings;
  } else if constexpr (std::is_same_v<T, std::vector<std::int32_t>>) {
    if (v.type != GgufType::array || !is_integer(v.element_type)) wrong_type(key, v, "an array of integers");
    const std::uint64_t size = scalar_size(v.element_type);
    T out(std::size_t(v.count));
    for (std::uint64_t i = 0; i < v.count; ++i)
      out[i] = narrow_integer<std::int32_t>(load_integer(v.element_type, v.bytes + i * size), key);
    return out;
  } else {
    static_assert(std::is_same_v<T, std::vector<float>>, "unsupported GGUF getter type");
    if (v.type != GgufType::array || !is_float(v.element_type)) wrong_type(key, v, "an array of floats");
    const std::uint64_t size = scalar_size(v.element_type);
    T out(std::size_t(v.count));
    for (std::uint64_t i = 0; i < v.count; ++i) out[i] = float(load_float(v.element_type, v.bytes + i * size));
    return out;
  }
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::u8: return "u8";
    case GgufType::i8: return "i8";
    case GgufType::u16: return "u16";
    case GgufType::i16: return "i16";
    case GgufType::u32: return "u32";
    case GgufType::i32: return "i32";
    case GgufType::f32: return "f32";
    case GgufType::boolean: return "bool";
    case GgufType::string: return "string";
    case GgufType::array: return "array";
    case GgufType::u64: return "u64";
    case GgufType::i64: return "i64";
    case GgufType::f64: return "f64";
  }
  return "unknown";
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile f;
  f.name_ = path;
  f.bytes_ = f.storage_.emplace<MappedFile>(path).bytes();
  f.read_directory();
  return f;
}

GgufFile GgufFile::parse(std::vector<std::byte> bytes, std::string name) {
  GgufFile f;
  f.name_ = std::move(name);
  f.bytes_ = f.storage_.emplace<std::vector<std::byte>>(std::move(bytes));
  f.read_directory();
  return f;
}

void GgufFile::read_directory() {
  try {
    Cursor in(bytes_);
    const std::byte* magic = in.take(4, "magic");
    require(std::memcmp(magic, "GGUF", 4) == 0, "not a GGUF file (the first 4 bytes are not \"GGUF\")");
    version_ = in.read<std::uint32_t>("version");
    if (version_ != 2 && version_ != 3) {
      const bool big_endian = (version_ & 0xffffu) == 0 && (version_ >> 24) <= 3;
      fail("GGUF version ", version_, " is not supported (2 or 3 are)",
           big_endian ? "; the file looks big-endian, which is not supported" : "");
    }
    const auto tensor_count = in.read<std::uint64_t>("tensor count");
    const auto kv_count = in.read<std::uint64_t>("key/value count");
    require(kv_count <= in.remaining() / kMinKeyValueBytes, "key/value count ", kv_count,
            " cannot fit in the ", in.remaining(), " bytes left");

    keys_.reserve(std::size_t(kv_count));
    for (std::uint64_t i = 0; i < kv_count; ++i) {
      in.set_context({});
      const std::string_view key = in.read_string("key");
      require(!key.empty(), "key/value ", i, " has an empty key");
      in.set_context(key);
      GgufValue v = read_value(in, key);
      require(values_.emplace(key, std::move(v)).second, "key ", in_quotes(key), " appears twice");
      keys_.push_back(key);
    }
    in.set_context({});

    if (const GgufValue* v = find("general.alignment")) {
      alignment_ = convert<std::uint32_t>(*v, "general.alignment");
      require(is_power_of_two(alignment_), "general.alignment is ", alignment_, ", not a power of two");
    }

    require(tensor_count <= in.remaining() / kMinTensorInfoBytes, "tensor count ", tensor_count,
            " cannot fit in the ", in.remaining(), " bytes left");
    tensors_ = read_tensor_infos(in, tensor_count, alignment_);
    for (std::size_t i = 0; i < tensors_.size(); ++i)
      require(tensor_index_.emplace(tensors_[i].name, i).second, "tensor ", in_quotes(tensors_[i].name), " appears twice");
    locate_tensor_data(tensors_, bytes_, (in.position() + alignment_ - 1) / alignment_ * alignment_);
  } catch (const Error& e) {
    fail("GGUF file '", name_, "': ", e.what());
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* v = find(key);
  check(v != nullptr, "lacks the required key '", key, "'");
  return *v;
}

template <class T>
T GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  check(v != nullptr, "lacks the required key '", key, "'");
  try {
    return convert<T>(*v, key);
  } catch (const Error& e) {
    fail("GGUF file '", name_, "': ", e.what());
  }
}

template std::uint32_t GgufFile::get<std::uint32_t>(std::string_view) const;
template std::uint64_t GgufFile::get<std::uint64_t>(std::string_view) const;
template std::int32_t GgufFile::get<std::int32_t>(std::string_view) const;
template std::int64_t GgufFile::get<std::int64_t>(std::string_view) const;
template float GgufFile::get<float>(std::string_view) const;
template double GgufFile::get<double>(std::string_view) const;
template bool GgufFile::get<bool>(std::string_view) const;
template std::string_view GgufFile::get<std::string_view>(std::string_view) const;
template std::vector<std::string_view> GgufFile::get<std::vector<std::string_view>>(std::string_view) const;
template std::vector<std::int32_t> GgufFile::get<std::vector<std::int32_t>>(std::string_view) const;
template std::vector<float> GgufFile::get<std::vector<float>>(std::string_view) const;

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  check(t != nullptr, "has no tensor '", name, "'");
  return *t;
}

std::vector<float> GgufFile::dequantize(const GgufTensor& tensor) const {
  std::vector<float> out(std::size_t(tensor.elements));
  dso::dequantize(tensor.type, tensor.data, std::span<float>(out));
  return out;
}

}  // namespace dso
