#include "model/decoder.h"

#include <algorithm>

#include "core/checked_math.h"
#include "core/device.h"
#include "core/error.h"
#include "model/decoder_backends.h"
#include "model/llama_weights.h"
#include "offload/available_memory.h"
#include "offload/format_bytes.h"

namespace dso {

namespace {

bool same_shape(const AttentionShape& a, const AttentionShape& b) {
  return a.layers == b.layers && a.q_heads == b.q_heads && a.kv_heads == b.kv_heads && a.head_dim == b.head_dim;
}

// The working buffers of either path, fp32 throughout (the 16-bit copies are
// smaller than this over-count): a prefill chunk or a decode batch through a
// layer, and the logits.
std::int64_t buffer_bytes(const LlamaConfig& c, const DecoderOptions& o) {
  const std::int64_t rows = std::max<std::int64_t>(o.engine.batch, o.prefill_chunk);
  const std::int64_t q_dim = std::int64_t(c.q_heads) * c.head_dim, kv_dim = std::int64_t(c.kv_heads) * c.head_dim;
  const std::int64_t per_row = 2 * std::int64_t(c.hidden) + 4 * q_dim + 4 * kv_dim + 4 * std::int64_t(c.ffn_hidden);
  return checked_sum("the decoder's buffer size", checked_product("the decoder's buffer size", rows, per_row, 4),
                     checked_product("the logits size", o.engine.batch, c.vocab_size, 4));
}

}  // namespace

namespace {

// Fills in the engine's shape from the model and validates the options.
void complete_options(const WeightSource& weights, DecoderOptions& options) {
  const LlamaConfig& c = weights.config();
  c.validate();
  EngineConfig& e = options.engine;
  const AttentionShape shape = c.attention();
  if (e.shape.layers == 0 && e.shape.q_heads == 0 && e.shape.kv_heads == 0 && e.shape.head_dim == 0) e.shape = shape;
  require(same_shape(e.shape, shape), "the engine is configured for ", e.shape.layers, " layers, ", e.shape.q_heads,
          "/", e.shape.kv_heads, " heads of ", e.shape.head_dim, "; the model '", c.name, "' has ", shape.layers,
          " layers, ", shape.q_heads, "/", shape.kv_heads, " heads of ", shape.head_dim);
  require(options.prefill_chunk > 0, "prefill chunk must be positive, got ", options.prefill_chunk);
  require(options.threads >= 0, "thread count must not be negative (0: the cores available), got ",
          options.threads);
}

}  // namespace

DecoderFootprint check_decoder_fits(const WeightSource& weights, DecoderOptions options) {
  complete_options(weights, options);
  const LlamaConfig& c = weights.config();
  const EngineConfig& e = options.engine;
  DecoderFootprint f;
  f.engine = Engine::plan(e);  // validates the engine's configuration
  const bool cuda = e.backend == Backend::cuda;
  f.weight_bytes = checked_product("the weights' size", llama_weight_count(c, weights.tied_lm_head()), cuda ? 2 : 4);
  f.buffer_bytes = buffer_bytes(c, options);
  const MemoryPlan& plan = f.engine;
  const char* kind = weights.is_dummy() ? "dummy" : "real";
  if (!cuda) {
    // The cpu backend keeps what the GPU would hold in host memory as well.
    const std::int64_t needed =
        checked_sum("host memory", checked_sum("host memory", f.weight_bytes, f.buffer_bytes),
                    checked_sum("host memory", plan.host_bytes, plan.gpu_bytes));
    const HostRoom available = available_host_memory();
    require(needed <= available.bytes, "model '", c.name, "' (", kind, " weights) on the cpu backend needs ",
            format_bytes(needed), " of host memory (", format_bytes(f.weight_bytes), " of fp32 weights, ",
            format_bytes(plan.host_bytes + plan.gpu_bytes), " for the engine), ", describe(available));
    return f;
  }
  require(!options.decode_observer, "the decode observer runs on the cpu backend only; use it to observe decode");
  require(gpu_available(), "the cuda backend needs a GPU and none is visible (use the cpu backend)");
  const std::int64_t gpu_needed =
      checked_sum("GPU memory", checked_sum("GPU memory", f.weight_bytes, f.buffer_bytes), plan.gpu_bytes);
  const std::int64_t gpu_free = available_gpu_bytes();
  require(gpu_needed <= gpu_free, "model '", c.name, "' (", kind, " weights) needs ", format_bytes(gpu_needed),
          " of GPU memory (", format_bytes(f.weight_bytes), " of ", dtype_name(e.dtype), " weights, ",
          format_bytes(plan.gpu_bytes), " for the engine), ", format_bytes(gpu_free), " free on ", device_name());
  const HostRoom host_free = available_host_memory();
  require(plan.host_bytes <= host_free.bytes, "the engine needs ", format_bytes(plan.host_bytes),
          " of host memory for the K/V cache, ", describe(host_free));
  return f;
}

std::unique_ptr<Decoder> make_decoder(const WeightSource& weights, DecoderOptions options) {
  complete_options(weights, options);
  check_decoder_fits(weights, options);
  return options.engine.backend == Backend::cuda ? make_gpu_decoder(weights, options)
                                                 : make_cpu_decoder(weights, options);
}

}  // namespace dso
