#pragma once
// What the model-running subcommands (generate, perplexity) share: the
// --model argument (a GGUF file, or a built-in shape with dummy weights), the
// backend, dtype and token-selection options, and the label channels they
// imply.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/decoder.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "model/weight_source.h"

namespace dso::cli {

struct ModelOptions {
  std::string model;
  std::string backend;  // empty: cuda where a GPU is visible, else cpu
  std::string dtype = "f16";
  std::string channels;  // a channel config file; without one, sparse policies use channels 0..r-1
  std::string statistic = "qk";
  int r = 0;  // 0: head_dim / 16
  std::int64_t k = 0;
  double k_fraction = 1.0 / 16;
  std::int64_t sink = 0;
  std::int64_t recent = 0;
  std::uint64_t seed = 1;  // of dummy weights
  std::int64_t prefill_chunk = 256;
  int threads = 0;  // 0: the cores available

  void add_to(CLI::App& sub);
};

// A GGUF file with its tokenizer, or a built-in shape with dummy weights and
// no tokenizer (text is read as bytes, one token per byte).
struct LoadedModel {
  std::string name;
  std::unique_ptr<GgufFile> file;
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<WeightSource> weights;

  const LlamaConfig& config() const { return weights->config(); }
  bool dummy() const { return weights->is_dummy(); }
  // Whether the vocabulary has ChatML's turn tokens, as SmolLM2-Instruct's does.
  bool has_chatml() const;
  std::vector<std::int32_t> encode(const std::string& text, bool parse_special) const;
  // The text of one token: its bytes, or " <id>" without a tokenizer.
  std::string piece(std::int32_t token) const;
};

LoadedModel load_model(const ModelOptions& o);

// The whole of a text file; throws dso::Error naming it where it cannot be
// read, is not a regular file, or holds more than kMaxTextBytes: far more
// than any run tokenizes, and small enough to hold in memory.
inline constexpr std::int64_t kMaxTextBytes = std::int64_t(256) << 20;
std::string read_text_file(const std::string& path);

// Decoder options for one policy: engine shape from the model, budget and
// label channels from the options (sparse policies only).
DecoderOptions decoder_options(const ModelOptions& o, const LoadedModel& m, Policy policy, int batch,
                               std::int64_t capacity);

// Fields every output line of these subcommands carries: weights (real or
// dummy), model, policy, backend, device, dtype, threads, k, r, sink, recent, labels,
// and the run's record (put_run_info).
// k is the budget at `context` tokens; k and r are null for dense policies.
nlohmann::ordered_json run_fields(const ModelOptions& o, const LoadedModel& m, const DecoderOptions& d,
                                  std::int64_t context);

}  // namespace dso::cli
