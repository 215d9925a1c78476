// The GGUF reader on files built here (every value type, every tensor type,
// dequantised against a reference written from the block layouts) and on the
// real model when it is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/dtype.h"
#include "model/dequantize.h"
#include "model/gguf.h"
#include "model/llama_config.h"
#include "support/gguf_writer.h"
#include "support/smollm2.h"

namespace dso {
namespace {

using test::GgufWriter;

// Reference decodings, from the formats' definitions rather than bit tricks.
double half_to_double(std::uint16_t h) {
  const double sign = (h >> 15) ? -1.0 : 1.0;
  const int e = (h >> 10) & 31, m = h & 1023;
  if (e == 0) return sign * std::ldexp(m, -24);
  return sign * std::ldexp(1024 + m, e - 25);
}

double bf16_to_double(std::uint16_t b) {
  const double sign = (b >> 15) ? -1.0 : 1.0;
  const int e = (b >> 7) & 255, m = b & 127;
  if (e == 0) return sign * std::ldexp(m, -133);
  return sign * std::ldexp(128 + m, e - 134);
}

template <class T>
T read(const std::vector<std::byte>& data, std::size_t at) {
  T v;
  std::memcpy(&v, data.data() + at, sizeof(T));
  return v;
}

// Element i of a tensor stored as `type`, one element at a time.
double reference_element(TensorType type, const std::vector<std::byte>& data, std::size_t i) {
  const std::size_t block = i / 32, j = i % 32;
  const auto nibble = [&](std::size_t qs) {
    const auto byte = std::uint8_t(data[qs + j % 16]);
    return j < 16 ? byte & 15 : byte >> 4;
  };
  switch (type) {
    case TensorType::f32: return read<float>(data, 4 * i);
    case TensorType::f16: return half_to_double(read<std::uint16_t>(data, 2 * i));
    case TensorType::bf16: return bf16_to_double(read<std::uint16_t>(data, 2 * i));
    case TensorType::q8_0:
      return half_to_double(read<std::uint16_t>(data, 34 * block)) * read<std::int8_t>(data, 34 * block + 2 + j);
    case TensorType::q4_0:
      return half_to_double(read<std::uint16_t>(data, 18 * block)) * (nibble(18 * block + 2) - 8);
    case TensorType::q4_1:
      return half_to_double(read<std::uint16_t>(data, 20 * block)) * nibble(20 * block + 4) +
             half_to_double(read<std::uint16_t>(data, 20 * block + 2));
  }
  ADD_FAILURE() << "no reference for type " << int(type);
  return 0;
}

// A random finite 16-bit float pattern (zeros and subnormals included).
std::uint16_t random_finite_half(std::mt19937& rng) {
  for (;;) {
    const auto h = std::uint16_t(rng());
    if (((h >> 10) & 31) != 31) return h;
  }
}

// Random bytes of a tensor of `elements` values: every bit pattern a block
// can hold, with finite scales.
std::vector<std::byte> random_tensor_bytes(TensorType type, std::size_t elements, std::mt19937& rng) {
  const TensorTypeInfo info = tensor_type_info(type);
  std::vector<std::byte> out(elements / std::size_t(info.block_elements) * std::size_t(info.block_bytes));
  for (auto& b : out) b = std::byte(rng());
  const auto put_half = [&](std::size_t at, std::uint16_t h) { std::memcpy(out.data() + at, &h, 2); };
  const auto blocks = elements / std::size_t(info.block_elements);
  for (std::size_t i = 0; i < blocks; ++i) {
    const std::size_t at = i * std::size_t(info.block_bytes);
    switch (type) {
      case TensorType::f32: {
        const float f = std::normal_distribution<float>(0.0f, 3.0f)(rng);
        std::memcpy(out.data() + at, &f, 4);
        break;
      }
      case TensorType::f16: put_half(at, random_finite_half(rng)); break;
      case TensorType::bf16: {
        std::uint16_t b;
        do b = std::uint16_t(rng());
        while (((b >> 7) & 255) == 255);
        put_half(at, b);
        break;
      }
      case TensorType::q8_0:
      case TensorType::q4_0: put_half(at, random_finite_half(rng)); break;
      case TensorType::q4_1:
        put_half(at, random_finite_half(rng));
        put_half(at + 2, random_finite_half(rng));
        break;
    }
  }
  return out;
}

const TensorType kAllTypes[] = {TensorType::f32, TensorType::f16, TensorType::bf16,
                                TensorType::q8_0, TensorType::q4_0, TensorType::q4_1};

std::vector<std::int64_t> row_lengths(TensorType type) {
  if (tensor_type_info(type).block_elements == 1) return {1, 3, 13, 33};
  return {32, 96, 224};  // one block, a few, a prime number of blocks
}

TEST(Dequantize, MatchesReferenceForEveryTypeAndOutput) {
  for (unsigned seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    for (TensorType type : kAllTypes) {
      SCOPED_TRACE(std::string(tensor_type_name(type)));
      for (std::int64_t cols : row_lengths(type))
        for (std::int64_t rows : {1, 3, 7}) {
          const auto n = std::size_t(rows * cols);
          const std::vector<std::byte> data = random_tensor_bytes(type, n, rng);
          std::vector<float> f(n);
          std::vector<Half> h(n);
          std::vector<BFloat16> b(n);
          dequantize(type, data, std::span<float>(f));
          dequantize(type, data, std::span<Half>(h));
          dequantize(type, data, std::span<BFloat16>(b));
          for (std::size_t i = 0; i < n; ++i) {
            const auto ref = float(reference_element(type, data, i));
            ASSERT_EQ(f[i], ref) << "element " << i << " of " << rows << "x" << cols;
            ASSERT_EQ(h[i].bits, from_float<Half>(ref).bits) << "element " << i;
            ASSERT_EQ(b[i].bits, from_float<BFloat16>(ref).bits) << "element " << i;
          }
        }
    }
  }
}

TEST(Dequantize, RefusesSizesThatAreNotWholeBlocks) {
  std::vector<std::byte> bytes(40);
  std::vector<float> out(33);
  EXPECT_THROW(dequantize(TensorType::q4_1, std::span<const std::byte>(bytes.data(), 40), std::span<float>(out)),
               Error);
  EXPECT_THROW(dequantize(TensorType::q4_1, std::span<const std::byte>(bytes.data(), 21), std::span<float>(out.data(), 32)),
               Error);
  EXPECT_THROW(dequantize(TensorType::f16, std::span<const std::byte>(bytes.data(), 8), std::span<float>(out.data(), 3)),
               Error);
}

// Stored bits at `at` of a zeroed buffer of `size` bytes.
template <class Bits>
std::vector<std::byte> with_bits(std::size_t size, std::size_t at, Bits bits) {
  std::vector<std::byte> bytes(size);
  std::memcpy(bytes.data() + at, &bits, sizeof bits);
  return bytes;
}

TEST(Dequantize, FindsTheFirstNonFiniteValueOrBlockScale) {
  const auto first = [](TensorType type, const std::vector<std::byte>& bytes) { return first_nonfinite(type, bytes); };
  constexpr std::uint32_t f32_nan = 0x7fc00000u, f32_inf = 0xff800000u;
  constexpr std::uint16_t f16_inf = 0x7c00u, f16_nan = 0x7e00u, bf16_nan = 0x7fc0u;
  // Plain types: the element itself, in the first chunk of the scan and past it.
  EXPECT_EQ(first(TensorType::f32, with_bits(4 * 10, 4 * 7, f32_nan)), 7);
  EXPECT_EQ(first(TensorType::f32, with_bits(4 * 9000, 4 * 5000, f32_inf)), 5000);
  EXPECT_EQ(first(TensorType::f16, with_bits(2 * 10, 2 * 3, f16_inf)), 3);
  EXPECT_EQ(first(TensorType::bf16, with_bits(2 * 10, 2 * 2, bf16_nan)), 2);
  // The largest finite values are finite.
  EXPECT_EQ(first(TensorType::f32, with_bits(4 * 10, 4 * 7, std::uint32_t(0x7f7fffffu))), std::nullopt);
  EXPECT_EQ(first(TensorType::f16, with_bits(2 * 10, 2 * 3, std::uint16_t(0x7bffu))), std::nullopt);
  // Quantised types: the scale (and q4_1's minimum) of a block; its first element is named.
  EXPECT_EQ(first(TensorType::q8_0, with_bits(34 * 3, 34 * 2, f16_nan)), 64);
  EXPECT_EQ(first(TensorType::q4_0, with_bits(18 * 3, 18 * 1, f16_inf)), 32);
  EXPECT_EQ(first(TensorType::q4_1, with_bits(20 * 3, 20 * 2, f16_inf)), 64);
  EXPECT_EQ(first(TensorType::q4_1, with_bits(20 * 3, 20 * 1 + 2, f16_nan)), 32);
  // Quantised codes are no floats: bits that would spell NaN there are ordinary codes.
  EXPECT_EQ(first(TensorType::q8_0, with_bits(34 * 3, 34 * 1 + 2, f16_nan)), std::nullopt);
  EXPECT_EQ(first(TensorType::q4_1, with_bits(20 * 3, 20 * 1 + 4, f16_nan)), std::nullopt);
}

TEST(GgufFile, TensorsOfEveryTypeReadBackThroughTheDirectory) {
  for (unsigned seed : {4u, 5u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    for (std::uint32_t alignment : {32u, 64u, 8u}) {
      SCOPED_TRACE("alignment " + std::to_string(alignment));
      GgufWriter w;
      if (alignment != 32) w.set_alignment(alignment);
      struct Expected {
        std::string name;
        TensorType type;
        std::vector<std::int64_t> dims;
        std::vector<std::byte> data;
      };
      std::vector<Expected> expected;
      for (TensorType type : kAllTypes)
        for (std::int64_t cols : row_lengths(type)) {
          const std::vector<std::int64_t> dims = cols % 2 ? std::vector<std::int64_t>{cols, 3, 2}
                                                          : std::vector<std::int64_t>{cols, 5};
          std::int64_t n = 1;
          for (auto d : dims) n *= d;
          const std::string name = concat(tensor_type_name(type), ".", cols);
          expected.push_back({name, type, dims, random_tensor_bytes(type, std::size_t(n), rng)});
          w.tensor(name, dims, type, expected.back().data);
        }
      const GgufFile f = GgufFile::parse(w.build(), "every-type.gguf");
      EXPECT_EQ(f.alignment(), alignment);
      ASSERT_EQ(f.tensors().size(), expected.size());
      for (const Expected& e : expected) {
        SCOPED_TRACE(e.name);
        const GgufTensor& t = f.tensor(e.name);
        EXPECT_EQ(t.type, e.type);
        EXPECT_EQ(t.dims, e.dims);
        EXPECT_EQ(t.offset % alignment, 0u);
        EXPECT_EQ(std::uintptr_t(t.data.data() - f.bytes().data()) % alignment, 0u);
        ASSERT_EQ(t.data.size(), e.data.size());
        EXPECT_EQ(std::memcmp(t.data.data(), e.data.data(), e.data.size()), 0);
        const std::vector<float> values = f.dequantize(t);
        ASSERT_EQ(values.size(), std::size_t(t.elements));
        EXPECT_EQ(t.rows() * t.row_length(), t.elements);
        for (std::size_t i = 0; i < values.size(); ++i)
          ASSERT_EQ(values[i], float(reference_element(e.type, e.data, i))) << "element " << i;
      }
      EXPECT_EQ(f.find_tensor("absent"), nullptr);
      EXPECT_THROW(f.tensor("absent"), Error);
    }
  }
}

TEST(GgufFile, MetadataOfEveryTypeReadsBackAndConverts) {
  for (unsigned seed : {6u, 7u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const auto u8 = std::uint8_t(rng());
    const auto u16 = std::uint16_t(rng());
    const auto i8 = std::int8_t(-1 - int(rng() % 100));
    const auto i16 = std::int16_t(-int(rng() % 30000));
    const auto u32 = std::uint32_t(rng() | 0x80000000u);
    const auto i32 = std::int32_t(rng());
    const std::uint64_t u64 = (std::uint64_t(rng()) << 32 | rng()) | (1ull << 40);
    const std::int64_t i64 = -(std::int64_t(rng()) << 8) - (std::int64_t(1) << 32);
    const float f32 = std::normal_distribution<float>()(rng);
    const double f64 = std::normal_distribution<double>()(rng);
    std::vector<std::int32_t> ints(rng() % 20);
    for (auto& x : ints) x = std::int32_t(rng());
    std::vector<std::uint8_t> bytes(1 + rng() % 20);
    for (auto& x : bytes) x = std::uint8_t(rng());
    std::vector<double> doubles(rng() % 10);
    for (auto& x : doubles) x = std::normal_distribution<double>()(rng);
    const std::vector<std::string> words = {"", "a", "\xe2\x96\x81word", std::string("nul\0inside", 10)};

    GgufWriter w;
    w.set_version(seed == 6 ? 3 : 2);
    w.scalar("u8", u8);
    w.scalar("i8", i8);
    w.scalar("u16", u16);
    w.scalar("i16", i16);
    w.scalar("u32", u32);
    w.scalar("i32", i32);
    w.scalar("u64", u64);
    w.scalar("i64", i64);
    w.scalar("f32", f32);
    w.scalar("f64", f64);
    w.scalar("yes", true);
    w.scalar("no", false);
    w.string("name", "Smol \xf0\x9f\x90\xad");
    w.array("ints", ints);
    w.array("bytes", bytes);
    w.array("doubles", doubles);
    w.array("bools", std::vector<bool>{true, false});
    w.strings("words", words);
    w.strings("nothing", {});
    const GgufFile f = GgufFile::parse(w.build(), "metadata.gguf");

    EXPECT_EQ(f.version(), seed == 6 ? 3u : 2u);
    const std::vector<std::string_view> keys = {"u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64",
                                                "yes", "no", "name", "ints", "bytes", "doubles", "bools", "words",
                                                "nothing"};
    EXPECT_EQ(f.keys(), keys);
    EXPECT_EQ(f.get<std::uint32_t>("u8"), u8);
    EXPECT_EQ(f.get<std::int32_t>("i8"), i8);
    EXPECT_EQ(f.get<std::int64_t>("u16"), u16);
    EXPECT_EQ(f.get<std::int32_t>("i16"), i16);
    EXPECT_EQ(f.get<std::uint32_t>("u32"), u32);
    EXPECT_EQ(f.get<std::uint64_t>("u32"), u32);
    EXPECT_EQ(f.get<std::int32_t>("i32"), i32);
    EXPECT_EQ(f.get<std::uint64_t>("u64"), u64);
    EXPECT_EQ(f.get<std::int64_t>("i64"), i64);
    EXPECT_EQ(f.get<float>("f32"), f32);
    EXPECT_EQ(f.get<double>("f32"), double(f32));
    EXPECT_EQ(f.get<double>("f64"), f64);
    EXPECT_EQ(f.get<float>("f64"), float(f64));
    EXPECT_TRUE(f.get<bool>("yes"));
    EXPECT_FALSE(f.get<bool>("no"));
    EXPECT_EQ(f.get<std::string_view>("name"), "Smol \xf0\x9f\x90\xad");
    EXPECT_EQ(f.get<std::vector<std::int32_t>>("ints"), ints);
    const auto read_bytes = f.get<std::vector<std::int32_t>>("bytes");
    EXPECT_EQ(std::vector<std::int32_t>(bytes.begin(), bytes.end()), read_bytes);
    const auto read_doubles = f.get<std::vector<float>>("doubles");
    ASSERT_EQ(read_doubles.size(), doubles.size());
    for (std::size_t i = 0; i < doubles.size(); ++i) EXPECT_EQ(read_doubles[i], float(doubles[i]));
    const auto read_words = f.get<std::vector<std::string_view>>("words");
    EXPECT_EQ(std::vector<std::string>(read_words.begin(), read_words.end()), words);
    EXPECT_TRUE(f.get<std::vector<std::string_view>>("nothing").empty());
    EXPECT_EQ(f.value("bools").element_type, GgufType::boolean);
    EXPECT_EQ(f.value("bools").count, 2u);

    // Values that do not fit, and types that do not match, are refused by name.
    const auto message = [&](auto&& get) -> std::string {
      try {
        get();
      } catch (const Error& e) {
        return e.what();
      }
      return "no error";
    };
    EXPECT_NE(message([&] { f.get<std::uint32_t>("i8"); }).find("'i8'"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::uint32_t>("u64"); }).find("does not fit"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::int32_t>("u32"); }).find("'u32'"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::int32_t>("i64"); }).find("does not fit"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::string_view>("u8"); }).find("expected a string"), std::string::npos);
    EXPECT_NE(message([&] { f.get<float>("i32"); }).find("expected a float"), std::string::npos);
    EXPECT_NE(message([&] { f.get<bool>("u8"); }).find("expected bool"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::vector<std::int32_t>>("bools"); }).find("array of bool"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::vector<float>>("ints"); }).find("array of i32"), std::string::npos);
    EXPECT_NE(message([&] { f.get<std::vector<std::string_view>>("name"); }).find("'name'"), std::string::npos);
    const std::string missing = message([&] { f.get<std::uint32_t>("llama.block_count"); });
    EXPECT_NE(missing.find("metadata.gguf"), std::string::npos) << missing;
    EXPECT_NE(missing.find("'llama.block_count'"), std::string::npos) << missing;
    EXPECT_EQ(f.get_or<std::uint32_t>("llama.block_count", 7u), 7u);
    EXPECT_EQ(f.get_or<std::uint32_t>("u32", 7u), u32);
    EXPECT_FALSE(f.has("llama.block_count"));
    EXPECT_EQ(f.find("llama.block_count"), nullptr);
  }
}

