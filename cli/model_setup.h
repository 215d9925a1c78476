#pragma once
// What the commands that run whole decode steps of a named model over a long
// context share (bench's model mode, soak): the weights that --model or
// --shape name, the engine configuration of the options, and the fill of a
// decoder's context before the measured steps.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench_options.h"
#include "cli/device_synthetic_tensors.h"
#include "cli/progress_bar.h"
#include "cli/synthetic_tensors.h"
#include "model/decoder.h"
#include "model/gguf.h"
#include "model/prefix_recorder.h"
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
// A prefill shows its progress, and where `fills` says that more than one
// decoder is to be filled (bench: one per policy), the first prefill's K/V is
// recorded, where host memory has room for it, and replayed into the others
// instead of running the model again.
class ContextFill {
 public:
  ContextFill(const WeightSource& weights, const EngineConfig& engine, int r, std::uint64_t seed,
              std::int64_t context, int fills = 1);
  // The observer calls back into this object.
  ContextFill(const ContextFill&) = delete;
  ContextFill& operator=(const ContextFill&) = delete;

  bool synthetic() const { return synthetic_.has_value(); }
  const LabelChannels& channels() const { return channels_; }

  // For DecoderOptions::prefill_observer of every decoder this fills: the
  // prefill's progress, and its record.
  PrefillObserver observer();

  // `run` names the run for the message of an interrupt. Returns what the
  // fill was: "synthetic", "prefill" or "replayed prefill".
  std::string fill(Decoder& decoder, const std::string& run);

 private:
  void prefill(Decoder& decoder);

  std::int64_t context_;
  std::uint64_t seed_;
  int fills_;
  std::optional<SyntheticTensors> synthetic_;
  std::optional<DeviceSyntheticTensors> device_synthetic_;  // made on the first cuda fill, kept for the next
  LabelChannels channels_;
  std::optional<PrefixRecorder> recorder_;  // during a prefill that is recorded
  std::vector<CachedPrefix> prefixes_;      // per sequence, once recorded
  std::optional<ProgressBar> progress_;     // during a prefill
  std::int64_t progress_done_ = 0;
  std::int64_t progress_planned_ = 0;
};

}  // namespace dso::cli
