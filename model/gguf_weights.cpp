#include "model/gguf_weights.h"

#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/model_ops.h"
#include "model/dequantize.h"

namespace dso {

namespace {

std::string tensor_name(WeightKind kind, int layer) {
  const std::string name = std::string(weight_name(kind)) + ".weight";
  return is_layer_weight(kind) ? "blk." + std::to_string(layer) + "." + name : name;
}

class GgufWeights final : public WeightSource {
 public:
  explicit GgufWeights(const GgufFile& file)
      : file_(file), config_(llama_config_from_gguf(file)), tied_(file.find_tensor("output.weight") == nullptr) {
    check_tensor(WeightKind::token_embedding, 0);
    check_tensor(WeightKind::final_norm, 0);
    if (!tied_) check_tensor(WeightKind::lm_head, 0);
    for (int layer = 0; layer < config_.layers; ++layer)
      for (WeightKind kind : layer_weight_kinds) check_tensor(kind, layer);
    check_no_extra_layers();
  }

  const LlamaConfig& config() const override { return config_; }
  bool is_dummy() const override { return false; }
  bool tied_lm_head() const override { return tied_; }

  void read(WeightKind kind, int layer, std::span<float> out) const override {
    check_weight_read(config_, kind, layer, out);
    const WeightKind stored = kind == WeightKind::lm_head && tied_ ? WeightKind::token_embedding : kind;
    const GgufTensor& t = file_.tensor(tensor_name(stored, layer));
    check_finite(t);
    if (kind != WeightKind::wq && kind != WeightKind::wk) {
      dequantize<float>(t.type, t.data, out);
      return;
    }
    std::vector<float> gguf_rows(out.size());
    dequantize<float>(t.type, t.data, std::span<float>(gguf_rows));
    const int heads = kind == WeightKind::wq ? config_.q_heads : config_.kv_heads;
    cpu::gguf_to_hf_rows(gguf_rows.data(), heads, config_.head_dim, sizeof(float) * std::size_t(config_.hidden),
                         out.data());
  }

 private:
  // NaN or infinity in a weight reaches every logit; refused here, where the
  // tensor can be named, instead of as NUL bytes or a null perplexity later.
  void check_finite(const GgufTensor& t) const {
    const std::optional<std::int64_t> at = first_nonfinite(t.type, t.data);
    if (!at) return;
    const bool quantised = tensor_type_info(t.type).block_elements > 1;
    file_.check(false, "tensor '", t.name, "' holds NaN or infinity at element ", *at,
                quantised ? " (the scale of its block)" : "", ": the weights are damaged");
  }

  // A block_count below the layers stored would run a shallower model than
  // the file holds, silently; too high a count is refused by check_tensor.
  void check_no_extra_layers() const {
    for (const GgufTensor& t : file_.tensors()) {
      if (!t.name.starts_with("blk.")) continue;
      const std::string_view rest = t.name.substr(4);
      std::int64_t layer = 0;
      const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), layer);
      file_.check(error == std::errc() && end != rest.data() + rest.size() && *end == '.', "tensor '", t.name,
                  "' is named like a layer's but has no layer number");
      file_.check(layer < config_.layers, "tensor '", t.name, "' belongs to layer ", layer,
                  ", but llama.block_count says the model has ", config_.layers, " layers");
    }
  }

  // ggml lists dims fastest first: a [rows][cols] matrix is {cols, rows}, a norm {width}.
  void check_tensor(WeightKind kind, int layer) const {
    const std::string name = tensor_name(kind, layer);
    const GgufTensor* found = file_.find_tensor(name);
    const std::string layers =
        is_layer_weight(kind) ? concat(", though llama.block_count says the model has ", config_.layers, " layers") : "";
    file_.check(found != nullptr, "has no tensor '", name, "'", layers);
    const GgufTensor& t = *found;
    const WeightShape s = weight_shape(config_, kind);
    const std::vector<std::int64_t> expected =
        is_norm_weight(kind) ? std::vector<std::int64_t>{s.cols} : std::vector<std::int64_t>{s.cols, s.rows};
    if (t.dims == expected) return;
    std::string dims;
    for (std::int64_t d : t.dims) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    std::string want;
    for (std::int64_t d : expected) want += (want.empty() ? "" : ", ") + std::to_string(d);
    file_.check(false, "tensor '", name, "' has dims [", dims, "], the model's metadata implies [", want, "]");
  }

  const GgufFile& file_;
  LlamaConfig config_;
  bool tied_;
};

}  // namespace

std::unique_ptr<WeightSource> gguf_weights(const GgufFile& file) { return std::make_unique<GgufWeights>(file); }

}  // namespace dso