TEST(GgufFile, OpensThroughAMappingAndRefusesWhatIsNotAFile) {
  std::mt19937 rng(8);
  GgufWriter w;
  w.string("general.architecture", "llama");
  const std::vector<std::byte> q41 = random_tensor_bytes(TensorType::q4_1, 64, rng);
  w.tensor("w", {32, 2}, TensorType::q4_1, q41);
  const std::vector<std::byte> bytes = w.build();

  const auto dir = std::filesystem::temp_directory_path() / ("dso_gguf_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "small.gguf").string();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));

  GgufFile f = GgufFile::open(path);
  GgufFile moved = std::move(f);  // the views survive a move
  EXPECT_EQ(moved.name(), path);
  EXPECT_EQ(moved.get<std::string_view>("general.architecture"), "llama");
  const std::vector<float> values = moved.dequantize(moved.tensor("w"));
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], float(reference_element(TensorType::q4_1, q41, i)));

  const auto message = [](const std::string& p) -> std::string {
    try {
      GgufFile::open(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message((dir / "absent.gguf").string()).find("absent.gguf"), std::string::npos);
  EXPECT_NE(message(dir.string()).find("not a regular file"), std::string::npos);
  std::ofstream((dir / "empty.gguf").string(), std::ios::binary).flush();
  EXPECT_NE(message((dir / "empty.gguf").string()).find("empty"), std::string::npos);
  std::filesystem::remove_all(dir);
}

class SmolLM2Gguf : public test::SmolLM2File {};

TEST_F(SmolLM2Gguf, ConfigIsSmolLM2s) {
  const LlamaConfig c = llama_config_from_gguf(file());
  EXPECT_EQ(c.layers, 30);
  EXPECT_EQ(c.q_heads, 9);
  EXPECT_EQ(c.kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.hidden, 576);
  EXPECT_EQ(c.ffn_hidden, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rms_eps, 1e-5f);
}

// The names and shapes the decoder loads: embeddings tied (no output.weight).
TEST_F(SmolLM2Gguf, TensorDirectoryHasEveryLayerWithItsShape) {
  const LlamaConfig c = llama_config_from_gguf(file());
  const std::int64_t h = c.hidden, kv = std::int64_t(c.kv_heads) * c.head_dim, ffn = c.ffn_hidden;
  using Dims = std::vector<std::int64_t>;
  EXPECT_EQ(file().tensor("token_embd.weight").dims, (Dims{h, c.vocab_size}));
  EXPECT_EQ(file().tensor("output_norm.weight").dims, (Dims{h}));
  EXPECT_EQ(file().find_tensor("output.weight"), nullptr);
  const std::vector<std::pair<std::string, Dims>> per_layer = {
      {"attn_norm", {h}},         {"attn_q", {h, h}},          {"attn_k", {h, kv}},
      {"attn_v", {h, kv}},        {"attn_output", {h, h}},     {"ffn_norm", {h}},
      {"ffn_gate", {h, ffn}},     {"ffn_up", {h, ffn}},        {"ffn_down", {ffn, h}}};
  for (int l = 0; l < c.layers; ++l)
    for (const auto& [name, dims] : per_layer) {
      const GgufTensor& t = file().tensor(concat("blk.", l, ".", name, ".weight"));
      EXPECT_EQ(t.dims, dims) << t.name;
      EXPECT_EQ(t.type, dims.size() == 1 ? TensorType::f32 : TensorType::q4_1) << t.name;
    }
  EXPECT_EQ(file().tensors().size(), 2 + per_layer.size() * std::size_t(c.layers));
}

TEST_F(SmolLM2Gguf, DequantisedTensorsAreFiniteWithSaneStatistics) {
  for (const GgufTensor& t : file().tensors()) {
    const std::vector<float> v = file().dequantize(t);
    double sum = 0, sum_sq = 0, max_abs = 0;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x)) << t.name;
      sum += x;
      sum_sq += double(x) * x;
      max_abs = std::max(max_abs, double(std::fabs(x)));
    }
    const double mean = sum / double(v.size());
    const double std_dev = std::sqrt(std::max(0.0, sum_sq / double(v.size()) - mean * mean));
    EXPECT_GT(std_dev, 1e-3) << t.name << " is nearly constant";
    EXPECT_LT(max_abs, 100.0) << t.name;
    if (t.dims.size() == 2) {  // projection matrices: centred, of moderate spread
      EXPECT_LT(std::fabs(mean), 0.05) << t.name;
      EXPECT_LT(std_dev, 2.0) << t.name;
    }
  }
}

}  // namespace
}  // namespace dso
