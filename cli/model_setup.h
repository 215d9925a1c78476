#pragma once
// What the commands that run whole decode steps of a named model over a long
// context share (bench's model mode, soak): the weights that --model or
// --shape name, the engine configuration of the options, and the fill of a
// decoder's context before the measured steps.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cli/bench_options.h"
#include "cli/device_synthetic_tensors.h"
#include "cli/synthetic_tensors.h"
#include "model/decoder.h"
#include "model/gguf.h"
#include "model/weight_source.h"

namespace dso::cli {

// The Llama shapes known by name: llama-2-7b, llama-3-8b, smollm2-135m (dummy weights).
bool is_model_shape(const std::string& name);

struct NamedWeights {
  std::unique_ptr<GgufFile> file;  // real weights are read from it while it is open
  std::unique_ptr<WeightSource> weights;
  std::string name;  // the shape's, or the GGUF file's model name (its path where it has none)
};

// --model FILE.gguf (real weights), or --shape (default llama-3-8b) with dummy weights.
NamedWeights load_named_weights(const BenchOptions& o);

// Label channels per KV head: --r, or head_dim / 16.
int label_count(const BenchOptions& o, const LlamaConfig& model);

// The engine of the options (dtype, batch, budget) for the model's shape; the
// policy and label channels are left to the caller.
EngineConfig model_engine_config(const BenchOptions& o, const LlamaConfig& model, bool cuda, std::int64_t capacity);

// Fills every sequence of a decoder with `context` tokens: synthetic K/V (the
// same numbers on either backend) where the weights are dummy, with label
// channels calibrated on them; a prefill of seeded random tokens through the
// model otherwise, whose labels are the leading channels (no calibration runs).
class ContextFill {
 public:
  ContextFill(const WeightSource& weights, const EngineConfig& engine, int r, std::uint64_t seed,
              std::int64_t context);

  bool synthetic() const { return synthetic_.has_value(); }
  const LabelChannels& channels() const { return channels_; }

  // `run` names the run for the message of an interrupt.
  void fill(Decoder& decoder, const std::string& run);

 private:
  std::int64_t context_;
  std::uint64_t seed_;
  std::optional<SyntheticTensors> synthetic_;
  std::optional<DeviceSyntheticTensors> device_synthetic_;  // made on the first cuda fill, kept for the next
  LabelChannels channels_;
};

}  // namespace dso::cli
