#include "model/decoder_base.h"

#include <algorithm>

#include "core/error.h"

namespace dso {

DecoderBase::DecoderBase(const LlamaConfig& config, bool dummy, const DecoderOptions& options)
    : config_(config),
      dummy_(dummy),
      engine_config_(options.engine),
      made_for_(options.engine),
      max_batch_(options.engine.batch),
      prefill_chunk_(options.prefill_chunk),
      prefill_observer_(options.prefill_observer),
      decode_observer_(options.decode_observer),
      positions_(std::size_t(options.engine.batch), 0) {}

Engine& DecoderBase::engine() {
  require(engine_ != nullptr, "the decoder has no engine: its last reset failed");
  return *engine_;
}

std::int64_t DecoderBase::position(int sequence) const {
  require(sequence >= 0 && sequence < batch(), "sequence ", sequence, " does not exist (the batch holds ", batch(),
          ")");
  return positions_[std::size_t(sequence)];
}

void DecoderBase::create_engine() {
  engine_.reset();  // the old engine's memory goes back before the new one is checked for room
  engine_ = Engine::create(engine_config_);
  bind_engine(*engine_);
  std::fill(positions_.begin(), positions_.end(), 0);
  logits_ready_ = false;
}

void DecoderBase::reset(int batch) {
  require(batch >= 1 && batch <= max_batch_, "reset to batch ", batch, ": the decoder was made for 1 to ",
          max_batch_, " sequences");
  engine_config_.batch = batch;
  positions_.assign(std::size_t(batch), 0);
  create_engine();
}

void DecoderBase::reset_engine(const EngineConfig& requested) {
  EngineConfig config = requested;
  const AttentionShape& empty = config.shape;
  if (empty.layers == 0 && empty.q_heads == 0 && empty.kv_heads == 0 && empty.head_dim == 0)
    config.shape = config_.attention();  // as make_decoder takes it
  const EngineConfig& now = engine_config_;
  require(config.shape.layers == now.shape.layers && config.shape.q_heads == now.shape.q_heads &&
              config.shape.kv_heads == now.shape.kv_heads && config.shape.head_dim == now.shape.head_dim,
          "a new engine must have the model's attention shape");
  require(config.dtype == now.dtype && config.backend == now.backend,
          "a new engine must keep the decoder's dtype and backend");
  require(config.batch >= 1 && config.batch <= max_batch_, "a new engine of batch ", config.batch,
          ": the decoder was made for 1 to ", max_batch_, " sequences");
  // The speculative query's packed rows of W_q were made for the first
  // engine's label channels and sync layers.
  const EngineConfig& made = made_for_;
  require(config.policy != Policy::ds_offload ||
              (made.policy == Policy::ds_offload && config.channels.r == made.channels.r &&
               config.channels.index == made.channels.index && config.sync_layers == made.sync_layers),
          "a new ds_offload engine needs a decoder made for ds_offload with the same label channels and sync "
          "layers: its speculative query is packed for those");
  engine_.reset();
  engine_config_ = config;
  positions_.assign(std::size_t(config.batch), 0);
  create_engine();
}

void DecoderBase::adopt_filled(std::int64_t context) {
  Engine& e = engine();
  for (int s = 0; s < batch(); ++s)
    for (int l = 0; l < config_.layers; ++l)
      require(e.length(s, l) == context, "sequence ", s, " holds ", e.length(s, l), " tokens at layer ", l,
              ", not the ", context, " to be adopted as its context");
  bind_engine(e);
  std::fill(positions_.begin(), positions_.end(), context);
  logits_ready_ = false;
}

std::int64_t DecoderBase::buffer_rows() const { return std::max<std::int64_t>(max_batch_, prefill_chunk_); }

void DecoderBase::check_tokens(std::span<const std::int32_t> tokens, const char* what) const {
  for (std::size_t i = 0; i < tokens.size(); ++i)
    require(tokens[i] >= 0 && tokens[i] < config_.vocab_size, what, " token ", i, " is ", tokens[i],
            ", outside the vocabulary [0, ", config_.vocab_size, ")");
}

void DecoderBase::check_prefill(int sequence, std::span<const std::int32_t> tokens) const {
  const std::int64_t at = position(sequence);
  require(at == 0, "prefill of sequence ", sequence, ", which holds ", at,
          " tokens already: prefill starts a sequence (decode the tokens that follow)");
  require(std::int64_t(tokens.size()) <= engine_config_.capacity, "prefill of ", tokens.size(),
          " tokens into sequence ", sequence, " whose capacity is ", engine_config_.capacity);
  check_tokens(tokens, "prefill");
}

void DecoderBase::check_restore(int sequence, const CachedPrefix& prefix) const {
  const std::int64_t at = position(sequence);
  require(at == 0, "restoring a prefix into sequence ", sequence, ", which holds ", at,
          " tokens already: a prefix starts a sequence");
  require(prefix.tokens >= 0 && prefix.tokens <= engine_config_.capacity, "a prefix of ", prefix.tokens,
          " tokens does not fit sequence ", sequence, " whose capacity is ", engine_config_.capacity);
  const auto size = std::size_t(config_.layers) * std::size_t(prefix.tokens) * std::size_t(config_.kv_heads) *
                    std::size_t(config_.head_dim);
  require(prefix.k.size() == size && prefix.v.size() == size, "a prefix of ", prefix.tokens, " tokens holds ",
          prefix.k.size(), " keys and ", prefix.v.size(), " values; the model needs ", config_.layers, " layers x ",
          prefix.tokens, " tokens x ", config_.kv_heads, " KV heads x ", config_.head_dim, " = ", size, " of each");
}

void DecoderBase::check_decode(std::span<const std::int32_t> tokens) const {
  require(std::int64_t(tokens.size()) == batch(), "decode takes one token per sequence: ", batch(), " expected, ",
          tokens.size(), " given");
  for (int s = 0; s < batch(); ++s)
    require(positions_[std::size_t(s)] < engine_config_.capacity, "sequence ", s, " holds ",
            positions_[std::size_t(s)], " tokens, its full capacity: decoding one more needs a capacity above ",
            engine_config_.capacity);
  check_tokens(tokens, "decode");
}

void DecoderBase::check_logits(const char* what) const {
  require(logits_ready_, what, " needs logits: decode a step first");
}

void DecoderBase::check_targets(std::span<const std::int32_t> targets) const {
  check_logits("log_probs");
  require(std::int64_t(targets.size()) == batch(), "log_probs takes one target per sequence: ", batch(),
          " expected, ", targets.size(), " given");
  check_tokens(targets, "target");
}

std::vector<std::int32_t> DecoderBase::positions() const {
  return std::vector<std::int32_t>(positions_.begin(), positions_.end());
}

bool DecoderBase::wants_q_next(int layer) const { return needs_q_next(engine_config_, layer); }

}  // namespace dso
