#pragma once
// What the CPU and GPU decoders share: the engine's life, each sequence's
// position, and the checks every call makes before any work.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/decoder.h"

namespace dso {

class DecoderBase : public Decoder {
 public:
  const LlamaConfig& config() const override { return config_; }
  const EngineConfig& engine_config() const override { return engine_config_; }
  Engine& engine() override;
  bool dummy_weights() const override { return dummy_; }
  int batch() const override { return engine_config_.batch; }
  int max_batch() const override { return max_batch_; }
  std::int64_t position(int sequence) const override;
  void reset(int batch) override;
  void reset_engine(const EngineConfig& config) override;
  void adopt_filled(std::int64_t context) override;

 protected:
  // `options` must have passed make_decoder's checks.
  DecoderBase(const LlamaConfig& config, bool dummy, const DecoderOptions& options);

  // Creates the engine for engine_config() and hands it to bind_engine; a
  // derived constructor calls it last, once its buffers exist.
  void create_engine();
  // Where a backend attaches its stream to a new engine.
  virtual void bind_engine(Engine&) {}

  std::int64_t prefill_chunk() const { return prefill_chunk_; }
  // Rows the working buffers hold: a decode batch or a prefill chunk.
  std::int64_t buffer_rows() const;

  void check_prefill(int sequence, std::span<const std::int32_t> tokens) const;
  // Empty where the options set none.
  const PrefillObserver& prefill_observer() const { return prefill_observer_; }
  const DecodeObserver& decode_observer() const { return decode_observer_; }
  void check_restore(int sequence, const CachedPrefix& prefix) const;
  void check_decode(std::span<const std::int32_t> tokens) const;
  void check_logits(const char* what) const;
  void check_targets(std::span<const std::int32_t> targets) const;

  // Positions of every sequence as RoPE takes them.
  std::vector<std::int32_t> positions() const;
  void advance(int sequence, std::int64_t count) { positions_[std::size_t(sequence)] += count; }
  void set_logits_ready(bool ready) { logits_ready_ = ready; }
  // A backend whose stream the engine works on destroys the engine first: the
  // engine's teardown waits on that stream.
  void destroy_engine() { engine_.reset(); }
  // Whether decode(layer) hands the engine a speculative query of layer + 1.
  bool wants_q_next(int layer) const;

 private:
  void check_tokens(std::span<const std::int32_t> tokens, const char* what) const;

  LlamaConfig config_;
  bool dummy_;
  EngineConfig engine_config_;
  EngineConfig made_for_;  // the first engine's configuration
  int max_batch_;
  std::int64_t prefill_chunk_;
  PrefillObserver prefill_observer_;
  DecodeObserver decode_observer_;
  std::vector<std::int64_t> positions_;
  std::unique_ptr<Engine> engine_;
  bool logits_ready_ = false;
};

}  // namespace dso
