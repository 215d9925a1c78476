#include "cli/model_setup.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "cli/bench_steps.h"
#include "core/error.h"
#include "gpu/memory.h"
#include "model/dummy_weights.h"
#include "model/gguf_weights.h"
#include "model/llama_config.h"
#include "offload/available_memory.h"
#include "offload/format_bytes.h"

namespace dso::cli {

namespace {

// SmolLM2-135M's hyper-parameters, for dummy runs of the small real model's shape.
LlamaConfig smollm2_config() {
  LlamaConfig c;
  c.name = "smollm2-135m";
  c.layers = 30;
  c.q_heads = 9;
  c.kv_heads = 3;
  c.head_dim = 64;
  c.hidden = 576;
  c.ffn_hidden = 1536;
  c.vocab_size = 49152;
  c.context_length = 8192;
  c.rope_theta = 100000.0f;
  return c;
}

LlamaConfig model_shape_config(const std::string& name) {
  return name == "smollm2-135m" ? smollm2_config() : builtin_llama_config(name);
}

// Seeded tokens for a prefill through real weights: the time of a step does
// not depend on which tokens the context holds.
std::vector<std::int32_t> random_tokens(std::int64_t count, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> pick(0, vocab - 1);
  auto tokens = std::vector<std::int32_t>(std::size_t(count));
  for (std::int32_t& t : tokens) t = pick(rng);
  return tokens;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

bool is_model_shape(const std::string& name) {
  const auto names = builtin_llama_config_names();
  return name == "smollm2-135m" || std::find(names.begin(), names.end(), name) != names.end();
}

NamedWeights load_named_weights(const BenchOptions& o) {
  NamedWeights w;
  if (!o.model.empty()) {
    w.file = std::make_unique<GgufFile>(GgufFile::open(o.model));
    w.weights = gguf_weights(*w.file);
    w.name = w.weights->config().name.empty() ? o.model : w.weights->config().name;
  } else {
    w.name = o.shape.empty() ? "llama-3-8b" : o.shape;
    w.weights = dummy_weights(model_shape_config(w.name), o.seed);
  }
  return w;
}

int label_count(const BenchOptions& o, const LlamaConfig& model) { return o.r > 0 ? o.r : std::max(1, model.head_dim / 16); }

EngineConfig model_engine_config(const BenchOptions& o, const LlamaConfig& model, bool cuda, std::int64_t capacity) {
  require(o.dtype == "f16" || o.dtype == "bf16", "unknown dtype '", o.dtype, "' (choose f16 or bf16)");
  EngineConfig e;
  e.shape = model.attention();
  e.dtype = o.dtype == "f16" ? DType::f16 : DType::bf16;
  e.backend = cuda ? Backend::cuda : Backend::cpu;
  e.batch = o.batch;
  e.capacity = capacity;
  e.budget = {o.k, o.sink, o.recent};
  e.k_fraction = o.k > 0 ? 0.0 : o.k_fraction;
  return e;
}

ContextFill::ContextFill(const WeightSource& weights, const EngineConfig& engine, int r, std::uint64_t seed,
                         std::int64_t context, int fills)
    : context_(context), seed_(seed), fills_(fills) {
  if (weights.is_dummy()) synthetic_.emplace(engine.shape, engine.dtype, seed, r);
  channels_ = synthetic_ ? synthetic_->calibrate(r, std::min<std::int64_t>(context, 1024))
                         : LabelChannels::leading(engine.shape, r);
}

PrefillObserver ContextFill::observer() {
  return [this](const PrefillActivations& a) {
    if (recorder_) recorder_->observer()(a);
    if (!progress_) return;
    progress_done_ += a.tokens;
    progress_->update(double(progress_done_), double(progress_planned_),
                      concat("sequence ", a.sequence + 1, ", layer ", a.layer + 1, ", tokens up to ", a.first + a.tokens));
  };
}

void ContextFill::prefill(Decoder& decoder) {
  const LlamaConfig& c = decoder.config();
  const int batch = decoder.batch();
  if (!prefixes_.empty()) {
    for (int s = 0; s < batch; ++s) decoder.restore_prefix(s, prefixes_[std::size_t(s)]);
    return;
  }
  // fp32 K and V of every layer and sequence, beside the engine's own cache.
  const double record_bytes = 2.0 * 4 * batch * c.layers * double(context_) * c.kv_heads * c.head_dim;
  if (fills_ > 1 && record_bytes <= double(available_host_memory().bytes) / 2) {
    recorder_.emplace(c);
    prefixes_.resize(std::size_t(batch));
    for (int s = 0; s < batch; ++s) recorder_->keep(s, prefixes_[std::size_t(s)], context_);
  } else if (fills_ > 1) {
    std::fprintf(stderr, "the prefill is run again for every policy: its record (%s) would not leave room\n",
                 format_bytes(std::int64_t(record_bytes)).c_str());
  }
  progress_.emplace("prefill");
  progress_done_ = 0;
  progress_planned_ = std::int64_t(batch) * c.layers * context_;
  const auto start = std::chrono::steady_clock::now();
  try {
    for (int s = 0; s < batch; ++s)
      decoder.prefill(s, random_tokens(context_, c.vocab_size, seed_ + std::uint64_t(s)));
  } catch (...) {
    prefixes_.clear();  // a record cut short is never replayed
    recorder_.reset();
    progress_.reset();
    throw;
  }
  progress_.reset();
  recorder_.reset();
  std::fprintf(stderr, "prefill through the model: %d x %lld tokens in %.1f s%s\n", batch,
               static_cast<long long>(context_), seconds_since(start),
               prefixes_.empty() ? "" : " (recorded for the other policies)");
}

std::string ContextFill::fill(Decoder& decoder, const std::string& run) {
  if (!synthetic_) {
    const bool replayed = !prefixes_.empty();
    prefill(decoder);
    return replayed ? "replayed prefill" : "prefill";
  }
  if (decoder.engine_config().backend == Backend::cpu) {
    fill_cpu_cache(decoder.engine(), *synthetic_, context_, run);
    decoder.adopt_filled(context_);
    return "synthetic";
  }
  if (!device_synthetic_) device_synthetic_.emplace(*synthetic_);
  const gpu::Stream stream;
  fill_cuda_cache(decoder.engine(), *device_synthetic_, context_, stream.get(), run);
  decoder.adopt_filled(context_);  // the decoder's stream is the engine's again before `stream` goes
  return "synthetic";
}

}  // namespace dso::cli
