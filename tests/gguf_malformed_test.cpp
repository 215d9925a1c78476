// Malformed GGUF files: truncated anywhere, or with one header field made
// wrong, each must end in a dso::Error that says what is wrong, never in a
// crash, a read past the bytes, or a huge allocation.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "model/gguf.h"
#include "support/gguf_writer.h"

namespace dso {
namespace {

using test::GgufWriter;

// A small file with a value of most kinds and three tensors; kv indices and
// tensor indices below refer to it.
GgufWriter small_file() {
  GgufWriter w;
  w.string("general.architecture", "llama");           // kv0
  w.scalar<std::uint32_t>("llama.block_count", 2);      // kv1
  w.scalar<float>("llama.rope.freq_base", 10000.0f);    // kv2
  w.scalar<bool>("tokenizer.ggml.add_bos_token", true); // kv3
  w.strings("tokenizer.ggml.tokens", {"a", "bc", ""});  // kv4
  w.array<std::int32_t>("tokenizer.ggml.token_type", {1, 1, 3});  // kv5
  std::vector<std::byte> f32(3 * 4, std::byte{0x3f});
  std::vector<std::byte> q41(2 * 20, std::byte{0x11});
  std::vector<std::byte> f16(5 * 2, std::byte{0x3c});
  w.tensor("norm", {3}, TensorType::f32, f32);          // tensor0
  w.tensor("proj", {32, 2}, TensorType::q4_1, q41);     // tensor1
  w.tensor("bias", {5}, TensorType::f16, f16);          // tensor2
  return w;
}

std::string parse_error(std::vector<std::byte> bytes) {
  try {
    const GgufFile f = GgufFile::parse(std::move(bytes), "bad.gguf");
    for (const GgufTensor& t : f.tensors()) f.dequantize(t);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <class T>
void poke(std::vector<std::byte>& bytes, std::size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

TEST(GgufMalformed, EveryTruncationIsRefused) {
  std::vector<std::byte> full = small_file().build();
  ASSERT_EQ(parse_error(full), "");
  for (std::size_t length = 0; length < full.size(); ++length) {
    // An exact-size heap copy, so that a read past the end is a sanitizer error.
    const std::string message = parse_error(std::vector<std::byte>(full.begin(), full.begin() + std::ptrdiff_t(length)));
    ASSERT_NE(message, "") << "a file cut to " << length << " of " << full.size() << " bytes was accepted";
    ASSERT_NE(message.find("bad.gguf"), std::string::npos) << message;
  }
}

TEST(GgufMalformed, TruncatedFilesOnDiskAreRefused) {
  const std::vector<std::byte> full = small_file().build();
  const auto dir = std::filesystem::temp_directory_path() / ("dso_gguf_malformed_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "cut.gguf").string();
  for (std::size_t length = 0; length < full.size(); length += 13) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(full.data()), std::streamsize(length));
    EXPECT_THROW(GgufFile::open(path), Error) << "cut to " << length << " bytes";
  }
  std::filesystem::remove_all(dir);
}

struct Corruption {
  std::string field;      // as GgufWriter::at names it
  int width;              // 4 or 8 bytes
  std::uint64_t value;
  std::string expect;     // a piece of the message
};

TEST(GgufMalformed, CorruptHeaderFieldsAreRefusedByName) {
  constexpr std::uint64_t huge = std::uint64_t(1) << 62;
  constexpr std::uint64_t all_ones = std::numeric_limits<std::uint64_t>::max();
  const std::vector<Corruption> cases = {
      {"magic", 4, 0x47554747u, "not a GGUF file"},  // "GGUG"
      {"version", 4, 1, "version 1"},
      {"version", 4, 4, "version 4"},
      {"version", 4, 0x03000000u, "big-endian"},
      {"tensor_count", 8, huge, "tensor count"},
      {"tensor_count", 8, all_ones, "tensor count"},
      {"tensor_count", 8, 4, "bad.gguf"},  // tensor data read as a fourth tensor info
      {"kv_count", 8, huge, "key/value count"},
      {"kv_count", 8, 0, "dimensions"},  // the first key/value read as a tensor info
      {"kv0.key", 8, huge, "string length"},
      {"kv0.key", 8, all_ones, "string length"},
      {"kv0.key", 8, 0, "empty key"},
      {"kv0.type", 4, 13, "unknown value type 13"},
      {"kv0.value", 8, huge, "string length"},
      {"kv3.value", 4, 0x02, "bool"},
      {"kv4.element_type", 4, 9, "holds arrays"},
      {"kv4.element_type", 4, 99, "unknown element type 99"},
      {"kv4.count", 8, huge, "claims"},
      {"kv4.count", 8, all_ones, "claims"},
      {"kv4.first", 8, huge, "string length"},
      {"kv5.count", 8, huge, "claims"},
      {"kv5.count", 8, 3 + 1000, "claims"},
      {"tensor0.name", 8, huge, "string length"},
      {"tensor0.n_dims", 4, 0, "0 dimensions"},
      {"tensor0.n_dims", 4, 5, "5 dimensions"},
      {"tensor0.dim0", 8, 0, "dimension 0 is 0"},
      {"tensor0.dim0", 8, all_ones, "overflow"},
      {"tensor0.dim0", 8, 4096, "outside the file"},
      {"tensor1.dim1", 8, huge, "overflow"},
      {"tensor1.dim0", 8, 48, "block"},
      {"tensor1.type", 4, 12, "Q4_K"},
      {"tensor1.type", 4, 4, "unknown"},
      {"tensor1.type", 4, 999, "id 999"},
      {"tensor1.offset", 8, 1, "alignment"},
      {"tensor1.offset", 8, std::uint64_t(1) << 40, "outside the file"},
      {"tensor1.offset", 8, all_ones - 31, "outside the file"},
      {"tensor1.offset", 8, 0, "overlap"},
      {"tensor2.type", 4, 0, "outside the file"},  // F32 needs twice the bytes of F16
  };
  GgufWriter w = small_file();
  const std::vector<std::byte> good = w.build();
  for (const Corruption& c : cases) {
    SCOPED_TRACE(c.field + " = " + std::to_string(c.value));
    std::vector<std::byte> bytes = good;
    if (c.width == 4) poke(bytes, w.at(c.field), std::uint32_t(c.value));
    else poke(bytes, w.at(c.field), c.value);
    const std::string message = parse_error(std::move(bytes));
    ASSERT_NE(message, "") << "accepted";
    EXPECT_NE(message.find(c.expect), std::string::npos) << message;
  }
}

TEST(GgufMalformed, InconsistentDirectoriesAreRefused) {
  const auto refused = [](GgufWriter w, const std::string& expect) {
    const std::string message = parse_error(w.build());
    EXPECT_NE(message.find(expect), std::string::npos) << "expected '" << expect << "' in: " << message;
  };
  GgufWriter dup_key = small_file();
  dup_key.scalar<std::uint32_t>("llama.block_count", 3);
  refused(dup_key, "appears twice");

  GgufWriter dup_tensor = small_file();
  dup_tensor.tensor("norm", {3}, TensorType::f32, std::vector<std::byte>(12));
  refused(dup_tensor, "appears twice");

  for (std::uint32_t alignment : {0u, 3u, 48u}) {
    GgufWriter w = small_file();
    w.scalar<std::uint32_t>("general.alignment", alignment);
    refused(w, "power of two");
  }
  GgufWriter wrong_type = small_file();
  wrong_type.string("general.alignment", "32");
  refused(wrong_type, "general.alignment");
}

// Random damage to the directory: whatever it does, the reader either
// accepts a consistent file or throws dso::Error.
TEST(GgufMalformed, RandomDamageNeverEscapesAsAnythingButError) {
  GgufWriter w = small_file();
  const std::vector<std::byte> good = w.build();
  const std::size_t directory = w.at("data");
  for (unsigned seed : {11u, 12u, 13u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    int refused = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      std::vector<std::byte> bytes = good;
      const int hits = 1 + int(rng() % 4);
      for (int i = 0; i < hits; ++i) bytes[rng() % directory] = std::byte(rng());
      if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
      try {
        const GgufFile f = GgufFile::parse(std::move(bytes), "fuzz.gguf");
        for (const GgufTensor& t : f.tensors()) {
          ASSERT_GE(t.data.data(), f.bytes().data());
          ASSERT_LE(t.data.data() + t.data.size(), f.bytes().data() + f.bytes().size());
          f.dequantize(t);
        }
      } catch (const Error&) {
        ++refused;
      }
    }
    EXPECT_GT(refused, 0);
  }
}

}  // namespace
}  // namespace dso
