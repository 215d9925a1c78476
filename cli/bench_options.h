#pragma once
// The options of `dsoffload bench`, shared by its two modes: whole decode
// steps of a Llama model (the default on a GPU) and the attention engine
// alone over a synthetic cache (--attention-only, and the default without a GPU).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "offload/engine.h"

namespace dso::cli {

struct BenchOptions {
  std::string backend = "auto";
  std::vector<std::string> policies;  // empty: the mode's default
  std::string shape;                  // empty: the mode's default
  std::string model;                  // a GGUF file: real weights
  bool attention_only = false;
  std::string dtype = "f16";
  std::string context;  // "128K", "4096"; empty: the mode's default
  int batch = 1;
  int steps = 20;
  int warmup = 3;
  std::int64_t k = 0;
  double k_fraction = 1.0 / 16;
  int r = 0;  // 0: head_dim / 16
  std::int64_t sink = 0;
  std::int64_t recent = 0;
  std::uint64_t seed = 1;
  bool phases = false;  // cuda: phase times from CUDA events
  int threads = 0;      // of the model mode's cpu backend; 0: the cores available
};

// The contiguous copy the PCIe rate is measured with: long enough to reach
// the link's steady rate.
constexpr std::int64_t kPcieProbeBytes = std::int64_t(1) << 30;
constexpr int kPcieProbeRepeats = 7;

// The options of the tokens selected and the numbers made, as every command
// that runs a model over a synthetic context takes them: --dtype, --k,
// --k-fraction, --r, --sink, --recent, --seed.
void add_selection_options(CLI::App& sub, BenchOptions& o);

// "16384", "16K" (x1024), "1M" (x1024^2); throws dso::Error naming `option`
// (where not empty) otherwise.
std::int64_t parse_token_count(const std::string& text, std::string_view option = "--context");

// Makes an integer option (or each item of a list) take a token count as
// --context does: "2K" becomes 2048 before CLI11 reads it, and anything else
// is refused by parse_token_count.
CLI::Option* takes_token_count(CLI::Option* option);

// The counts every bench mode takes, each refused with its own message; the
// context plus every step must fit a sequence's capacity.
void check_counts(const BenchOptions& o, std::int64_t context);

// Every policy holds the whole K/V cache of `config` somewhere, in host or GPU
// memory: refused where both together could not, before the tables that grow
// with the shape (label channels, synthetic tensors) are made, so that an
// absurd shape costs no allocation. Each policy's own check follows later.
void check_cache_could_fit(const EngineConfig& config);

}  // namespace dso::cli
