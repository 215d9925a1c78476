#pragma once
// A Llama-family decoder that drives the attention engine through its public
// API (offload/engine.h), one per backend behind this interface: the CPU path
// (host memory, cpu/ ops) and the GPU path (device memory, gpu/ ops, cuBLAS,
// 16-bit weights). Activations are fp32; q, k and v enter the engine in its
// dtype and the attention output comes back in it.
//
// Per layer: RMSNorm -> q, k, v projections -> RoPE at each sequence's
// position -> engine -> W_o with residual -> RMSNorm -> SwiGLU MLP with
// residual; then the final norm and the LM head. Under ds_offload the
// speculative query of layer i+1, RoPE(W_q^{i+1} norm_i(x_i)) over the label
// channels' rows only, is computed during layer i and handed to the engine as
// q_next.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/weight_source.h"
#include "offload/engine.h"

namespace dso {

// What one layer computed for one prefill chunk of one sequence: host memory,
// fp32, [tokens][heads][head_dim] (q_heads for q, kv_heads for k and v), the
// chunk's tokens at positions first .. first + tokens - 1. The projections
// are as the matmul made them; q, k and v are what the engine receives
// (q and k after RoPE), so they hold values of the engine's dtype.
struct PrefillActivations {
  int sequence = 0;
  int layer = 0;
  std::int64_t first = 0;
  std::int64_t tokens = 0;
  std::span<const float> q_proj, k_proj;  // before RoPE
  std::span<const float> q, k, v;
};

// What one layer hands the engine in one decode step, as the engine receives
// it, widened to fp32: q [batch][q_heads][head_dim] and k_new
// [batch][kv_heads][head_dim] after RoPE, and q_next, the speculative query of
// layer + 1 ([batch][q_heads][head_dim], meaningful at that layer's label
// channels only), empty where this layer computes none.
struct DecodeActivations {
  int layer = 0;
  int batch = 0;
  std::span<const float> q, k_new, q_next;
};

// Observers see every layer of every prefill chunk or decode step (calibration
// statistics, measuring the speculative selection). The spans are valid during
// the call only. The decode observer runs on the CPU path only.
using PrefillObserver = std::function<void(const PrefillActivations&)>;
using DecodeObserver = std::function<void(const DecodeActivations&)>;

// The K/V a prefill gave the engine for a prefix of one sequence, kept so that
// other engines (other policies) can start from the same prefix without
// running it again: [layers][tokens][kv_heads][head_dim] each, fp32 holding
// values of the engine's dtype.
struct CachedPrefix {
  std::int64_t tokens = 0;
  std::vector<float> k, v;
};

struct DecoderOptions {
  // The attention engine. Its shape is taken from the model (left empty, or it
  // must match); its backend also picks the decoder's path, and its dtype is
  // that of the GPU path's weights. batch is the most sequences decoded
  // together, capacity the most tokens cached per sequence.
  EngineConfig engine;
  // CPU path only: round the weights and every projection's input to the
  // engine's dtype, as the GPU path computes, so the two differ by summation
  // order alone. Off, the CPU path keeps fp32 weights and inputs.
  bool round_like_gpu = false;
  // Tokens a prefill runs through a layer at once: bounds its working memory.
  std::int64_t prefill_chunk = 256;
  // CPU path only: the threads its operations run on (0: the cores available).
  int threads = 0;
  // Unset, neither prefill nor decode copies anything out.
  PrefillObserver prefill_observer;
  DecodeObserver decode_observer;
};

class Decoder {
 public:
  virtual ~Decoder() = default;

  virtual const LlamaConfig& config() const = 0;
  virtual const EngineConfig& engine_config() const = 0;
  virtual Engine& engine() = 0;
  virtual bool dummy_weights() const = 0;
  // Sequences of the current engine, and the most a reset may ask for.
  virtual int batch() const = 0;
  virtual int max_batch() const = 0;

  // Tokens cached for a sequence: the position of its next token.
  virtual std::int64_t position(int sequence) const = 0;

  // Runs the tokens of one empty sequence through every layer, a chunk of
  // tokens at a time with causal attention among them, and caches their K/V.
  // It computes no logits: decode the prompt's last token to get them.
  // Throws before any work where the sequence is not empty or the tokens do
  // not fit its capacity.
  virtual void prefill(int sequence, std::span<const std::int32_t> tokens) = 0;

  // Fills one empty sequence with a prefix saved from an earlier prefill of a
  // decoder of the same model and dtype (any policy): the engine receives
  // the same K/V, so decoding on from here is what decoding after that
  // prefill would be. Throws before any work where the sequence is not empty,
  // the prefix does not fit its capacity or its sizes are not the model's.
  virtual void restore_prefix(int sequence, const CachedPrefix& prefix) = 0;

  // One token for every sequence (tokens[b] for sequence b, at its own
  // position); keeps the logits for the accessors below.
  virtual void decode(std::span<const std::int32_t> tokens) = 0;

  // Of the last decode: the logits [batch][vocab], the most likely next token
  // of every sequence (ties: lower id), and log p(targets[b]) for each.
  virtual std::vector<float> logits() = 0;
  virtual std::vector<std::int32_t> greedy_tokens() = 0;
  virtual std::vector<double> log_probs(std::span<const std::int32_t> targets) = 0;

  // Adds the count of the last decode's logits that are NaN or infinite to a
  // tally the decoder keeps, without waiting for the decode's work (the GPU
  // path queues one small kernel behind it); take_nonfinite_logits() waits
  // for it, returns the tally and clears it. A long run checks every step's
  // output this way and copies one number out only when it reports.
  virtual void tally_nonfinite_logits() = 0;
  virtual std::int64_t take_nonfinite_logits() = 0;

  // Drops every cached token: a fresh engine for `batch` sequences, at most
  // the batch the decoder was made for.
  virtual void reset(int batch) = 0;

  // Drops every cached token and the engine, then creates one of `config`:
  // another policy, budget, label channels or capacity over the same weights
  // (same shape, or none: the model's; same dtype and backend; at most
  // max_batch() sequences). A
  // ds_offload engine needs a decoder made for ds_offload with the same label
  // channels and sync layers. The old engine's memory is returned before the
  // new one is checked for room.
  virtual void reset_engine(const EngineConfig& config) = 0;

  // Takes what was appended to the engine outside the decoder (engine().prefill,
  // e.g. a synthetic fill) as every sequence's context: each must hold `context`
  // tokens at every layer. Decoding goes on at position `context` (RoPE's
  // position). On the cuda backend the decoder's stream becomes the engine's
  // again, should the fill have set another, after that stream was synchronised.
  virtual void adopt_filled(std::int64_t context) = 0;
};

// What a decoder needs, computed before anything is allocated.
struct DecoderFootprint {
  std::int64_t weight_bytes = 0;  // on the GPU (16-bit) for cuda, in host memory (fp32) for cpu
  std::int64_t buffer_bytes = 0;  // working buffers, with the weights
  MemoryPlan engine;
};

// Validates `options` against the weights and checks that weights, buffers and
// engine fit the memory available now; throws dso::Error with the sizes otherwise.
DecoderFootprint check_decoder_fits(const WeightSource& weights, DecoderOptions options);

// Loads the weights (on the GPU for Backend::cuda) and creates the engine.
// Refuses, before allocating, a configuration whose weights, engine and
// working buffers do not fit the memory available.
std::unique_ptr<Decoder> make_decoder(const WeightSource& weights, DecoderOptions options);

}  // namespace dso
