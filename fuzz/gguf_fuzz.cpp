// GGUF files from arbitrary bytes, read the way a run reads a model: the
// directory, every metadata value by its own type, the Llama
// hyper-parameters, the tokenizer (with a short encode/decode) and the
// tensors' values. Each step ends in success or a dso::Error.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/gguf.h"
#include "model/llama_config.h"
#include "model/tokenizer.h"

namespace {

// Dequantizing is linear in the elements: cap it so that one input stays fast.
constexpr std::int64_t kMaxElements = std::int64_t(1) << 20;

template <class Step>
void attempt(Step&& step) {
  try {
    step();
  } catch (const dso::Error&) {
  }
}

void read_value(const dso::GgufFile& file, std::string_view key) {
  const dso::GgufValue& v = file.value(key);
  using dso::GgufType;
  switch (v.type) {
    case GgufType::string: file.get<std::string_view>(key); break;
    case GgufType::boolean: file.get<bool>(key); break;
    case GgufType::f32:
    case GgufType::f64: file.get<double>(key); break;
    case GgufType::array:
      if (v.element_type == GgufType::string) file.get<std::vector<std::string_view>>(key);
      else if (v.element_type == GgufType::f32 || v.element_type == GgufType::f64) file.get<std::vector<float>>(key);
      else attempt([&] { file.get<std::vector<std::int32_t>>(key); });
      break;
    default: attempt([&] { file.get<std::int64_t>(key); }); attempt([&] { file.get<std::uint64_t>(key); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(size);
  if (size) std::memcpy(bytes.data(), data, size);
  try {
    const dso::GgufFile file = dso::GgufFile::parse(std::move(bytes), "fuzz.gguf");
    for (std::string_view key : file.keys()) read_value(file, key);
    attempt([&] { dso::llama_config_from_gguf(file); });
    attempt([&] {
      const dso::Tokenizer tokenizer = dso::Tokenizer::from_gguf(file);
      for (const char* text : {"Hello world", " a\n\tb  <|im_start|>\xc3\xa9\xff"}) {
        const std::vector<dso::TokenId> ids = tokenizer.encode(text, {true, true});
        tokenizer.decode(ids);
      }
    });
    std::int64_t elements = 0;
    for (const dso::GgufTensor& t : file.tensors()) {
      if ((elements += t.elements) > kMaxElements) break;
      file.dequantize(t);
    }
  } catch (const dso::Error&) {
  }
  return 0;
}
