#include "model/gguf_weights.h"

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
  }

  const LlamaConfig& config() const override { return config_; }
  bool is_dummy() const override { return false; }
  bool tied_lm_head() const override { return tied_; }

  void read(WeightKind kind, int layer, std::span<float> out) const override {
    check_weight_read(config_, kind, layer, out);
    const WeightKind stored = kind == WeightKind::lm_head && tied_ ? WeightKind::token_embedding : kind;
    const GgufTensor& t = file_.tensor(tensor_name(stored, layer));
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
  // ggml lists dims fastest first: a [rows][cols] matrix is {cols, rows}, a norm {width}.
  void check_tensor(WeightKind kind, int layer) const {
    const std::string name = tensor_name(kind, layer);
    const GgufTensor& t = file_.tensor(name);
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
